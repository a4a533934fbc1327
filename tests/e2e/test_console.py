"""The console in a real browser: Debian's Chromium, driven by Playwright.

`vidflow up` and `vidflow console` run as a user runs them (separate processes); the
console reads the stack through the same boto3 calls it makes against AWS. Screenshots
of the pages land in ``test-artifacts/console/`` (not in git) for a reviewer to look at.
"""

from __future__ import annotations

import base64
import collections
import functools
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack import VIDFLOW, RunningStack, free_port, vidflow_up
from workflow.vod.records import WorkItem

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "console"
STACK = ("--parameter", "Ladder=360:800,240:400", "--parameter", "ChunkSeconds=4",
         "--parameter", "SegmentSeconds=2")  # fmt: skip


def wait_for_executions(stack: RunningStack, count: int) -> list[dict[str, Any]]:
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + 300
    while True:
        listed = sfn.list_executions(stateMachineArn=stack.ready["state_machine_arn"])
        done = [e for e in listed["executions"] if e["status"] != "RUNNING"]
        if len(done) >= count:
            return done
        statuses = {e["name"]: e["status"] for e in listed["executions"]}
        assert time.monotonic() < deadline, f"{count} executions did not finish: {statuses}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def console(clip: Any) -> Iterator[tuple[RunningStack, str, dict[str, str]]]:
    """A stack with two published jobs (one with a per-title ladder) and one failed job,
    and a console reading it."""
    with vidflow_up(*STACK) as stack:
        s3 = stack.client("s3")
        s3.upload_file(str(clip("h264_aac_2gop")), stack.ready["ingest_bucket"], "uploads/game.mp4")
        s3.put_object(
            Bucket=stack.ready["ingest_bucket"], Key="uploads/notes.mp4", Body=b"not a video\n"
        )
        s3.upload_file(
            str(clip("static_detail")), stack.ready["ingest_bucket"], "uploads/scoreboard.mp4",
            ExtraArgs={"Metadata": {"vidflow-ladder": "per-title"}},
        )  # fmt: skip
        sfn = stack.client("stepfunctions")
        jobs = {}
        for execution in wait_for_executions(stack, 3):
            arn = execution["executionArn"]
            upload = sfn.describe_execution(executionArn=arn)["input"]
            jobs["PER_TITLE" if "scoreboard" in upload else execution["status"]] = arn
        process = subprocess.Popen(
            [*VIDFLOW, "console", "--port", str(free_port()),
             "--endpoint-url", stack.ready["endpoint_url"]],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            assert line.startswith("console: "), line
            yield stack, line.removeprefix("console: "), jobs
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_the_list_shows_both_executions_with_their_outcome(
    console: tuple[RunningStack, str, dict[str, str]], browser: Any
) -> None:
    _, url, jobs = console
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    succeeded = page.locator(f'tr[data-arn="{jobs["SUCCEEDED"]}"]')
    succeeded.wait_for()
    assert succeeded.get_attribute("data-status") == "SUCCEEDED"
    assert "uploads/game.mp4" in succeeded.inner_text()
    failed = page.locator(f'tr[data-arn="{jobs["FAILED"]}"]')
    assert "NotAVideoError" in failed.inner_text()
    # the filter keeps only failed ones
    page.click('button[data-filter="FAILED"]')
    page.wait_for_function("document.querySelectorAll('#executions tbody tr').length === 1")
    assert page.locator(f'tr[data-arn="{jobs["FAILED"]}"]').count() == 1
    page.click('button[data-filter=""]')
    succeeded.wait_for()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "list.png"), full_page=True)
    page.close()


