"""What docs/ states as facts of the code (the template's parameters and functions, the
sample events, the errors) is what the code has: a change to one cannot leave the other
stale."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from workflow import errors
from workflow.live.paths import StreamPaths
from workflow.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "sam-template.yaml")
DOCS = {page.name: page.read_text() for page in (ROOT / "docs").glob("*.md")}
# Bases a step never raises as such: every error a user meets is one of their kinds.
BASES = {errors.VidflowError, errors.InputError}


def _section(text: str, heading: str) -> str:
    section = text[text.index(f"\n{heading}\n") :]
    return section[: section.find("\n## ", 1)]


def _full(first: str, word: str, declared: list[str]) -> str:
    """``word`` as a row writes it after ``first``: whole, or the end of a name that
    begins as ``first`` does (``Seconds`` after ``MaxInputBytes``)."""
    if word in declared:
        return word
    heads = [first[:cut] for cut in range(len(first), 0, -1) if first[:cut] + word in declared]
    return heads[0] + word if heads else word


def test_the_guided_prompts_table_asks_every_parameter_in_the_templates_order() -> None:
    # GIVEN the template's parameters, in the order `sam deploy --guided` asks them
    declared = list(TEMPLATE["Parameters"])
    # WHEN docs/deploy.md's table of prompts is read, row by row
    table = _section(DOCS["deploy.md"], "## `sam deploy --guided` prompts")
    rows = [
        re.findall(r"([A-Za-z0-9]+)", row.split("|")[1].removeprefix(" Parameter "))
        for row in table.splitlines()
        if row.startswith("| Parameter ")
    ]
    # (a row may name several: `MaxInputBytes / Seconds / Pixels` reads MaxInput<each>)
    named = [[words[0], *(_full(words[0], w, declared) for w in words[1:])] for words in rows]
    # THEN every parameter has a row, no row names another, and the rows keep its order
    assert sorted(p for row in named for p in row) == sorted(declared)
    firsts = [declared.index(row[0]) for row in named]
    assert firsts == sorted(firsts)


def test_the_build_table_sizes_every_function() -> None:
    # GIVEN every function the template deploys
    functions = {
        lid.removesuffix("Function")
        for lid, resource in TEMPLATE["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    # WHEN docs/deploy.md's table of what `sam build` makes is read
    table = _section(DOCS["deploy.md"], "## What `sam build` makes")
    listed = {
        name.strip()
        for row in table.splitlines()[1:]
        if row.startswith("| ") and not row.startswith("| function")
        for name in row.split("|")[1].split(",")
    } - {"---"}
    # THEN each is in one row, the row of its layers
    assert listed == functions


def test_every_sample_event_is_described() -> None:
    # GIVEN every sample event
    samples = {f"events/{path.name}" for path in (ROOT / "events").glob("*.json")}
    # THEN docs/local.md names each
    assert {sample for sample in samples if sample not in DOCS["local.md"]} == set()


def test_every_error_a_user_can_meet_is_documented() -> None:
    # GIVEN every error a step or a command can end with
    names = {
        cls.__name__
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.VidflowError) and cls not in BASES
    }
    # THEN a page of docs/ names it, and says when
    said = " ".join(DOCS.values())
    assert {name for name in names if f"`{name}`" not in said} == set()


def test_the_live_pages_name_a_segments_failure_record_as_it_is_written() -> None:
    # GIVEN where segment 42's failure is recorded
    key = StreamPaths("<stream>").failure_key(42)
    # THEN docs/live.md and SECURITY.md name that key, not an unpadded one
    assert key in DOCS["live.md"]
    assert key.rpartition("/")[2] in (ROOT / "SECURITY.md").read_text()


def test_the_benchmarks_page_says_what_make_bench_runs() -> None:
    # GIVEN the scripts `make bench` runs
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\nbench:") :].split("\n\n")[0]
    scripts = re.findall(r"bench/([a-z_]+)\.py", recipe)
    # WHEN bench/README.md's first block says what `make bench` is
    first = re.search(r"```sh\n(.*?)```", (ROOT / "bench" / "README.md").read_text(), re.DOTALL)
    assert first is not None
    # THEN it names every one of them
    assert scripts and [script for script in scripts if script not in first.group(1)] == []
