"""What the console makes of an execution history (per-state runs, retries, failures), and
what its API answers for names and stacks that are not there."""

from __future__ import annotations

import io
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from tests.http_status import status_of
from workflow.cli.console import ConsoleServer
from workflow.cli.monitor import Monitor, state_runs, timeline
from workflow.cli.terminal import watch
from workflow.keys.service import PlaybackSecret

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def event(n: int, kind: str, seconds: float, **details: Any) -> dict[str, Any]:
    key = {
        "Entered": "stateEnteredEventDetails",
        "Exited": "stateExitedEventDetails",
    }.get(
        next((k for k in ("Entered", "Exited") if kind.endswith(k)), ""), "taskFailedEventDetails"
    )
    return {"id": n, "type": kind, "timestamp": T0 + timedelta(seconds=seconds), key: details}


RETRIED_THEN_CAUGHT = [
    event(1, "TaskStateEntered", 0, name="Probe", input="{}"),
    event(2, "TaskScheduled", 0),
    event(3, "TaskFailed", 1, error="TransientError", cause="S3 503"),
    event(4, "TaskScheduled", 2),
    event(5, "TaskSucceeded", 3),
    event(6, "TaskStateExited", 3, name="Probe", output='{"ok": 1}'),
    event(7, "TaskStateEntered", 3, name="Plan", input="{}"),
    event(8, "TaskScheduled", 3),
    event(9, "TaskFailed", 4, error="ConfigurationError", cause="bad ladder"),
    event(10, "TaskStateExited", 4, name="Plan"),
    event(11, "TaskStateEntered", 4, name="RecordFailure"),
    event(12, "TaskStateExited", 5, name="RecordFailure"),
    event(13, "FailStateEntered", 5, name="JobFailed"),
]


def test_a_retried_state_succeeds_and_a_caught_failure_stays_failed() -> None:
    runs = state_runs(RETRIED_THEN_CAUGHT)
    assert runs["Probe"]["status"] == "SUCCEEDED" and runs["Probe"]["attempts"] == 2
    assert "error" not in runs["Probe"] and runs["Probe"]["output"] == '{"ok": 1}'
    assert runs["Plan"]["status"] == "FAILED" and runs["Plan"]["error"] == "ConfigurationError"
    assert runs["RecordFailure"]["status"] == "SUCCEEDED"
    assert runs["JobFailed"]["status"] == "FAILED"
    bars = timeline(runs)
    assert [b["label"] for b in bars] == ["Probe", "Plan", "RecordFailure", "JobFailed"]
    assert bars[0]["end"] - bars[0]["start"] == 3


def test_watch_prints_each_change_once_and_exits_by_the_outcome() -> None:
    states = [
        ("RUNNING", {"Probe": {"status": "RUNNING"}}, None),
        ("RUNNING", {"Probe": {"status": "RUNNING"}}, None),
        ("FAILED", {"Probe": {"status": "FAILED"}}, "NotAVideoError"),
    ]

    class Fake:
        def execution(self, arn: str) -> dict[str, Any]:
            status, runs, error = states.pop(0)
            return {
                "summary": {"status": status, "error": error, "cause": "text"},
                "states": runs,
            }

    out = io.StringIO()
    assert watch(Fake(), "arn", out, sleep=lambda _: None) == 1  # type: ignore[arg-type]
    lines = out.getvalue().splitlines()
    assert lines == [
        "running   Probe:running",
        "failed    Probe:failed",
        "error: NotAVideoError: text",
    ]


def test_the_aws_console_reads_the_deployed_stack_through_the_same_monitor(
    monkeypatch: Any,
) -> None:
    import argparse

    from moto import mock_aws

    from workflow.cli.watch import _monitor

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in (("AWS_ACCESS_KEY_ID", "u"), ("AWS_SECRET_ACCESS_KEY", "u")):
        monkeypatch.setenv(name, value)
    args = argparse.Namespace(
        aws=True, profile=None, region="eu-west-1", stack_name="prod", parameter=[]
    )
    with mock_aws():
        monitor = _monitor(args)
    # the template resolved for the deployed stack: its bucket, its functions' memory,
    # and clients for AWS's own endpoints in that region
    assert monitor.stack == "prod"
    assert monitor.output_bucket == "prod-output-123456789012-eu-west-1"
    assert monitor.billing.branch("video-00000").memory_mb == 10240
    assert monitor.sfn.meta.endpoint_url == "https://states.eu-west-1.amazonaws.com"
    assert monitor.s3.meta.region_name == "eu-west-1"