def test_an_execution_shows_its_graph_timeline_manifest_and_plays(
    console: tuple[RunningStack, str, dict[str, str]], browser: Any
) -> None:
    stack, url, jobs = console
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    page.click(f'tr[data-arn="{jobs["SUCCEEDED"]}"] a')
    page.locator("#graph").wait_for()
    # THEN the graph is the ASL's: every state that ran succeeded, the failure path did not run
    statuses = {
        node.get_attribute("data-state"): node.get_attribute("data-status")
        for node in page.locator("#graph .node").all()
    }
    ran = {"Probe", "AlreadyPublished", "Plan", "PerTitle", "Transcode", "Publish", "Published"}
    assert {name: statuses[name] for name in ran} == dict.fromkeys(ran, "SUCCEEDED")
    # (a fixed ladder: no analysis)
    not_run = {"Analyse", "ChooseLadder", "PublishedBefore", "RecordFailure", "JobFailed"}
    assert {name: statuses[name] for name in not_run} == dict.fromkeys(not_run, "NOT_RUN")
    # AND the timeline has one bar per chunk (and the audio and images), as many as the
    # plan's items
    job = jobs["SUCCEEDED"].rsplit(":", 1)[1]
    s3 = stack.client("s3")
    items = s3.get_object(Bucket=stack.ready["output_bucket"], Key=f"jobs/{job}/items.json")
    planned = sorted(WorkItem.from_dict(i).name for i in json.loads(items["Body"].read()))
    assert "images" in planned
    bars = sorted(
        r.get_attribute("data-label") for r in page.locator('#timeline [data-kind="item"]').all()
    )
    assert bars == planned and len(planned) >= 5
    assert page.locator('#timeline [data-kind="state"]').count() == len(ran)
    # AND the manifest and a cost estimate are shown
    assert "360p" in page.locator("#manifest").inner_text()
    assert page.locator("#cost").inner_text().count("$") >= 3
    # AND the quality report: each rung's VMAF over the asset's time, and its summary
    rungs = {r.get_attribute("data-rung") for r in page.locator("#quality-chart .rung").all()}
    assert rungs == {"360p", "240p"}
    dots = page.locator('#quality-chart .rung[data-rung="360p"] circle').count()
    assert dots == len([name for name in planned if name.startswith("video-")])
    assert "VMAF" in page.locator("#quality").inner_text()
    # AND clicking a state shows its input and output
    page.click('#graph .node[data-state="Plan"]')
    assert "output:" in page.locator("#state-io").inner_text()
    # WHEN play is pressed THEN the video advances, with two rungs to choose from
    page.wait_for_function("document.querySelectorAll('#rung option').length >= 3")
    page.click("#play")
    _play_past(page, 1.0)
    labels = [o.inner_text() for o in page.locator("#rung option").all()]
    assert any(label.startswith("360p") for label in labels)
    assert any(label.startswith("240p") for label in labels)
    page.select_option("#rung", index=2)
    _play_past(page, 2.0)
    page.screenshot(path=str(SHOTS / "execution.png"), full_page=True)
    page.close()


def test_the_player_plays_once_the_stack_answers_again(
    console: tuple[RunningStack, str, dict[str, str]], browser: Any
) -> None:
    # GIVEN a stack that does not answer for a while (`vidflow up` restarting): the
    # console answers the player's first asks for the master 502, more than hls.js retries
    _, url, jobs = console
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    refused: list[str] = []

    def answer(route: Any) -> None:
        if len(refused) < 3:
            refused.append(route.request.url)
            route.fulfill(status=502, body="the stack does not answer")
        else:
            route.continue_()

    page.route("**/master.m3u8*", answer)
    # WHEN a published job's page is opened and play is pressed
    page.goto(f"{url}#/execution/{jobs['SUCCEEDED']}")
    page.locator("#player").wait_for()
    page.click("#play")
    # THEN the player says what failed, asks again, and plays when the stack is back
    page.wait_for_function("document.getElementById('playing').textContent.includes('again')")
    _play_past(page, 1.0)
    assert len(refused) == 3
    assert page.locator("#rung option").count() == 3
    page.close()


