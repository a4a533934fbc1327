"""The live cloud model (bench/live_model.py): its per-segment counts are the code's, and its
rates scale as counting says. moto's in-memory S3 and DynamoDB; no timing."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.records import stream_settings
from tests.unit.tables import create_table
from workflow.live.config import StreamSettings
from workflow.live.ingest import on_ingest
from workflow.live.publish import advance_stream, publish_segment
from workflow.live.store import STREAM_ITEM, StreamTable
from workflow.local.template import Stack, load_template
from workflow.media.ladder import Rendition
from workflow.runtime import Clients
from workflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = "out"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lm() -> Iterator[ModuleType]:
    """bench/live_model.py, with the cloud_model it imports as a script would."""
    saved = {n: sys.modules.get(n) for n in ("cloud_model", "live_model")}
    _load("cloud_model")
    yield _load("live_model")
    for name, module in saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module


class CallCounter:
    """Counts a client's DynamoDB and S3 calls the way the model classifies them."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        op = model.name
        key = (params.get("Key") or params.get("Item") or {}) if "TableName" in params else {}
        on_record = key.get("item", {}).get("S") == STREAM_ITEM
        if op in ("PutItem", "UpdateItem", "DeleteItem"):
            self.counts["stream_writes" if on_record else "arrival_writes"] += 1
        elif op == "TransactWriteItems":
            # Each item a transaction writes is billed at twice its size.
            for action in params["TransactItems"]:
                (body,) = action.values()
                on_record = body["Key"]["item"]["S"] == STREAM_ITEM
                self.counts["stream_writes" if on_record else "arrival_writes"] += 2
        elif op == "GetItem":
            self.counts["stream_reads" if on_record else "small_reads"] += 1
        elif op == "Query":
            self.counts["small_reads"] += 1
        elif op == "PutObject":
            self.counts["s3_puts"] += 1
        elif op in ("GetObject", "HeadObject"):
            self.counts["s3_gets"] += 1


@pytest.fixture
def live() -> Iterator[tuple[Settings, Clients, CallCounter]]:
    with mock_aws():
        options = {"region_name": "us-east-1", "aws_access_key_id": "u"}
        options["aws_secret_access_key"] = "u"
        dynamodb, s3 = boto3.client("dynamodb", **options), boto3.client("s3", **options)
        name = create_table(dynamodb, Stack(ROOT), "LiveTable")
        s3.create_bucket(Bucket=OUTPUT)
        started: list[dict[str, Any]] = []
        sfn = SimpleNamespace(
            start_execution=lambda **kw: started.append(kw),
            exceptions=SimpleNamespace(ExecutionAlreadyExists=type("Exists", (Exception,), {})),
        )
        settings = Settings(output_bucket=OUTPUT, live_table=name, live_state_machine_arn="arn")
        clients = Clients(s3=s3, dynamodb=dynamodb, sfn=sfn, clock=lambda: 1_800_000_000.0)
        table = StreamTable(dynamodb, name)
        table.create("game")
        stream = stream_settings(
            renditions=[
                Rendition("720p", 1280, 720, 2800, "3.1"),
                Rendition("360p", 640, 360, 800, "3.0"),
            ],
            segment_seconds=4.0,
            gap_seconds=12.0,
        )
        table.configure("game", stream.to_dict())
        counter = CallCounter()
        for client in (dynamodb, s3):
            client.meta.events.register("provide-client-params", counter)
        yield settings, clients, counter


def arrive(sequence: int, settings: Settings, clients: Clients) -> dict[str, Any]:
    result = {"duration": 4.0, "bytes": {"720p": 1000, "360p": 500}}
    return publish_segment(
        {"stream": "game", "sequence": sequence, "result": result}, settings, clients
    )


