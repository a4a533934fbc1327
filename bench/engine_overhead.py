"""Local engine overhead: time per state transition and per Lambda call, and memory.

One run of this script starts the local stack in this process and measures:

1. resident memory once the stack is up (idle);
2. a Standard state machine of ``--states`` Pass states, run ``--executions`` times:
   seconds per state transition (execution time / transitions);
3. a state machine of ``--tasks`` Task states, each a Lambda call answered by the local
   Lambda runtime from the built artefacts (the template's LiveSweep function, which
   finds no open stream and returns): seconds per Lambda call, less the Pass cost of a
   transition;
4. direct invocations of that function: the cold start (a new worker imports the
   handler) and ``--invocations`` warm ones, each as the engine measured it and as the
   handler itself did, so the runtime's own overhead per warm call is their difference;
5. resident memory after all those executions (moto keeps every execution).

Nothing is asserted; it prints a table and writes JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workflow.local.engine import LocalEngine
from workflow.local.lambda_runtime import Invocation

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"


def rss_mib() -> float:
    """The current resident set of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def chain(kind: str, count: int, resource_arn: str | None = None) -> str:
    """An ASL definition of ``count`` states of one kind, one after another."""
    states: dict[str, Any] = {}
    for n in range(count):
        state: dict[str, Any] = {"Type": kind}
        if resource_arn is not None:
            state.update(
                {
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": resource_arn, "Payload": {}},
                    "ResultPath": None,
                }
            )
        if n + 1 < count:
            state["Next"] = f"S{n + 1}"
        else:
            state["End"] = True
        states[f"S{n}"] = state
    return json.dumps({"StartAt": "S0", "States": states})


def run(sfn: Any, arn: str, times: int) -> list[float]:
    """Run the machine ``times`` times, one after another; each execution's seconds."""
    durations = []
    for n in range(times):
        began = time.monotonic()
        execution = sfn.start_execution(stateMachineArn=arn, name=f"run-{n}")["executionArn"]
        while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
            time.sleep(0.002)
        durations.append(time.monotonic() - began)
    return durations


def invocations(engine: LocalEngine, arn: str, count: int) -> tuple[Invocation, list[Invocation]]:
    """One cold and ``count`` warm invocations of the function ``arn``, as timed."""
    assert engine.lambdas is not None
    event = engine.scheduled_event(arn)
    timings = []
    for _ in range(count + 1):
        _, error = engine.invoke(arn, event)
        assert error is None, error
        timings.append(engine.lambdas.timings[-1])
    return timings[0], timings[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--executions", type=int, default=100)
    parser.add_argument("--invocations", type=int, default=200)
    args = parser.parse_args()
    engine = LocalEngine(ROOT, log_file=Path(tempfile.gettempdir()) / "vidflow-bench-engine.log")
    endpoints = engine.start()
    assert engine.lambdas is not None
    try:
        sfn = engine.client("stepfunctions")
        time.sleep(1)
        idle = rss_mib()
        role = "arn:aws:iam::123456789012:role/bench"
        passes = sfn.create_state_machine(
            name="bench-pass", definition=chain("Pass", args.states), roleArn=role
        )["stateMachineArn"]
        sweep = engine.functions["LiveSweepFunction"]
        cold, warm = invocations(engine, sweep.arn, args.invocations)
        tasks = sfn.create_state_machine(
            name="bench-task", definition=chain("Task", args.tasks, sweep.arn), roleArn=role
        )["stateMachineArn"]
        pass_runs = run(sfn, passes, args.executions)
        task_runs = run(sfn, tasks, max(10, args.executions // 10))
        after = rss_mib()
    finally:
        engine.stop()
    per_transition = statistics.median(pass_runs) / args.states
    warm_total = statistics.median(w.total_ms for w in warm)
    warm_overhead = statistics.median(w.total_ms - (w.handler_ms or 0.0) for w in warm)
    per_call = statistics.median(task_runs) / args.tasks - per_transition
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "endpoint": endpoints.endpoint_url,
        "states": args.states,
        "tasks": args.tasks,
        "executions": args.executions,
        "seconds_per_transition": round(per_transition, 5),
        "seconds_per_lambda_call": round(per_call, 5),
        "cold_start_ms": round(cold.total_ms, 1),
        "cold_init_ms": round(cold.init_ms, 1),
        "warm_invocation_ms": round(warm_total, 2),
        "warm_overhead_ms": round(warm_overhead, 2),
        "rss_idle_mib": round(idle, 1),
        "rss_after_mib": round(after, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "pass_execution_seconds": [round(x, 4) for x in pass_runs],
        "task_execution_seconds": [round(x, 4) for x in task_runs],
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"engine_overhead-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"\nlocal engine overhead ({args.executions} executions of {args.states} Pass states, "
          f"{len(task_runs)} of {args.tasks} Lambda tasks)")  # fmt: skip
    print(f"  per state transition  {per_transition * 1000:.1f} ms")
    print(f"  per Lambda call       {per_call * 1000:.1f} ms (beyond its transition)")
    print(f"  cold start            {cold.total_ms + cold.init_ms:.0f} ms "
          f"(init {cold.init_ms:.0f} ms: a new worker imports the handler)")  # fmt: skip
    print(f"  warm invocation       {warm_total:.1f} ms, of which the runtime's own "
          f"{warm_overhead:.1f} ms beyond the handler's time")  # fmt: skip
    print(f"  resident memory       {idle:.0f} MiB idle, {after:.0f} MiB after the executions")
    print(f"  written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
