"""A cloud model of live streams at scale: N venue streams of S-second segments on AWS.

Every segment a venue uploads starts LiveIngest (its S3 event), which starts one Express
execution of the live state machine: LiveProbe -> LiveTranscode (every rung and the
audio) -> LivePublish; LiveSweep and Reconcile run on their schedules. This model counts
what that costs at N streams, from three sources:

- the code: what each step does to DynamoDB and S3 per segment (``segment_calls``, counted
  from ``workflow/live/{ingest,probe,segment,publish,store}.py``; a unit test runs those
  code paths against moto and checks the counts), and the size of the stream record the
  lease writes rewrite (``stream_record_bytes``, from the real ``LivePlaylist.to_dict``);
- the template: the live machine's path and type, each function's memory, timeout and
  reserved concurrency, the schedules, the table's billing mode, the default ladder;
- measurements: CPU-seconds per source second of the ladder, as ``cloud_model.py`` reads
  them from the newest ``vod_local-*.json`` (``live_latency.py`` records wall time only).

Everything else is an assumption, printed with its source. Players' GETs are out of scope:
a CDN serves them. It is a model, not a measurement: no AWS account is used.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Run as a script, so its own folder is on the path: the VOD model's assumptions are shared.
import cloud_model
from cloud_model import RESULTS, Measured, efficiency, measured, vcpus

from workflow import prices
from workflow.live.config import StreamSettings
from workflow.live.rules import Entry, LivePlaylist
from workflow.live.store import STREAM_ITEM
from workflow.local.template import Stack, TemplateError
from workflow.media.ladder import build_ladder

BENCH = Path(__file__).resolve().parent

# The VOD model's assumptions that hold for live too, then live's own.
_SHARED = (
    "mb_per_vcpu",
    "lambda_gb_second_usd",
    "lambda_request_usd",
    "s3_read_mb_s",
    "s3_write_mb_s",
    "x264_efficiency_6vcpu",
    "cpu_speed_vs_here",
    "state_overhead_s",
)
ASSUMPTIONS: dict[str, tuple[float, str]] = {
    **{name: cloud_model.ASSUMPTIONS[name] for name in _SHARED},
    **{
        name: (price.usd, price.source)
        for name, price in (
            ("express_request_usd", prices.EXPRESS_REQUEST),
            ("express_gb_second_usd", prices.EXPRESS_GB_SECOND),
            ("dynamodb_write_unit_usd", prices.DYNAMODB_WRITE_REQUEST),
            ("dynamodb_read_unit_usd", prices.DYNAMODB_READ_REQUEST),
            ("s3_put_usd", prices.S3_PUT_REQUEST),
            ("s3_get_usd", prices.S3_GET_REQUEST),
            ("s3_gb_month_usd", prices.S3_GB_MONTH),
            ("logs_gb_usd", prices.LOGS_INGESTED_GB),
        )
    },
    "venue_mbit_s": (8.0, "assumed: a venue encoder's 1080p30 feed (6-10 Mbit/s is typical)"),
    "frame_rate": (30.0, "assumed: the venue feed's frame rate (the bench source's)"),
    "ingest_s": (0.08, "assumed: LiveIngest warm: a DynamoDB read, two writes and StartExecution"),
    "probe_s": (
        0.35,
        "assumed: LiveProbe warm: HEAD, a ranged GET, PyAV reading the segment, two reads",
    ),
    "transcode_overhead_s": (
        0.1,
        "assumed: LiveTranscode's HEAD, ranged GET and stream record read before ffmpeg",
    ),
    "publish_s": (
        0.15,
        "assumed: LivePublish warm: six DynamoDB calls and the playlists' PUTs in parallel",
    ),
    "probe_url_gets": (
        2,
        "assumed: PyAV reads a segment's URL in one GET, plus one seek near its end",
    ),
    "dynamodb_call_s": (0.006, "assumed: one DynamoDB call from Lambda in-region, 3-10 ms"),
    "list_page_s": (0.1, "assumed: one ListObjectsV2 page of 1,000 keys"),
    "express_memory_mb": (
        64,
        "assumed: the smallest billed step; an execution's payloads here are a few KB",
    ),
    "account_concurrency": (
        1000,
        "Lambda quotas: default concurrent executions per account and Region (raisable)",
    ),
    "partition_wru_s": (1000, "DynamoDB: one partition serves up to 1,000 WRU/s (3,000 RRU/s)"),
    "table_wru_s": (40000, "DynamoDB quotas: an on-demand table's default maximum, 40,000 WRU/s"),
    "new_table_wru_s": (
        4000,
        "DynamoDB on-demand: a new table serves up to 4,000 WRU/s at once; above its previous "
        "peak it doubles within 30 minutes at most",
    ),
    "prefix_put_s": (3500, "S3: 3,500 PUT/COPY/POST/DELETE per second per partitioned prefix"),
    "prefix_get_s": (5500, "S3: 5,500 GET/HEAD per second per partitioned prefix"),
    "log_bytes_per_execution": (
        8000,
        "assumed: the live machine logs at Level ALL (no data): ~20 events of ~400 bytes",
    ),
    "log_bytes_per_invocation": (1000, "assumed: START/END/REPORT lines and one Powertools line"),
    "storage_months": (1, "assumed: the recording and the ingest segments kept one month"),
}

KB = 1024


def a(name: str) -> float:
    return float(ASSUMPTIONS[name][0])


@dataclass(frozen=True)
class Calls:
    """What one step does per segment: DynamoDB calls by the item they touch, S3 requests."""

    # Conditional writes to the stream record: each costs the record's size in WRU.
    stream_writes: int = 0
    # Writes of a segment's arrival item, or of another item well under 1 KB (one in a
    # transaction counts twice: billed at twice its size).
    arrival_writes: int = 0
    # Strongly consistent reads of the stream record: its size in 4 KB units.
    stream_reads: int = 0
    # Reads of one small item (an arrival, or a query that finds one or none).
    small_reads: int = 0
    s3_puts: int = 0
    s3_gets: int = 0


def segment_calls(
    video_rungs: int, has_audio: bool = True, probe_url_gets: int = 2
) -> dict[str, Calls]:
    """Per segment, by step: a new segment (not a duplicate) of a stream whose settings are
    fixed, meeting no other writer of its stream. Counted from the code:

    - venue: the segment's upload to ``live/<stream>/<seq>.ts``;
    - ingest (``on_ingest``): ``note_upload``, i.e. ``create``'s conditional put, failing
      its condition (a failed conditional write is billed like a write of the existing
      item), a read of the record's ``lowest_upload`` (eventually consistent, priced here
      as a strong one) and the ``last_upload`` update;
    - probe (``probe_segment``): ``has_arrival``, ``get``; ``segment_input``'s HEAD and
      ranged GET, then PyAV on the presigned URL;
    - transcode (``transcode_segment``): ``get``; ``segment_input``; one GET per ffmpeg
      (video, audio); ``claim`` (an update of the segment's claim item, and a read of its
      arrival); one PUT per rung's segment and the audio's;
    - publish (``publish_segment``): ``admit`` (a conditional update of the record, which
      succeeds for a segment that comes in order), ``record_arrival`` (a read of the
      claim, the put, the claim's delete), ``count_published`` (a transaction updating the
      arrival and the stream's count item, each billed twice), ``count_change``, then
      ``advance_stream``: ``acquire``, ``require``, ``arrivals`` (a query), ``save`` (it
      releases at the first try); one PUT per rung's live playlist and the audio's.
    """
    files = video_rungs + int(has_audio)
    return {
        "venue": Calls(s3_puts=1),
        "ingest": Calls(stream_writes=2, stream_reads=1),
        "probe": Calls(stream_reads=1, small_reads=1, s3_gets=2 + probe_url_gets),
        "transcode": Calls(
            stream_reads=1,
            arrival_writes=1,
            small_reads=1,
            s3_gets=2 + 1 + int(has_audio),
            s3_puts=files,
        ),
        "publish": Calls(
            arrival_writes=6, stream_writes=4, stream_reads=1, small_reads=2, s3_puts=files
        ),
    }


# LiveSweep per open stream per run (``advance_stream`` with nothing new): acquire,
# require, arrivals, save; it writes no playlist when nothing changed.
SWEEP_CALLS = Calls(stream_writes=2, stream_reads=1, small_reads=1)
# Reconcile's DynamoDB calls per stream and run: the record, the arrivals query, the mark.
RECONCILE_CALLS = 3
# One arrival item as the arrivals query reads it: keys and its small JSON.
ARRIVAL_BYTES = 100


def total(calls: dict[str, Calls]) -> Calls:
    fields = Calls.__dataclass_fields__
    return Calls(**{f: sum(getattr(c, f) for c in calls.values()) for f in fields})


def write_units(calls: Calls, record_bytes: int) -> int:
    """WRU: a write costs its item's size (the larger of before and after) in 1 KB units."""
    return calls.stream_writes * math.ceil(record_bytes / KB) + calls.arrival_writes


def read_units(calls: Calls, record_bytes: int) -> int:
    """RRU of strongly consistent reads: 4 KB units, at least one per read."""
    return calls.stream_reads * math.ceil(record_bytes / (4 * KB)) + calls.small_reads


def stream_record_bytes(config: StreamSettings, entries: int) -> int:
    """The stream record's DynamoDB size (attribute names plus values) while it holds a
    lease and ``entries`` playlist entries: the state keeps every entry's duration when
    the playlist is an EVENT (window 0, the template's default)."""
    playlist = LivePlaylist(0, tuple(Entry(i, config.segment_seconds) for i in range(entries)))
    if config.window > 0:
        playlist = LivePlaylist(0, playlist.entries[-config.window :])
    values = {
        "stream": "venue-0123",
        "item": STREAM_ITEM,
        "pending": str(entries),
        "open": "1",
        "config": json.dumps(config.to_dict()),
        "state": json.dumps(playlist.to_dict()),
        "owner": "0" * 32,
        "lease_until": "1800000000.123",
        "lowest_upload": "0",
    }
    return sum(len(k) + len(v.encode()) for k, v in values.items())


def concurrency(rate_per_s: float, duration_s: float) -> float:
    """Steady-state concurrent executions (Little's law): arrivals per second x seconds each."""
    return rate_per_s * duration_s


@dataclass(frozen=True)
class LiveTemplate:
    """What the template says about the live pipeline."""

    machine_type: str
    # States a new segment's execution runs, and the function each task state calls.
    path: tuple[str, ...]
    tasks: dict[str, str]
    ingest: str
    sweep: str
    reconcile: str
    memory: dict[str, int]
    timeout: dict[str, int]
    schedule_s: dict[str, float]
    # ReservedConcurrentExecutions of every function that sets one (VOD's included).
    reserved: dict[str, int]
    billing_mode: str
    ladder: str
    segment_seconds: float
    window: int

    @classmethod
    def from_stack(cls, stack: Stack) -> LiveTemplate:
        arn = stack.outputs()["LiveStateMachineArn"]
        machine = next((m for m in stack.state_machines() if m.arn == arn), None)
        if machine is None:
            raise TemplateError(f"no state machine in the template has the ARN {arn}")
        states = json.loads(machine.definition)["States"]
        path, tasks, name = [], {}, json.loads(machine.definition)["StartAt"]
        while name is not None and name not in path:
            path.append(name)
            state = states[name]
            if state["Type"] == "Task":
                function = stack.find_function(state["Parameters"]["FunctionName"])
                if function is None:
                    raise TemplateError(f"{name} calls a function the template lacks")
                tasks[name] = function.logical_id
            # A Choice's Default: a new segment is not a duplicate.
            name = state.get("Default") if state["Type"] == "Choice" else state.get("Next")
        functions = stack.functions()
        live_table = stack.outputs()["LiveTableName"]
        scheduled = [f for f in functions if f.schedules]
        (ingest,) = [f for f in functions if f.triggers and arn in f.environment.values()]
        (reconcile,) = [f for f in scheduled if arn in f.environment.values()]
        (sweep,) = [
            f for f in scheduled if live_table in f.environment.values() and f is not reconcile
        ]
        reserved = {}
        for function in functions:
            props = stack.resources[function.logical_id].get("Properties", {})
            value = stack.resolve(props.get("ReservedConcurrentExecutions"))
            if isinstance(value, int | str) and str(value).lstrip("-").isdigit():
                reserved[function.logical_id] = int(value)
        billing = stack.tables()[live_table].get("BillingMode", "PROVISIONED")
        return cls(
            machine_type=machine.type,
            path=tuple(path),
            tasks=tasks,
            ingest=ingest.logical_id,
            sweep=sweep.logical_id,
            reconcile=reconcile.logical_id,
            memory={f.logical_id: f.memory for f in functions},
            timeout={f.logical_id: f.timeout for f in functions},
            schedule_s={f.logical_id: f.schedules[0] for f in scheduled},
            reserved=reserved,
            billing_mode=billing,
            ladder=stack.parameters["Ladder"],
            segment_seconds=float(stack.parameters["SegmentSeconds"]),
            window=int(stack.parameters["LiveWindow"]),
        )


def stream_settings(t: LiveTemplate, segment_s: float, height: int) -> StreamSettings:
    """A venue stream's settings as its first probe fixes them, at the template's defaults."""
    width = round(height * 16 / 9 / 2) * 2
    return StreamSettings(
        renditions=build_ladder(width, height, a("frame_rate"), t.ladder),
        segment_seconds=segment_s,
        window=t.window,
        gap_seconds=3 * segment_s,
        first_sequence=None,
        frame_rate=a("frame_rate"),
        has_audio=True,
        audio_kbps=128,
        preset="veryfast",
    )


def model(
    streams: int,
    segment_s: float,
    game_hours: float,
    t: LiveTemplate,
    config: StreamSettings,
    m: Measured,
) -> dict[str, Any]:
    """Rates, concurrency, limits and cost of ``streams`` live streams of ``segment_s``."""
    rate = streams / segment_s  # segments (and executions) per second
    calls = segment_calls(len(config.renditions), config.has_audio, int(a("probe_url_gets")))
    per_segment = total(calls)
    game_segments = max(1, round(game_hours * 3600 / segment_s))
    sizes = [stream_record_bytes(config, n) for n in (0, game_segments)]
    grows = (sizes[1] - sizes[0]) / game_segments

    def size(n: int) -> int:
        return round(sizes[0] + grows * n)

    wru = [write_units(per_segment, size(n)) for n in range(game_segments)]
    rru = [read_units(per_segment, size(n)) for n in range(game_segments)]

    # Lambda: one call per segment for each per-segment step; the schedules once a period.
    transcode_fn = t.tasks["Transcode"]
    cpus = vcpus(t.memory[transcode_fn])
    cpu_s = (m.cpu_per_source_second + m.aac_cpu_per_source_second) * segment_s
    encode = cpu_s / (cpus * efficiency(cpus) * a("cpu_speed_vs_here"))
    segment_mb = a("venue_mbit_s") * segment_s / 8
    output_mb = (m.output_mb_per_source_second + config.audio_kbps / 8000) * segment_s
    transcode_s = (
        a("transcode_overhead_s")
        + segment_mb / a("s3_read_mb_s")
        + encode
        + output_mb / a("s3_write_mb_s")
    )
    step_s = {"Probe": a("probe_s"), "Transcode": transcode_s, "Publish": a("publish_s")}
    sweep_calls = SWEEP_CALLS.stream_writes + SWEEP_CALLS.stream_reads + SWEEP_CALLS.small_reads
    sweep_s = streams * sweep_calls * a("dynamodb_call_s")
    # Reconcile (workflow/live/lost.py): a page of stream names per 1,000 streams, then per
    # stream its record, its arrivals since the last run (one query), one list page from
    # the segment it had accounted for, and the raised mark: the same whatever the stream's
    # length. Its reads: the record (in 4 KB units) and the arrivals of one period.
    per_run = t.schedule_s[t.reconcile] / segment_s
    reconcile_s = math.ceil(streams / 1000) * a("list_page_s") + streams * (
        a("list_page_s") + RECONCILE_CALLS * a("dynamodb_call_s")
    )
    record_rru = math.ceil(size(game_segments - 1) / (4 * KB))
    reconcile_rru = streams * (record_rru + math.ceil(per_run * ARRIVAL_BYTES / (4 * KB)))
    functions = {
        t.ingest: (rate, a("ingest_s")),
        **{t.tasks[s]: (rate, step_s[s]) for s in ("Probe", "Transcode", "Publish")},
        t.sweep: (1 / t.schedule_s[t.sweep], sweep_s),
        t.reconcile: (1 / t.schedule_s[t.reconcile], min(reconcile_s, t.timeout[t.reconcile])),
    }
    lambdas = {
        name: {
            "invocations_s": r,
            "duration_s": d,
            "memory_mb": t.memory[name],
            "concurrency": concurrency(r, d),
        }
        for name, (r, d) in functions.items()
    }
    live_concurrency = sum(f["concurrency"] for f in lambdas.values())
    per_stream_concurrency = (
        sum(f["concurrency"] for n, f in lambdas.items() if n not in (t.sweep, t.reconcile))
        / streams
    )
    reserved_elsewhere = sum(v for k, v in t.reserved.items() if k not in functions)
    available = a("account_concurrency") - reserved_elsewhere

    # Express: one execution per segment; a duration of its tasks and their transitions.
    execution_s = sum(step_s.values()) + len(t.tasks) * a("state_overhead_s")
    billed_s = math.ceil(execution_s * 10) / 10
    express_usd = a("express_request_usd") + billed_s * a("express_memory_mb") / KB * a(
        "express_gb_second_usd"
    )

    # S3: by bucket; each stream writes under its own prefix live/<stream>/.
    output_puts = calls["transcode"].s3_puts + calls["publish"].s3_puts
    ingest_puts = calls["venue"].s3_puts
    ingest_gets = per_segment.s3_gets

    # Cost per stream-hour.
    per_hour = 3600 / segment_s
    sweeps_per_hour = 3600 / t.schedule_s[t.sweep]
    gb_s = (
        a("ingest_s") * t.memory[t.ingest] + sum(step_s[s] * t.memory[t.tasks[s]] for s in step_s)
    ) / KB * per_hour + sweeps_per_hour * sweep_calls * a("dynamodb_call_s") * t.memory[
        t.sweep
    ] / KB
    mean_wru = sum(wru) / len(wru)
    mean_rru = sum(rru) / len(rru)
    mean_size = round(sum(size(n) for n in range(game_segments)) / game_segments)
    sweep_wru = write_units(SWEEP_CALLS, mean_size)
    sweep_rru = read_units(SWEEP_CALLS, mean_size)
    stored_gb = (output_mb + segment_mb) * per_hour / 1000
    cost = {
        "lambda_compute": gb_s * a("lambda_gb_second_usd"),
        "lambda_requests": (1 + len(t.tasks)) * per_hour * a("lambda_request_usd"),
        "express": express_usd * per_hour,
        "dynamodb": (mean_wru * per_hour + sweep_wru * sweeps_per_hour)
        * a("dynamodb_write_unit_usd")
        + (mean_rru * per_hour + sweep_rru * sweeps_per_hour) * a("dynamodb_read_unit_usd"),
        "s3_requests": per_segment.s3_puts * per_hour * a("s3_put_usd")
        + per_segment.s3_gets * per_hour * a("s3_get_usd"),
        "s3_storage": stored_gb * a("s3_gb_month_usd") * a("storage_months"),
        "logs": (a("log_bytes_per_execution") + (1 + len(t.tasks)) * a("log_bytes_per_invocation"))
        * per_hour
        / 1e9
        * a("logs_gb_usd"),
    }
    stream_hour = sum(cost.values())

    peak_key_wru = (wru[-1] + sweep_wru * segment_s / t.schedule_s[t.sweep]) / segment_s
    limits = {
        "lambda_account_concurrency": available / per_stream_concurrency,
        "dynamodb_new_table_wru": a("new_table_wru_s") / (wru[-1] / segment_s),
        "dynamodb_table_wru": a("table_wru_s") / (wru[-1] / segment_s),
        "s3_output_one_prefix_put": a("prefix_put_s") / (output_puts / segment_s),
        "s3_ingest_one_prefix_get": a("prefix_get_s") / (ingest_gets / segment_s),
        "sweep_within_its_period": t.schedule_s[t.sweep] / (sweep_calls * a("dynamodb_call_s")),
        "reconcile_within_its_timeout": t.timeout[t.reconcile]
        / (reconcile_s / streams if streams else math.inf),
    }
    return {
        "streams": streams,
        "segment_s": segment_s,
        "game_hours": game_hours,
        "rungs": config.rungs,
        "state_machine": {
            "type": t.machine_type,
            "path": list(t.path),
            "executions_s": rate,
            "transitions_per_execution": len(t.path),
            "transitions_s": rate * len(t.path),
            "duration_s": execution_s,
            "billed_s": billed_s,
            "usd_per_execution": express_usd,
        },
        "lambda": {
            "functions": lambdas,
            "transcode_vcpus": cpus,
            "transcode_cpu_s_per_segment": cpu_s,
            "live_concurrency": live_concurrency,
            "per_stream_concurrency": per_stream_concurrency,
            "account_limit": a("account_concurrency"),
            "reserved": t.reserved,
            "available_to_live": available,
            "reconcile_needs_s": reconcile_s,
        },
        "dynamodb": {
            "billing_mode": t.billing_mode,
            "calls_per_segment": asdict(per_segment),
            "record_bytes": {"start": size(0), "end": size(game_segments - 1)},
            "wru_per_segment": {"start": wru[0], "mean": mean_wru, "end": wru[-1]},
            "rru_per_segment": {"start": rru[0], "mean": mean_rru, "end": rru[-1]},
            "per_stream_wru_s": {"start": wru[0] / segment_s, "end": wru[-1] / segment_s},
            "per_stream_key_peak_wru_s": peak_key_wru,
            "table_wru_s": {"start": rate * wru[0], "end": rate * wru[-1]},
            "table_rru_s": {"start": rate * rru[0], "end": rate * rru[-1]},
            "reconcile_rru_s_needed": reconcile_rru / t.schedule_s[t.reconcile],
        },
        "s3": {
            "per_stream": {
                "ingest_put_s": ingest_puts / segment_s,
                "ingest_get_s": ingest_gets / segment_s,
                "output_put_s": output_puts / segment_s,
            },
            "bucket_total": {
                "ingest_put_s": rate * ingest_puts,
                "ingest_get_s": rate * ingest_gets,
                "output_put_s": rate * output_puts,
            },
            "playlists_rewritten_per_segment": calls["publish"].s3_puts,
        },
        "usd_per_stream_hour": cost,
        "usd_per_stream_hour_total": stream_hour,
        "usd_game": stream_hour * streams * game_hours,
        "streams_where_limit_binds": limits,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=500, help="venue streams at once (500)")
    parser.add_argument("--segment", type=float, default=4.0, help="segment seconds (4)")
    parser.add_argument("--game-hours", type=float, default=2.0, help="one game's length (2)")
    parser.add_argument("--height", type=int, default=1080, help="the venue's picture height")
    parser.add_argument(
        "--cpu-per-source-second",
        type=float,
        help="the ladder's x264 CPU-s per source second (default: the vod_local measurement)",
    )
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter override, e.g. TranscodeReservedConcurrency=400",
    )
    args = parser.parse_args()
    m = measured()
    if args.cpu_per_source_second is not None:
        m = dataclasses.replace(
            m, cpu_per_source_second=args.cpu_per_source_second, source="--cpu-per-source-second"
        )
    overrides = dict(p.split("=", 1) for p in args.parameter)
    t = LiveTemplate.from_stack(Stack(BENCH.parent, overrides=overrides))
    config = stream_settings(t, args.segment, args.height)
    r = model(args.streams, args.segment, args.game_hours, t, config, m)
    report(r, m, t)
    out = RESULTS / "live_model-latest.json"
    RESULTS.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {"measured": m.__dict__, "assumptions": ASSUMPTIONS, "overrides": overrides, **r},
            indent=1,
        )
    )
    print(f"written to {out.relative_to(BENCH.parent)}")
    return 0