def test_publish_calls_are_what_the_model_counts(
    lm: ModuleType, live: tuple[Settings, Clients, CallCounter]
) -> None:
    settings, clients, counter = live
    # GIVEN a stream that has published its first segment
    arrive(0, settings, clients)
    counter.counts.clear()
    # WHEN the next segment is published, nobody else writing
    arrive(1, settings, clients)
    # THEN it made exactly the calls the model prices: 4 record writes, the arrival, the
    # end of its claim and its count (a transaction of two small items, billed twice), ...
    expected = lm.segment_calls(2, has_audio=False)["publish"]
    assert dict(counter.counts) == {k: v for k, v in vars(expected).items() if v}
    assert expected.stream_writes == 4 and expected.arrival_writes == 6


def test_ingest_calls_are_what_the_model_counts(
    lm: ModuleType, live: tuple[Settings, Clients, CallCounter]
) -> None:
    settings, clients, counter = live
    record = {"s3": {"bucket": {"name": "in"}, "object": {"key": "live/game/7.ts", "eTag": "e"}}}
    on_ingest([{**record, "s3": {**record["s3"], "object": {"key": "live/game/0.ts"}}}],
              settings, clients)  # fmt: skip
    counter.counts.clear()
    on_ingest([record], settings, clients)
    expected = lm.segment_calls(2, has_audio=False)["ingest"]
    assert dict(counter.counts) == {k: v for k, v in vars(expected).items() if v}


def test_a_sweep_of_a_quiet_stream_is_what_the_model_counts(
    lm: ModuleType, live: tuple[Settings, Clients, CallCounter]
) -> None:
    settings, clients, counter = live
    arrive(0, settings, clients)
    counter.counts.clear()
    advance_stream("game", settings, clients)
    assert dict(counter.counts) == {k: v for k, v in vars(lm.SWEEP_CALLS).items() if v}


def test_every_file_of_a_segment_is_one_put_in_transcode_and_one_in_publish(
    lm: ModuleType,
) -> None:
    calls = lm.segment_calls(4, has_audio=True)
    assert calls["transcode"].s3_puts == calls["publish"].s3_puts == 5
    assert lm.total(calls).stream_writes == 6
    # The claim, the arrival, the claim's end, its count (the arrival and the stream's
    # count item, in a transaction: each billed twice).
    assert lm.total(calls).arrival_writes == 7


def test_a_write_costs_the_record_in_whole_kilobytes(lm: ModuleType) -> None:
    calls = lm.Calls(stream_writes=5, arrival_writes=1, stream_reads=3, small_reads=2)
    assert lm.write_units(calls, 1024) == 5 * 1 + 1
    assert lm.write_units(calls, 1025) == 5 * 2 + 1
    assert lm.read_units(calls, 4097) == 3 * 2 + 2


def test_concurrency_is_rate_times_duration(lm: ModuleType) -> None:
    assert lm.concurrency(125.0, 6.88) == pytest.approx(860.0)
    assert lm.concurrency(0.0, 100.0) == 0.0


@pytest.fixture(scope="module")
def inputs(lm: ModuleType) -> tuple[Any, Any, Any]:
    template = lm.LiveTemplate.from_stack(Stack(ROOT))
    config = lm.stream_settings(template, 4.0, 1080)
    measured = sys.modules["cloud_model"].Measured(3.0, 2.0, 0.02, "test", {})
    return template, config, measured


def test_the_template_gives_the_live_path_and_its_functions(inputs: tuple[Any, Any, Any]) -> None:
    template, config, _ = inputs
    assert template.machine_type == "EXPRESS"
    assert template.path == ("Probe", "AlreadyPublished", "Transcode", "Publish", "Published")
    assert template.billing_mode == "PAY_PER_REQUEST"
    assert template.schedule_s[template.sweep] == 60.0
    assert config.rungs == ["1080p", "720p", "480p", "360p", "audio"]