def test_without_hls_js_an_execution_shows_all_but_the_player(
    console: tuple[RunningStack, str, dict[str, str]], browser: Any
) -> None:
    # GIVEN a clone after `make demo` only: the console serves no hls.js (make setup
    # installs it), as the README says
    _, url, jobs = console
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.route(
        "**/static/hls.min.js",
        lambda route: route.fulfill(status=404, body="hls.js is not installed: run make setup"),
    )
    # WHEN a published job's page is opened
    page.goto(f"{url}#/execution/{jobs['SUCCEEDED']}")
    # THEN its graph, timeline and manifest are there ("the rest of the console works")
    page.locator("#manifest").wait_for()
    assert "360p" in page.locator("#manifest").inner_text()
    assert page.locator('#graph .node[data-state="Publish"]').get_attribute("data-status") == (
        "SUCCEEDED"
    )
    # AND the player says what it lacks instead of the page failing as "Hls is not defined"
    assert "make setup" in page.locator("#playing").inner_text()
    page.click('#graph .node[data-state="Plan"]')
    assert "output:" in page.locator("#state-io").inner_text()
    page.close()


def test_a_per_title_job_shows_how_its_ladder_was_chosen(
    console: tuple[RunningStack, str, dict[str, str]], browser: Any
) -> None:
    stack, url, jobs = console
    job = jobs["PER_TITLE"].rsplit(":", 1)[1]
    s3 = stack.client("s3")
    stored = s3.get_object(Bucket=stack.ready["output_bucket"], Key=f"outputs/{job}/manifest.json")
    manifest = json.loads(stored["Body"].read())
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{url}#/execution/{jobs['PER_TITLE']}")
    page.locator("#ladder").wait_for()
    # THEN the analysis ran, and the table has a row per fixed rung: what it became, or
    # why it was dropped
    for state in ("Analyse", "ChooseLadder"):
        node = page.locator(f'#graph .node[data-state="{state}"]')
        assert node.get_attribute("data-status") == "SUCCEEDED"
    # AND each Map counts its own items: the analysis's spans, then the plan's
    spans = len(manifest["ladder"]["spans"])
    planned = s3.get_object(Bucket=stack.ready["output_bucket"], Key=f"jobs/{job}/items.json")
    items = len(json.loads(planned["Body"].read()))
    graph = page.locator("#graph")
    assert (
        graph.locator('.node[data-state="Analyse"] text').text_content()
        == f"Analyse: {spans}/{spans} items"
    )
    assert (
        graph.locator('.node[data-state="Transcode"] text').text_content()
        == f"Transcode: {items}/{items} items"
    )
    assert page.locator("#progress").inner_text().startswith(f"{items} of {items} work items")
    rows = [
        [cell.inner_text().strip() for cell in row.locator("td").all()]
        for row in page.locator("#ladder tbody tr").all()
    ]
    decisions = manifest["ladder"]["rungs"]
    assert [row[0] for row in rows] == [d["rung"] for d in decisions]
    published = [row[3] for row in rows if row[2] != "dropped"]
    assert published == [r["name"] for r in manifest["renditions"]]
    shown = {r.get_attribute("data-rung") for r in page.locator("#quality-chart .rung").all()}
    assert shown == set(published)
    page.screenshot(path=str(SHOTS / "per-title.png"), full_page=True)
    page.close()


def test_a_failed_execution_shows_its_error_and_the_failed_state(
    console: tuple[RunningStack, str, dict[str, str]], browser: Any
) -> None:
    _, url, jobs = console
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{url}#/execution/{jobs['FAILED']}")
    page.locator("#error-name").wait_for()
    assert page.locator("#error-name").inner_text() == "NotAVideoError"
    assert "the file is text" in page.locator("#failure").inner_text()
    assert page.locator('#graph .node[data-state="Probe"]').get_attribute("data-status") == "FAILED"
    page.screenshot(path=str(SHOTS / "failed.png"), full_page=True)
    page.close()


