"""The command blocks the README and docs/ tell a newcomer to run, run as they stand."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from tests.stack import vidflow_up
from workflow.cli.main import _parser
from workflow.local.engine import Endpoints
from workflow.vod.jobs import JobPaths

ROOT = Path(__file__).resolve().parents[2]
# What the README's tour listens on, as it says.
TOUR_PORTS = (4566, 4567, 8080)


def sh_block(page: Path, heading: str) -> str:
    """The first ```sh block after ``heading`` in ``page``."""
    text = page.read_text()
    start = text.index(f"\n{heading}\n")
    found = re.search(r"```sh\n(.*?)```", text[start:], re.DOTALL)
    assert found, f"no sh block under {heading!r} in {page.name}"
    return found.group(1)


def in_a_clone(tmp_path: Path) -> Path:
    """A folder that looks like the clone the docs run in: its venv and its events."""
    for name in (".venv", "events"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def run_block(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``script`` in bash, stopping at the first failing command; SIGINT at its default, as
    in a terminal (a background test runner ignores it, and children inherit that).

    Whatever it left running in the background when it stopped (a block that fails
    before its ``kill``) is killed then: its output is read from files, not pipes, so a
    background ``vidflow up`` cannot hold the block open until the timeout (124)."""
    command = ["bash", "-e", "-o", "pipefail", "-c", script]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        block = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        try:
            code = block.wait(timeout=600)
        except subprocess.TimeoutExpired:
            code = 124  # what it printed before it hung says where it hung
        with contextlib.suppress(ProcessLookupError):
            os.killpg(block.pid, signal.SIGTERM)
        block.wait()
        return subprocess.CompletedProcess(command, code, _read(out), _read(err))


def _read(output: IO[bytes]) -> str:
    output.seek(0)
    return output.read().decode(errors="replace")


def failed(done: subprocess.CompletedProcess[str]) -> str:
    """Why a block failed, its last error line first (a CI summary shows the first line)."""
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    last = errors[-1] if errors else "(nothing on stderr)"
    return f"exit {done.returncode}: {last}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    # GIVEN a clone with nothing on the ports the tour uses
    busy = [port for port in TOUR_PORTS if listening(port)]
    assert not busy, f"the README's tour needs ports {busy} free; stop what listens there"
    clone = in_a_clone(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIDFLOW_"))}
    # WHEN the tour's block runs, command by command
    done = run_block(sh_block(ROOT / "README.md", "## Tour"), clone, env)
    # THEN every command succeeded, and each left what the tour says it does
    assert done.returncode == 0, failed(done)
    assert (clone / "out" / "master.m3u8").is_file()
    ready = json.loads((clone / "up.json").read_text())
    assert ready["endpoint_url"] == "http://127.0.0.1:4566"
    assert '"executions": [' in done.stdout  # aws stepfunctions list-executions
    assert "#EXT-X-STREAM-INF" in done.stdout  # the live stream's playlist
    # AND the background processes went with the kill that ends the tour
    deadline = time.monotonic() + 60
    while any(listening(port) for port in TOUR_PORTS) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [port for port in TOUR_PORTS if listening(port)]
    Path(ready["function_log"]).unlink(missing_ok=True)


def test_every_sample_event_runs_in_order_as_documented(tmp_path: Path) -> None:
    # GIVEN a fresh stack, and the tour's clip in a clone
    clone = in_a_clone(tmp_path)
    tour = sh_block(ROOT / "README.md", "## Tour")
    make_clip = tour[tour.index("FFMPEG=") : tour.index("clip.mp4\n") + len("clip.mp4\n")]
    with vidflow_up() as stack:
        env = {**os.environ, "AWS_ENDPOINT_URL": stack.ready["endpoint_url"]}
        # WHEN the docs' block runs every function with its sample event
        events = sh_block(ROOT / "docs" / "local.md", "### Every sample event, in order")
        script = make_clip + events
        done = run_block(script, clone, env)
        # THEN each succeeded, and the job's steps published its asset
        assert done.returncode == 0, failed(done)
        s3 = stack.client("s3")
        master = s3.get_object(
            Bucket=stack.ready["output_bucket"], Key="outputs/big_game-b8c40d5e93072369/master.m3u8"
        )["Body"].read()
        assert b"#EXT-X-STREAM-INF" in master
        # AND the live segment went out in every rung: a stream that starts at 42, not 0,
        # starts once it has waited (the sweep each minute, or the invoked one, sees to it)
        variant = "live/friday-game/360p/live.m3u8"
        deadline = time.monotonic() + 150
        playlist = ""
        while "seg_00042.ts" not in playlist and time.monotonic() < deadline:
            with contextlib.suppress(s3.exceptions.NoSuchKey):
                playlist = (
                    s3.get_object(Bucket=stack.ready["output_bucket"], Key=variant)["Body"]
                    .read()
                    .decode()
                )
            time.sleep(1)
        assert "#EXT-X-MEDIA-SEQUENCE:42" in playlist and "seg_00042.ts" in playlist, playlist


def test_the_json_line_of_vidflow_up_is_documented_key_for_key() -> None:
    # GIVEN what docs/local.md says `vidflow up`'s one JSON line holds (between its dashes)
    text = (ROOT / "docs" / "local.md").read_text()
    said = text[text.index("`vidflow up` prints one JSON line") :].split(" — ")[1]
    listed = set(re.findall(r"`([a-z_]+)`", said))
    # THEN it is every key the line has: the stack's endpoints and the function log
    printed = {field.name for field in dataclasses.fields(Endpoints)} | {"function_log"}
    assert listed == printed


def test_invoking_against_your_own_upload_says_where_the_item_steps_items_are() -> None:
    # GIVEN what docs/local.md says to do to invoke against an upload of one's own
    text = (ROOT / "docs" / "local.md").read_text()
    said = " ".join(
        text[text.index("To invoke against your own upload") :].split("\n\n")[0].split()
    )
    # THEN it says to take each item step's item from where Plan lists them (an item
    # the plan has not is refused), and that the source stays in the ingest bucket
    listed = JobPaths("<job_id>").items_key
    assert f"take each one's `item` from `{listed}` in the output bucket" in said
    assert f"s3://<output>/{listed}" in said
    for step in ("chunk", "audio", "images"):
        assert step in said.split("The item steps")[1].split(")")[0]
    assert "`source.bucket` stays the stack's ingest bucket" in said


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_vidflow_command_and_option_the_docs_name_exists() -> None:
    # GIVEN every `vidflow ...` the README and docs/ show, in a block or in running text
    # (most are never run by a test: a deployed stack's, a real encoder's)
    top = _parser()
    unknown = []
    for page in [ROOT / "README.md", ROOT / "SECURITY.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        blocks = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
        # (running text's code may wrap onto the next line)
        spans = re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
        for code in blocks + [span.replace("\n", " ") for span in spans]:
            for line in code.replace("\\\n", " ").splitlines():
                found = re.search(r"(?:^|[\s(])(?:\.venv/bin/)?vidflow((?: [^\s#|;&)]+)+)", line)
                if not found or found.group(1).split()[0] == "...":
                    continue
                words = [word.strip("[]") for word in found.group(1).split()]
                # THEN its command is one vidflow has, and each --option one that command takes
                parser, rest = top, words
                while rest and (commands := _commands(parser)) and not rest[0].startswith("-"):
                    if rest[0] not in commands:
                        unknown.append(f"{page.name}: {' '.join(words)}: no command {rest[0]}")
                        break
                    parser, rest = commands[rest[0]], rest[1:]
                options = {name for action in parser._actions for name in action.option_strings}
                unknown += [
                    f"{page.name}: {' '.join(words)}: no option {word.split('=')[0]}"
                    for word in rest
                    if word.startswith("--") and word.split("=")[0] not in options
                ]
    assert not unknown