def test_doubling_the_streams_doubles_every_rate_and_keeps_the_cost_per_stream(
    lm: ModuleType, inputs: tuple[Any, Any, Any]
) -> None:
    template, config, measured = inputs
    one, two = (lm.model(n, 4.0, 2.0, template, config, measured) for n in (250, 500))
    assert two["state_machine"]["executions_s"] == 2 * one["state_machine"]["executions_s"]
    assert two["dynamodb"]["table_wru_s"]["end"] == 2 * one["dynamodb"]["table_wru_s"]["end"]
    for rate, value in one["s3"]["bucket_total"].items():
        assert two["s3"]["bucket_total"][rate] == 2 * value
    transcode = template.tasks["Transcode"]
    assert two["lambda"]["functions"][transcode]["concurrency"] == pytest.approx(
        2 * one["lambda"]["functions"][transcode]["concurrency"]
    )
    assert two["usd_per_stream_hour_total"] == pytest.approx(one["usd_per_stream_hour_total"])
    assert two["usd_game"] == pytest.approx(2 * one["usd_game"])


def test_the_account_limit_binds_where_live_concurrency_reaches_it(
    lm: ModuleType, inputs: tuple[Any, Any, Any]
) -> None:
    template, config, measured = inputs
    r = lm.model(500, 4.0, 2.0, template, config, measured)
    at = r["streams_where_limit_binds"]["lambda_account_concurrency"]
    # GIVEN the stream count the model says binds, THEN the per-segment steps fill the pool
    at_limit = lm.model(round(at), 4.0, 2.0, template, config, measured)["lambda"]
    scheduled = {template.sweep, template.reconcile}
    used = sum(f["concurrency"] for n, f in at_limit["functions"].items() if n not in scheduled)
    assert used == pytest.approx(at_limit["available_to_live"], rel=0.01)


def test_an_event_playlist_grows_the_stream_record_and_a_window_bounds_it(
    lm: ModuleType, inputs: tuple[Any, Any, Any]
) -> None:
    _, config, _ = inputs
    small, big = (lm.stream_record_bytes(config, n) for n in (10, 1800))
    assert big - small > 1800 * 3  # at least "4.0," for every entry
    windowed = StreamSettings(**{**vars(config), "window": 10})
    assert lm.stream_record_bytes(windowed, 1800) - lm.stream_record_bytes(windowed, 10) < 10


def _latency_alarm_fires(p95_seconds: float, segment_seconds: float) -> bool:
    """Whether the template's LiveLatencyAlarm breaches at a p95 latency of
    ``p95_seconds`` on a stack of ``segment_seconds`` segments."""
    alarm = load_template(ROOT / "sam-template.yaml")["Resources"]["LiveLatencyAlarm"]
    props = alarm["Properties"]

    def number(value: Any) -> float:
        return segment_seconds if value == {"Ref": "SegmentSeconds"} else float(value)

    if "Metrics" not in props:
        value = p95_seconds
    else:
        (expression,) = [m["Expression"] for m in props["Metrics"] if m.get("ReturnData")]
        text = expression["Fn::Sub"] if isinstance(expression, dict) else expression
        quotient = re.fullmatch(r"latency / \$\{SegmentSeconds\}", text)
        assert quotient, f"an expression this test does not evaluate: {text}"
        value = p95_seconds / segment_seconds
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    return value > number(props["Threshold"])


@pytest.mark.parametrize("segment_s", [2.0, 4.0, 6.0])
def test_the_latency_alarm_is_quiet_at_a_normal_segments_latency_and_fires_on_a_queue(
    lm: ModuleType, inputs: tuple[Any, Any, Any], segment_s: float
) -> None:
    # GIVEN the model's upload-to-playlist time of a 1080p venue's segment: S3's event
    # (bench/live_latency.py's 0.5 s), LiveIngest, then the execution's steps
    template, _, measured = inputs
    config = lm.stream_settings(template, segment_s, 1080)
    r = lm.model(500, segment_s, 2.0, template, config, measured)
    normal = 0.5 + lm.a("ingest_s") + r["state_machine"]["duration_s"]
    # THEN the alarm stays quiet at it (a normal broadcast is no page), and fires when
    # segments queue behind throttled functions (a minute's backlog)
    assert not _latency_alarm_fires(normal, segment_s), f"{normal:.1f} s is normal"
    assert _latency_alarm_fires(60.0, segment_s)