def test_the_terminal_shows_the_same_executions(
    console: tuple[RunningStack, str, dict[str, str]],
) -> None:
    stack, _, jobs = console
    endpoint = ("--endpoint-url", stack.ready["endpoint_url"])
    listed = subprocess.run(
        [*VIDFLOW, "executions", "list", *endpoint], capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:2] == ["STATUS", "NAME"]
    assert any(line.startswith("FAILED") and "NotAVideoError" in line for line in lines)
    name = jobs["SUCCEEDED"].rsplit(":", 1)[1]
    shown = subprocess.run(
        [*VIDFLOW, "executions", "show", name, *endpoint], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert (
        "Transcode" in shown.stdout
        and "work items:" in shown.stdout
        and "cost estimate" in shown.stdout
    )
    history = subprocess.run(
        [*VIDFLOW, "executions", "history", name, *endpoint], capture_output=True, text=True
    )
    assert "ExecutionSucceeded" in history.stdout and "MapStateEntered" in history.stdout
    watched = subprocess.run(
        [*VIDFLOW, "executions", "watch", jobs["FAILED"], *endpoint], capture_output=True, text=True
    )
    assert watched.returncode == 1 and "error: NotAVideoError" in watched.stdout
    missing = subprocess.run(
        [*VIDFLOW, "executions", "show", "nope", *endpoint], capture_output=True, text=True
    )
    assert missing.returncode == 2 and missing.stderr.strip() == "error: no execution 'nope'"


def test_a_live_stream_plays_in_the_console_while_it_grows(
    console: tuple[RunningStack, str, dict[str, str]], browser: Any, clip: Any, tmp_path: Path
) -> None:
    stack, url, _ = console
    from workflow.cli import venue
    from workflow.local.binaries import ffmpeg_binary

    # GIVEN a live stream with four 2 s segments published and no END yet
    segments = venue.cut_segments(clip("h264_aac_2gop"), tmp_path, 2.0, binary=ffmpeg_binary())
    s3 = stack.client("s3")
    for sequence, segment in enumerate(segments[:4]):
        s3.upload_file(str(segment), stack.ready["ingest_bucket"], f"live/court-3/{sequence}.ts")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    # WHEN the stream appears in the list and its play link is followed
    page.locator('#streams a[href="#/stream/court-3"]').wait_for(timeout=120000)
    page.click('#streams a[href="#/stream/court-3"]')
    page.wait_for_function("document.querySelectorAll('#rung option').length >= 3")
    page.click("#play")
    # THEN the live playlist plays
    _play_past(page, 0.5)
    page.screenshot(path=str(SHOTS / "live.png"), full_page=True)
    page.close()


def test_a_bad_execution_link_is_a_message_not_a_traceback(
    console: tuple[RunningStack, str, dict[str, str]], browser: Any
) -> None:
    _, url, _ = console
    page = browser.new_page()
    page.goto(f"{url}#/execution/not-an-arn")
    error = page.locator(".panel.error b")
    error.wait_for()
    assert "InvalidArn" in error.inner_text() or "no such execution" in error.inner_text()
    missing = "arn:aws:states:us-east-1:123456789012:execution:vidflow-vod:nope"
    page.goto(f"{url}#/execution/{missing}")
    page.wait_for_function(
        "document.querySelector('.panel.error b')?.textContent === 'no such execution'"
    )
    # AND a link whose escapes do not decode says so, rather than load for ever
    page.goto(f"{url}#/execution/%E0%A4%A")
    page.wait_for_function(
        "document.querySelector('.panel.error b')?.textContent.startsWith('not a console link')"
    )
    page.close()


def test_the_console_answers_only_requests_for_its_own_address(
    console: tuple[RunningStack, str, dict[str, str]],
) -> None:
    # GIVEN the console, and a web page that made its own name resolve to 127.0.0.1 (DNS
    # rebinding): its requests carry its name in Host
    _, url, _ = console
    port = urllib.parse.urlsplit(url).port

    def status(host: str) -> int:
        request = urllib.request.Request(
            f"{url.rstrip('/')}/api/executions", headers={"Host": host}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    # THEN such requests are refused, and only the console's own addresses are answered
    for stranger in ("evil.example.com", f"evil.example.com:{port}", "127.0.0.1:1", "localhost"):
        assert status(stranger) == 403, stranger
    for own in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
        assert status(own) == 200, own


# A page of another site, as the user's browser would load it: it tries the local stack's
# S3 and Secrets Manager endpoint and the console's published media, and says what it got.
_ANOTHER_SITE = """<!doctype html><title>another site</title><script>
const C = __CONFIG__;
const signed = "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/secretsmanager/aws4_request, "
  + "SignedHeaders=host, Signature=0";
const attempts = {
  secret: () => fetch(C.stack, {method: "POST", body: JSON.stringify({SecretId: C.secret}),
    headers: {"Content-Type": "application/x-amz-json-1.1", "Authorization": signed,
              "X-Amz-Target": "secretsmanager.GetSecretValue"}}),
  list: () => fetch(C.stack + C.output + "?list-type=2"),
  upload: () => fetch(C.stack + C.ingest + "/" + C.upload, {method: "PUT", body: "x"}),
  media: () => fetch(C.console + "media/" + C.manifest),
};
window.results = {};
(async () => {
  for (const [name, attempt] of Object.entries(attempts)) {
    try { const r = await attempt(); results[name] = r.status + " " + (await r.text()); }
    catch (e) { results[name] = "refused"; }
  }
  document.title = "done";
})();
</script>"""


@pytest.mark.parametrize(
    "host",
    # 127.0.0.2 is another site to the browser, as any site on the internet would be;
    # 127.0.0.1 on another port the same site, as a dev server or a downloaded page is
    ["127.0.0.2", "127.0.0.1"],
)
def test_a_page_of_another_site_can_read_or_write_nothing_local(
    host: str, console: tuple[RunningStack, str, dict[str, str]], browser: Any, tmp_path: Path
) -> None:
    # GIVEN the stack and console, and a page served by another server
    import http.server
    import threading

    stack, url, _ = console
    s3 = stack.client("s3")
    output, ingest = stack.ready["output_bucket"], stack.ready["ingest_bucket"]
    listed = s3.list_objects_v2(Bucket=output, Prefix="outputs/")["Contents"]
    manifest = next(o["Key"] for o in listed if o["Key"].endswith("/manifest.json"))
    secret = stack.client("secretsmanager").list_secrets()["SecretList"][0]["Name"]
    config = {
        "stack": stack.ready["endpoint_url"].rstrip("/") + "/",
        "console": url.rstrip("/") + "/",
        "secret": secret,
        "output": output,
        "ingest": ingest,
        "upload": "uploads/from-a-web-page.mp4",
        "manifest": manifest,
    }
    page_text = _ANOTHER_SITE.replace("__CONFIG__", json.dumps(config))
    (tmp_path / "index.html").write_text(page_text)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    site = http.server.ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        # WHEN the user's browser opens it
        page = browser.new_page()
        page.goto(f"http://{host}:{site.server_address[1]}/index.html")
        page.wait_for_function("document.title === 'done'", timeout=30000)
        results = page.evaluate("window.results")
        page.close()
    finally:
        site.shutdown()
        site.server_close()
    # THEN it read nothing and wrote nothing: the browser saw every request refused
    assert results == dict.fromkeys(("secret", "list", "upload", "media"), "refused"), results
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=ingest, Key="uploads/from-a-web-page.mp4")
    # AND programs on this machine are still answered: the console's media and the stack
    request = urllib.request.Request(f"{url.rstrip('/')}/media/{manifest}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Access-Control-Allow-Origin" not in response.headers
    assert s3.head_object(Bucket=output, Key=manifest)["ContentLength"] > 0


def test_the_metrics_panel_counts_the_jobs_from_the_functions_metric_records(
    console: tuple[RunningStack, str, dict[str, str]], browser: Any
) -> None:
    # GIVEN the stack ran two jobs that published and one that failed
    _, url, _ = console
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    # THEN the panel, computed from the EMF records in the functions' log group, says so
    # (the engine ships the functions' log lines there every half second)
    page.wait_for_function(
        "document.querySelector('[data-metric=\"failed\"]')?.textContent === '1'", timeout=30000
    )
    assert page.locator('[data-metric="started"]').inner_text() == "3"
    assert page.locator('[data-metric="succeeded"]').inner_text() == "2"
    assert page.locator('[data-metric="failure-rate"]').inner_text() == "33.3 %"
    assert float(page.locator('[data-metric="source-minutes"]').inner_text()) > 0
    assert page.locator('[data-error="NotAVideoError"]').inner_text() == "1"
    page.screenshot(path=str(SHOTS / "metrics.png"), full_page=True)
    page.close()


def test_protected_assets_and_streams_play_in_the_console_with_its_own_token(
    console: tuple[RunningStack, str, dict[str, str]], browser: Any, clip: Any, tmp_path: Path
) -> None:
    stack, url, _ = console
    from workflow.cli import venue
    from workflow.local.binaries import ffmpeg_binary

    # GIVEN encrypted jobs (aes-128 TS, cbcs CMAF) and an encrypted live stream (whose
    # keys need a token)
    s3, ingest = stack.client("s3"), stack.ready["ingest_bucket"]
    s3.upload_file(
        str(clip("h264_aac_2gop")), ingest, "uploads/locked.mp4",
        ExtraArgs={"Metadata": {"vidflow-encryption": "aes-128"}},
    )  # fmt: skip
    s3.upload_file(
        str(clip("h264_aac_2gop")), ingest, "uploads/sealed.mp4",
        ExtraArgs={"Metadata": {"vidflow-encryption": "cbcs", "vidflow-packaging": "cmaf"}},
    )  # fmt: skip
    s3.put_object(Bucket=ingest, Key="live/court-9/stream.json", Body=b'{"encryption": "aes-128"}')
    segments = venue.cut_segments(clip("h264_aac_2gop"), tmp_path, 2.0, binary=ffmpeg_binary())
    for sequence, segment in enumerate(segments[:3]):
        s3.upload_file(str(segment), ingest, f"live/court-9/{sequence}.ts")
    executions = wait_for_executions(stack, 5)  # and the fixture's three
    (locked,) = [e for e in executions if e["name"].startswith("locked-")]
    (sealed,) = [e for e in executions if e["name"].startswith("sealed-")]
    assert locked["status"] == sealed["status"] == "SUCCEEDED"
    views = [f"#/execution/{e['executionArn']}" for e in (locked, sealed)] + ["#/stream/court-9"]
    for view in views:
        # WHEN the console plays each (a page of its own: on one page, the last view's
        # player would satisfy the waits below until the next view replaced it)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{url.rstrip('/')}/{view}")
        page.wait_for_function("document.querySelectorAll('#rung option').length >= 3")
        page.click("#play")
        # THEN it plays: the console's player sends a token the key service accepts
        _play_past(page, 1.0)
        page.close()
    # AND the key service served those keys to the console's viewer only
    log = Path(stack.ready["function_log"]).read_text()
    assert "key served (asset live.court-9, viewer console)" in log
    assert f"key served (asset {locked['name']}, viewer console)" in log
    # (a cbcs asset's as a ClearKey license, hls.js decrypting through EME)
    assert f"license served (asset {sealed['name']}, viewer console)" in log


def test_the_console_player_renews_its_token_for_a_game_watched_past_its_hour(
    console: tuple[RunningStack, str, dict[str, str]], browser: Any, clip: Any, tmp_path: Path
) -> None:
    stack, url, _ = console
    from workflow.cli import venue
    from workflow.local.binaries import ffmpeg_binary

    # GIVEN an encrypted live stream still going (its keys need a token; its playlist is
    # reloaded for as long as it is watched)
    s3, ingest = stack.client("s3"), stack.ready["ingest_bucket"]
    s3.put_object(Bucket=ingest, Key="live/court-12/stream.json", Body=b'{"encryption": "aes-128"}')
    segments = venue.cut_segments(clip("h264_aac_2gop"), tmp_path, 2.0, binary=ffmpeg_binary())
    for sequence, segment in enumerate(segments[:3]):
        s3.upload_file(str(segment), ingest, f"live/court-12/{sequence}.ts")
    output = stack.client("s3")
    deadline = time.monotonic() + 180
    while not _listed(output, stack.ready["output_bucket"], "live/court-12/live.m3u8"):
        assert time.monotonic() < deadline, "the live stream was not published"
        time.sleep(0.5)
    # WHEN the console plays it, and half the token's hour passes on the page's clock
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    tokens: list[str] = []
    page.on("request", lambda request: tokens.extend(_token_of(request.url)))
    page.clock.install()
    page.goto(f"{url.rstrip('/')}/#/stream/court-12")
    page.wait_for_function("document.querySelectorAll('#rung option').length >= 3")
    page.click("#play")
    _play_past(page, 1.0)
    first = tokens[0]
    assert set(tokens) == {first}
    page.clock.fast_forward("31:00")
    # THEN the page has asked for the next token, and its requests carry it from then on
    # (a playlist reload every target duration): a later expiry, for the same asset
    _play_past(page, 2.5)
    deadline = time.monotonic() + 60
    while tokens[-1] == first:
        assert time.monotonic() < deadline, "the player kept its first token"
        page.wait_for_timeout(500)
    renewed = tokens[-1]
    assert _claims(renewed)["a"] == _claims(first)["a"] == "live.court-12"
    assert _claims(renewed)["e"] > _claims(first)["e"]
    page.close()


# What a player that does not advance shows: its element's state and the page's word on
# it (the console shows hls.js's fatal errors there).
PLAYER_STATE = """() => {
  const video = document.getElementById("player");
  const ranges = [];
  for (let i = 0; i < video.buffered.length; i++) {
    ranges.push([video.buffered.start(i), video.buffered.end(i)]);
  }
  return {time: video.currentTime, ready: video.readyState, paused: video.paused,
          buffered: ranges, error: video.error && video.error.message,
          shown: document.getElementById("playing").textContent};
}"""


def _play_past(page: Any, seconds: float) -> None:
    """Wait up to a minute for the console's player to pass ``seconds``; if it does not,
    fail saying what the player shows and what it asked for meanwhile."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    asked: collections.deque[str] = collections.deque(maxlen=20)
    answered = lambda r: asked.append(f"{r.status} {r.url.split('?')[0]}")  # noqa: E731
    failed = lambda r: asked.append(f"{r.failure} {r.url.split('?')[0]}")  # noqa: E731
    page.on("response", answered)
    page.on("requestfailed", failed)
    try:
        page.wait_for_function(
            f"document.getElementById('player').currentTime > {seconds}", timeout=60000
        )
    except PlaywrightTimeout:
        state = {**page.evaluate(PLAYER_STATE), "asked": list(asked)}
        raise AssertionError(
            f"the player did not pass {seconds} s: {json.dumps(state, indent=1)}"
        ) from None
    finally:
        page.remove_listener("response", answered)
        page.remove_listener("requestfailed", failed)


def _listed(s3: Any, bucket: str, key: str) -> bool:
    return bool(s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"))


def _token_of(address: str) -> list[str]:
    """The ``token`` a request's address carries, if any."""
    return urllib.parse.parse_qs(urllib.parse.urlsplit(address).query).get("token", [])


def _claims(token: str) -> dict[str, Any]:
    """A playback token's claims (read, not verified: the key service verifies)."""
    body = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))