def test_one_progress_serves_the_process_line_and_the_console(monkeypatch: Any) -> None:
    import json
    from pathlib import Path

    import boto3
    from moto import mock_aws

    from workflow.cli.billing import VodBilling
    from workflow.cli.monitor import Monitor
    from workflow.cli.run import _Progress
    from workflow.local.template import Stack
    from workflow.vod.jobs import JobPaths

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in (("AWS_ACCESS_KEY_ID", "u"), ("AWS_SECRET_ACCESS_KEY", "u")):
        monkeypatch.setenv(name, value)
    billing = VodBilling.from_stack(Stack(Path(__file__).resolve().parents[2]))

    class History:
        def get_execution_history(self, **_: Any) -> dict[str, Any]:
            return {"events": [event(1, "MapStateEntered", 0, name=billing.map_state)]}

    paths = JobPaths("job")
    finished = {"finished_at": T0.isoformat(), "wall_seconds": 2.0}
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="out")
        # GIVEN a job of 2 chunks x 4 rungs, audio, images and subtitles: three items
        # done (not images), the second chunk failed; and its per-title ladder's one
        # analysis item, done before them
        plan = {
            "chunks": [{"index": 0}, {"index": 1}],
            "renditions": [{}] * 4,
            "facts": {"audio": True},
        }
        per_title = {"mode": "per-title"}
        for key, body in (
            (paths.plan_key, {**plan, "extras": ["images", "subtitles-en"], "ladder": per_title}),
            (paths.analysis_items_key, [{"kind": "analysis"}]),
            (paths.result_key("analysis-00000"), finished),
            (paths.result_key("video-00000"), finished),
            (paths.result_key("audio"), finished),
            # a subtitles result records no wall time
            (paths.result_key("subtitles-en"), {"finished_at": T0.isoformat()}),
            (paths.item_error_key("video-00001"), {}),
        ):
            s3.put_object(Bucket="out", Key=key, Body=json.dumps(body).encode())
        monitor = Monitor(History(), s3, "vidflow", "out", billing)
        # WHEN `vidflow process` draws its line and the console reads the job
        line = _Progress(monitor, "arn", "job").read("RUNNING").line()
        job = monitor.job("job", {"status": "RUNNING"})
    # THEN both count the same items from the same records
    also = "+ audio + images + subtitles-en"
    assert line == f"{billing.map_state}: 3/5 items, 60% (2 chunks x 4 rungs {also})"
    assert {k: job["progress"][k] for k in ("items", "done", "failed")} == {
        "items": 5, "done": 3, "failed": ["video-00001"],
    }  # fmt: skip
    # AND the analysis counts in its own Map, not the plan's, but has its bar and cost
    assert job["progress"]["maps"] == {
        "items_key": {"items": 5, "done": 3},
        "analysis_key": {"items": 1, "done": 1},
    }
    bars = [bar["label"] for bar in job["item_bars"]]
    assert bars == ["analysis-00000", "audio", "video-00000"]
    assert job["cost"] == billing.estimate(
        {"analysis-00000": 2.0, "audio": 2.0, "subtitles-en": 0, "video-00000": 2.0}
    )


def test_progress_weighs_items_by_their_encoding_work() -> None:
    from workflow.cli.monitor import JobProgress, _work
    from workflow.cli.run import _count

    # GIVEN a timed plan: a 4 s and an 8 s chunk in 2 rungs, audio and images of 12 s
    plan = {
        "facts": {"duration": 12.0, "audio": True},
        "renditions": [{}, {}],
        "chunks": [{"index": 0, "start": 0.0, "end": 4.0}, {"index": 1, "start": 4.0, "end": 12.0}],
    }
    work = _work(plan, ["audio", "images"])
    assert work == {"video-00000": 8.0, "video-00001": 16.0, "audio": 3.0, "images": 3.0}
    # WHEN the long chunk is done, THEN over half the work is, though one item of four is
    progress = JobProgress(4, 2, 2, ["audio", "images"], ["video-00001"], [], work)
    assert progress.fraction == pytest.approx(16 / 30)
    # AND images in pieces weigh by their span: 1,100 s sampled every 5 s is 220 ticks,
    # two pieces of 500 s and one of 100 s
    long = {**plan, "facts": {"duration": 1100.0}, "thumbnail_seconds": 5.0}
    pieces = _work(long, ["images", "images-00100", "images-00200"])
    assert [pieces[n] for n in ("images", "images-00100", "images-00200")] == [125, 125, 25]
    # AND one images item for the whole weighs the whole
    assert _work(long, ["images"])["images"] == 1100 / 4
    # AND counts read as English
    assert (_count(1, "chunk"), _count(1, "rung"), _count(3, "rung")) == (
        "1 chunk", "1 rung", "3 rungs",
    )  # fmt: skip


def test_a_running_item_counts_for_the_part_it_has_encoded() -> None:
    from workflow.cli.monitor import JobProgress

    # GIVEN two chunks of equal work, the first done, the second a quarter encoded
    work = {"video-00000": 8.0, "video-00001": 8.0}
    running = {"video-00000": 0.9, "video-00001": 0.25}
    progress = JobProgress(2, 2, 2, [], ["video-00000"], [], work, running)
    # THEN the job is as far as the whole first and a quarter of the second
    assert progress.fraction == pytest.approx(10 / 16)
    # AND a plan without times counts items alike
    assert JobProgress(2, 2, 1, [], [], [], {}, {"video-00001": 0.5}).fraction == 0.25
    # AND an encode that has reached its end without a result yet is never the whole job
    finished = JobProgress(1, 1, 1, [], [], [], {"video-00000": 8.0}, {"video-00000": 1.0})
    assert finished.fraction < 1.0
    assert JobProgress(1, 1, 1, [], ["video-00000"], [], {"video-00000": 8.0}).fraction == 1.0