def report(r: dict[str, Any], m: Measured, t: LiveTemplate) -> None:
    n, seg = r["streams"], r["segment_s"]
    print(f"live model: {n} streams of {seg:g} s segments, rungs {', '.join(r['rungs'])}; "
          f"{m.cpu_per_source_second:.2f} CPU-s (ladder) + {m.aac_cpu_per_source_second:.3f} "
          f"(AAC) per source second from {m.source}")  # fmt: skip
    print("assumptions:")
    for name, (value, why) in ASSUMPTIONS.items():
        print(f"  {name} = {value}: {why}")
    sm, lam, db, s3 = r["state_machine"], r["lambda"], r["dynamodb"], r["s3"]
    reserved = lam["reserved"] or "none"
    print(f"\nLambda (account limit {lam['account_limit']:.0f}, reserved {reserved}; "
          f"transcode on {lam['transcode_vcpus']:.2f} vCPU, "
          f"{lam['transcode_cpu_s_per_segment']:.1f} CPU-s a segment)")  # fmt: skip
    print(f"  {'function':24s} {'calls/s':>8} {'seconds':>8} {'MB':>6} {'concurrency':>11}")
    for name, f in lam["functions"].items():
        print(f"  {name:24s} {f['invocations_s']:>8.2f} {f['duration_s']:>8.2f} "
              f"{f['memory_mb']:>6} {f['concurrency']:>11.1f}")  # fmt: skip
    print(f"  live total {lam['live_concurrency']:.0f} of {lam['available_to_live']:.0f} "
          f"available; {lam['per_stream_concurrency']:.2f} per stream; Reconcile would need "
          f"{lam['reconcile_needs_s']:.0f} s a run "
          f"(timeout {t.timeout[t.reconcile]} s)")  # fmt: skip
    print(f"\nStep Functions {sm['type']}: {sm['executions_s']:.0f} executions/s, "
          f"{sm['transitions_per_execution']} states each ({sm['transitions_s']:.0f}/s, not "
          f"billed for Express), {sm['duration_s']:.2f} s each (billed {sm['billed_s']:.1f} s), "
          f"${sm['usd_per_execution']:.8f} an execution")  # fmt: skip
    w, rd = db["wru_per_segment"], db["rru_per_segment"]
    print(f"\nDynamoDB ({db['billing_mode']}): per segment {db['calls_per_segment']}; stream "
          f"record {db['record_bytes']['start']} -> {db['record_bytes']['end']} bytes over the "
          f"game")  # fmt: skip
    print(f"  WRU a segment {w['start']} -> {w['end']} (mean {w['mean']:.1f}); RRU "
          f"{rd['start']} -> {rd['end']}; per stream {db['per_stream_wru_s']['start']:.1f} -> "
          f"{db['per_stream_wru_s']['end']:.1f} WRU/s, one key at most "
          f"{db['per_stream_key_peak_wru_s']:.1f} of {a('partition_wru_s'):.0f}")  # fmt: skip
    print(f"  table {db['table_wru_s']['start']:.0f} -> {db['table_wru_s']['end']:.0f} WRU/s, "
          f"{db['table_rru_s']['start']:.0f} -> {db['table_rru_s']['end']:.0f} RRU/s "
          f"(new table {a('new_table_wru_s'):.0f}, quota {a('table_wru_s'):.0f} WRU/s); "
          f"Reconcile would read {db['reconcile_rru_s_needed']:.0f} RRU/s")  # fmt: skip
    ps, bt = s3["per_stream"], s3["bucket_total"]
    print(f"\nS3 per stream: ingest {ps['ingest_put_s']:.2f} PUT/s {ps['ingest_get_s']:.2f} "
          f"GET/s, output {ps['output_put_s']:.2f} PUT/s ({s3['playlists_rewritten_per_segment']}"
          f" playlists rewritten a segment); all streams: ingest {bt['ingest_put_s']:.0f} PUT/s "
          f"{bt['ingest_get_s']:.0f} GET/s, output {bt['output_put_s']:.0f} PUT/s (one prefix: "
          f"{a('prefix_put_s'):.0f} PUT/s, {a('prefix_get_s'):.0f} GET/s). Players' GETs: "
          f"the CDN's, not modelled")  # fmt: skip
    print("\ncost per stream-hour:")
    for name, usd in r["usd_per_stream_hour"].items():
        print(f"  {name:16s} ${usd:.5f}")
    print(f"  {'total':16s} ${r['usd_per_stream_hour_total']:.4f}; {n} streams x "
          f"{r['game_hours']:g} h game: ${r['usd_game']:.2f}")  # fmt: skip
    print("\nstreams at which each limit binds (first first):")
    for name, at in sorted(r["streams_where_limit_binds"].items(), key=lambda kv: kv[1]):
        print(f"  {name:30s} {at:>9.0f}")


if __name__ == "__main__":
    raise SystemExit(main())
