"""The README as a newcomer meets it: short, a folder table of short lines, every docs/
page linked, and what happens to an upload that is replaced or whose event is lost."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()

# "README under ~200 lines" (issue 16): the deep material is in docs/.
MOST_LINES = 200
# "one line per package and each line is short" (issue 15)
LONGEST_FOLDER_ROW = 110


def _folder_rows() -> dict[str, str]:
    section = README[README.index("## What is in each folder") :]
    section = section[: section.index("\n## ", 1)]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {re.findall(r"`([^`]+)`", row.split("|")[1])[0]: row for row in rows}


def test_the_readme_is_a_five_minute_read() -> None:
    # GIVEN the README
    # THEN it is under ~200 lines
    assert len(README.splitlines()) <= MOST_LINES


def test_every_docs_page_is_linked_from_the_readme() -> None:
    # GIVEN every page under docs/
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}
    # THEN the README links each
    linked = set(re.findall(r"\]\((docs/[^)#]+)", README))
    assert pages - linked == set()


def test_the_folder_table_has_one_short_line_per_package() -> None:
    # GIVEN the packages of the runtime and the local tools
    packages = {
        f"{path.parent.relative_to(ROOT).as_posix()}/"
        for path in (ROOT / "workflow").glob("**/__init__.py")
    }
    rows = _folder_rows()
    # THEN each has its own row, and no row is long
    assert packages - set(rows) == set()
    assert {path: len(row) for path, row in rows.items() if len(row) > LONGEST_FOLDER_ROW} == {}


def test_the_readme_says_what_is_pinned_retried_and_how_to_redrive() -> None:
    # GIVEN the README and SECURITY.md (issue 14: both say it)
    for page in ("README.md", "SECURITY.md"):
        text = " ".join((ROOT / page).read_text().split()).lower()
        # THEN each names the pin, what a replaced upload's job ends as, the retries, where
        # an event that failed them lands, and the redrive
        for said in (
            "versionid",
            "if-match",
            "sourcechangederror",
            "failedeventsqueue",
            "vidflow redrive",
        ):
            assert said in text, (page, said)
        assert "two retries" in text or "retried twice" in text, page