def test_a_progress_line_counts_a_kind_of_item_that_has_many() -> None:
    from workflow.cli.run import _grouped

    # GIVEN four hours of audio in 2-minute pieces, two images pieces and one subtitle
    names = [f"audio-{i:05d}" for i in range(120)] + ["images-00000", "images-00001", "sub-en"]
    # THEN the line counts each kind with several items and names the lone ones, once each
    assert _grouped(names) == ["120 audio items", "2 images items", "sub-en"]
    assert _grouped(["audio", "images", "subtitles-en"]) == ["audio", "images", "subtitles-en"]
    assert _grouped([]) == []


def test_the_console_names_no_stream_by_a_rungs_folder_and_stays_up() -> None:
    # GIVEN a live stream, whose rung's folder holds a playlist named as the stream's is
    with mock_aws():
        options = {"region_name": "us-east-1", "aws_access_key_id": "u"}
        options["aws_secret_access_key"] = "u"
        s3, secrets = boto3.client("s3", **options), boto3.client("secretsmanager", **options)
        s3.create_bucket(Bucket="out")
        for key in ("live/game/live.m3u8", "live/game/360p/live.m3u8"):
            s3.put_object(Bucket="out", Key=key, Body=b"#EXTM3U\n")
        secrets.create_secret(Name="playback", SecretString="s" * 64)
        monitor = Monitor(
            sfn=None, s3=s3, stack="vidflow", output_bucket="out", billing=None,  # type: ignore[arg-type]
            playback=PlaybackSecret(secrets, "playback"),
        )  # fmt: skip
        console = ConsoleServer(monitor).start()
        try:
            # WHEN the console is asked for the rung's folder as a stream, then for the stream
            asked = [
                status_of(f"{console.url}api/stream?name={name}") for name in ("game/360p", "game")
            ]
        finally:
            console.stop()
    # THEN that is no stream (not a dropped connection), and the stream still plays
    assert asked == [404, 200]


def test_no_token_is_signed_for_what_is_no_asset() -> None:
    # GIVEN an execution started by hand, its input naming a stream no stream could have
    class Secret:
        def get(self) -> bytes:
            return b"s" * 64

    monitor = Monitor(sfn=None, s3=None, stack="vidflow", output_bucket="out", billing=None,  # type: ignore[arg-type]
                      playback=Secret())  # fmt: skip
    # THEN its player gets no token (and the execution's page no traceback)
    assert monitor.playback_token("live.a/../b") is None
    assert monitor.playback_token("live.game") is not None


def test_a_stack_that_stopped_is_a_message_in_the_page_not_a_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a console whose stack has stopped: nothing answers on its port
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{free.getsockname()[1]}"
    options: dict[str, Any] = {"region_name": "us-east-1", "endpoint_url": gone}
    options |= {"aws_access_key_id": "u", "aws_secret_access_key": "u"}
    options["config"] = Config(retries={"total_max_attempts": 1})
    monitor = Monitor(
        sfn=boto3.client("stepfunctions", **options), s3=boto3.client("s3", **options),
        stack="vidflow", output_bucket="out", billing=None,  # type: ignore[arg-type]
    )  # fmt: skip
    console = ConsoleServer(monitor).start()
    try:
        # WHEN the page asks for the executions, a stream and the media
        paths = ("api/executions", "api/stream?name=game", "media/outputs/j/master.m3u8")
        asked = [status_of(f"{console.url}{path}") for path in paths]
    finally:
        console.stop()
    # THEN each is a 502 the page can show, and nothing is printed
    assert asked == [502, 502, 502]
    assert "Traceback" not in capfd.readouterr().err


def test_the_console_lists_every_live_stream_past_one_listings_worth() -> None:
    # GIVEN a season's streams, more than one S3 listing holds (1,000), one of them ended,
    # and a folder under live/ that is no stream
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="out")
        names = [f"game-{n:04d}" for n in range(1005)]
        for name in names:
            s3.put_object(Bucket="out", Key=f"live/{name}/live.m3u8", Body=b"#EXTM3U\n")
        s3.put_object(Bucket="out", Key="live/game-0003/master.m3u8", Body=b"#EXTM3U\n")
        s3.put_object(Bucket="out", Key="live/notes/readme.txt", Body=b"x")
        monitor = Monitor(None, s3, "vidflow", "out", None)  # type: ignore[arg-type]
        # WHEN the console lists them
        streams = monitor.streams()
    # THEN every stream is there, in order, the ended one said so
    assert [s["stream"] for s in streams] == names
    assert [s["stream"] for s in streams if s["ended"]] == ["game-0003"]
