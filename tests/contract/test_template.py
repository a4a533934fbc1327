"""The template, the state machine definitions and the handlers agree with each other."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from workflow import errors
from workflow.local.template import Stack, load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "sam-template.yaml")
MACHINES = {
    lid: res["Properties"]
    for lid, res in TEMPLATE["Resources"].items()
    if res["Type"] == "AWS::Serverless::StateMachine"
}
FUNCTIONS = {
    lid: res["Properties"]
    for lid, res in TEMPLATE["Resources"].items()
    if res["Type"] == "AWS::Serverless::Function"
}


def _states(definition: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every state, including those inside Map and Parallel states."""
    found = []
    for name, state in definition["States"].items():
        found.append((name, state))
        for inner in [
            state.get("ItemProcessor"),
            state.get("Iterator"),
            *state.get("Branches", []),
        ]:
            if inner:
                found += _states(inner)
    return found


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_placeholder_has_a_substitution_and_none_is_unused(machine: str) -> None:
    props = MACHINES[machine]
    text = (ROOT / props["DefinitionUri"]).read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    assert placeholders == set(props["DefinitionSubstitutions"])


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_substitutions_name_functions_of_this_template(machine: str) -> None:
    for value in MACHINES[machine]["DefinitionSubstitutions"].values():
        target, attribute = value["Fn::GetAtt"]
        assert target in FUNCTIONS and attribute == "Arn"


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_task_retries_transient_errors(machine: str) -> None:
    definition = json.loads((ROOT / MACHINES[machine]["DefinitionUri"]).read_text())
    tasks = [(n, s) for n, s in _states(definition) if s["Type"] == "Task"]
    assert tasks
    for name, state in tasks:
        retried = {e for r in state.get("Retry", []) for e in r["ErrorEquals"]}
        # Lambda's own failures (the local engine answers its own with ServiceException).
        for error in ("Lambda.TooManyRequestsException", "Lambda.ServiceException"):
            assert error in retried or "States.ALL" in retried, (name, error)
        for retrier in state.get("Retry", []):
            if retrier.get("MaxAttempts", 3) == 0:
                continue  # an error named to be never retried
            assert retrier.get("BackoffRate", 1) > 1 and retrier.get("JitterStrategy") == "FULL"


def _longest_wait(retrier: dict[str, Any]) -> float:
    """The most a retrier can wait in all, its every attempt used (full jitter waits less)."""
    interval, backoff = retrier.get("IntervalSeconds", 1), retrier.get("BackoffRate", 2.0)
    ceiling = retrier.get("MaxDelaySeconds", float("inf"))
    return sum(min(interval * backoff**n, ceiling) for n in range(retrier.get("MaxAttempts", 3)))


def _timeout_retries(retriers: list[dict[str, Any]]) -> int:
    """How often an attempt that ran out of time is tried again (the first match decides)."""
    for retrier in retriers:
        if {"Sandbox.Timedout", "States.ALL", "States.TaskFailed"} & set(retrier["ErrorEquals"]):
            return int(retrier.get("MaxAttempts", 3))
    return 0


def test_a_live_execution_timing_out_at_every_step_ends_within_express_five_minutes() -> None:
    # An Express execution is stopped at five minutes with no Catch run: no failure record,
    # and Reconcile would start the segment again on every run of its lookback. So the
    # longest path fits: each step's function running to its timeout on every attempt a
    # timeout is given (Transcode: one more), and every retrier waiting its longest.
    # (Errors that can also come late, an interrupted transcode or a transient error
    # after a whole encode, are retried three times and not counted at full length here:
    # docs/pipeline.md says what happens in that rarer case.)
    (machine,) = (m for m in MACHINES.values() if m.get("Type") == "EXPRESS")
    definition = json.loads((ROOT / machine["DefinitionUri"]).read_text())
    arns = machine["DefinitionSubstitutions"]
    total = 0.0
    for name, state in _states(definition):
        if state["Type"] != "Task":
            continue
        function = arns[state["Parameters"]["FunctionName"].strip("${}")]["Fn::GetAtt"][0]
        retriers = state.get("Retry", [])
        attempts = 1 + _timeout_retries(retriers)
        assert attempts <= 2, name
        total += FUNCTIONS[function]["Timeout"] * attempts + sum(map(_longest_wait, retriers))
    assert total <= 300, total


@pytest.mark.parametrize(
    "machine", sorted(m for m, spec in MACHINES.items() if spec.get("Type") != "EXPRESS")
)
def test_a_failure_record_outlasts_minutes_of_trouble(machine: str) -> None:
    # Once RecordFailure gives up, the execution ends with no failure record and no
    # failed event: a job's subscribers never hear of it. A Standard execution has no
    # five-minute bound, so its record is tried for minutes (S3 or Lambda having a bad
    # minute), not the seconds four quick retries last.
    definition = json.loads((ROOT / MACHINES[machine]["DefinitionUri"]).read_text())
    retriers = definition["States"]["RecordFailure"]["Retry"]
    [retrier] = [r for r in retriers if r["ErrorEquals"] == ["States.ALL"]]
    assert _longest_wait(retrier) >= 120, retrier


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_a_distributed_map_gathers_no_output_from_its_items(machine: str) -> None:
    # Without a ResultWriter a Distributed Map gathers every child's output into one array,
    # and Step Functions fails the job (States.DataLimitExceeded) past 256 KiB, even when
    # ResultPath drops it: at ~45 bytes an item, ~5,800 items (16 h in 10 s chunks). The
    # items write their results to S3; they end on an empty output, ~87,000 items' worth.
    definition = json.loads((ROOT / MACHINES[machine]["DefinitionUri"]).read_text())
    for name, state in _states(definition):
        processor = state.get("ItemProcessor", {})
        if processor.get("ProcessorConfig", {}).get("Mode") != "DISTRIBUTED":
            continue
        assert "ResultWriter" not in state and state.get("ResultPath", "$") is None, name
        for inner, child in processor["States"].items():
            if child["Type"] == "Task":
                assert "OutputPath" in child and child["OutputPath"] is None, (name, inner)


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_each_state_machines_role_grants_what_its_definition_does(machine: str) -> None:
    # The local engine runs every task whatever the machine's role says; on AWS a task
    # whose function the role may not invoke fails (Lambda.AWSLambdaException), and a
    # Distributed Map the role may not start children of, or read items for, never runs.
    props = MACHINES[machine]
    definition = json.loads((ROOT / props["DefinitionUri"]).read_text())
    arns = props["DefinitionSubstitutions"]
    invoked = {
        arns[state["Parameters"]["FunctionName"].strip("${}")]["Fn::GetAtt"][0]
        for _, state in _states(definition)
        if state["Type"] == "Task"
    }
    granted = {
        policy["LambdaInvokePolicy"]["FunctionName"]["Ref"]
        for policy in props["Policies"]
        if "LambdaInvokePolicy" in policy
    }
    assert invoked == granted
    statements = [s for policy in props["Policies"] for s in policy.get("Statement", [])]
    actions = {a for s in statements for a in s["Action"]}
    name = props["Name"]["Fn::Sub"]
    children = [
        s for _, s in _states(definition)
        if s.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
    ]  # fmt: skip
    if not children:
        assert not actions & {"states:StartExecution", "s3:GetObject"}, machine
        return
    runs = next(s for s in statements if "states:StartExecution" in s["Action"])
    assert set(runs["Action"]) >= {"states:DescribeExecution", "states:StopExecution"}
    resources = [r["Fn::Sub"] for r in runs["Resource"]]
    assert any(r.endswith(f":stateMachine:{name}") for r in resources), resources
    assert any(r.endswith(f":execution:{name}/*") for r in resources), resources
    if any(s.get("ItemReader", {}).get("Resource") == "arn:aws:states:::s3:getObject"
           for s in children):  # fmt: skip
        assert "s3:GetObject" in actions, machine


def test_a_throttled_lambda_is_waited_for_long_in_standard_workflows() -> None:
    # A Distributed Map asks for MapMaxConcurrency functions at once, and jobs share the
    # account's (or the function's reserved) concurrency: a throttled item waits for a
    # slot for minutes, where the other errors' retriers give up within seconds.
    for machine in (m for m in MACHINES.values() if m.get("Type", "STANDARD") == "STANDARD"):
        definition = json.loads((ROOT / machine["DefinitionUri"]).read_text())
        for name, state in _states(definition):
            if state["Type"] != "Task" or name == "RecordFailure":
                continue
            throttled = next(
                r for r in state["Retry"] if "Lambda.TooManyRequestsException" in r["ErrorEquals"]
            )
            assert _longest_wait(throttled) >= 600, name


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_error_names_in_the_definition_are_classes_in_workflow_errors(machine: str) -> None:
    definition = json.loads((ROOT / MACHINES[machine]["DefinitionUri"]).read_text())

    def named(block: str) -> set[str]:
        return {
            e
            for _, state in _states(definition)
            for rule in state.get(block, [])
            for e in rule["ErrorEquals"]
            if not e.startswith(("States.", "Lambda.", "Sandbox."))
        }

    for name in named("Retry") | named("Catch"):
        assert issubclass(getattr(errors, name), errors.VidflowError)
    retried = {
        e
        for _, state in _states(definition)
        for rule in state.get("Retry", [])
        if rule.get("MaxAttempts", 3) > 0
        for e in rule["ErrorEquals"]
        if not e.startswith(("States.", "Lambda.", "Sandbox."))
    }
    for name in retried:
        assert getattr(errors, name).transient, f"{name} is retried but is not transient"


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_an_event_refused_is_never_retried(machine: str) -> None:
    # A function refuses an event (EventError) before it reads anything: the same event
    # is refused again on every retry, and RecordFailure's retries would end the execution
    # there, unrecorded, instead of in its Fail state by name.
    definition = json.loads((ROOT / MACHINES[machine]["DefinitionUri"]).read_text())
    retrying_all = [(n, s) for n, s in _states(definition) if _retries_all(s)]
    assert retrying_all
    for name, state in retrying_all:
        names = [r["ErrorEquals"] for r in state["Retry"]]
        refused = names.index(["EventError"]) if ["EventError"] in names else len(names)
        assert refused < names.index(["States.ALL"]), name
        assert state["Retry"][refused]["MaxAttempts"] == 0, name
    # AND a RecordFailure that refuses its event still ends in the Fail state, by its name
    states = definition["States"]
    refused_catch = states["RecordFailure"]["Catch"][0]
    assert refused_catch["ErrorEquals"] == ["EventError"]
    passed = states[refused_catch["Next"]]
    assert passed["Next"] == states["RecordFailure"]["Next"]
    assert passed["ResultPath"] == states["RecordFailure"]["ResultPath"] == "$.failure"


def _retries_all(state: dict[str, Any]) -> bool:
    return any("States.ALL" in r["ErrorEquals"] for r in state.get("Retry", []))


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_transient_error_is_retried_where_transient_errors_are(machine: str) -> None:
    # A retrier matches an error's own name (a function reports its class), never its base.
    definition = json.loads((ROOT / MACHINES[machine]["DefinitionUri"]).read_text())
    transient = {
        name
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, errors.VidflowError) and cls.transient
    }
    assert {"TransientError", "TranscodeInterruptedError"} <= transient
    for name, state in _states(definition):
        earlier: set[str] = set()  # a retrier before it may take one on terms of its own
        for retrier in state.get("Retry", []):
            if "TransientError" in retrier["ErrorEquals"]:
                assert transient <= set(retrier["ErrorEquals"]) | earlier, name
            earlier |= set(retrier["ErrorEquals"])


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_top_level_work_states_are_caught_and_end_in_fail(machine: str) -> None:
    definition = json.loads((ROOT / MACHINES[machine]["DefinitionUri"]).read_text())
    states = definition["States"]
    for name, state in states.items():
        if state["Type"] in ("Task", "Map") and name != "RecordFailure":
            # Every error ends in RecordFailure, but for a live segment uploaded again
            # mid-read: the newer upload's execution carries it, so no failure is due.
            *superseded, catch_all = state["Catch"]
            assert catch_all["ErrorEquals"] == ["States.ALL"], name
            assert catch_all["Next"] == "RecordFailure"
            for catch in superseded:
                assert catch["ErrorEquals"] == ["SourceChangedError"], name
                assert states[catch["Next"]]["Type"] == "Succeed" and machine == "LiveStateMachine"
    assert states[states["RecordFailure"]["Next"]]["Type"] == "Fail"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_handler_imports_with_its_template_environment(
    function: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolved = {f.logical_id: f for f in Stack(ROOT).functions()}[function]
    for key, value in resolved.environment.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    module_name, attribute = resolved.handler.rsplit(".", 1)
    path = resolved.code_uri / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(f"contract_{function}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(getattr(module, attribute))


def test_handlers_are_doors_not_rooms() -> None:
    for props in FUNCTIONS.values():
        source = (ROOT / props["CodeUri"] / "app.py").read_text()
        assert len(source.splitlines()) <= 40
        assert not re.search(r"^\s+(if|for|while) ", source, re.MULTILINE), props["CodeUri"]


def test_uploads_trigger_only_from_the_ingest_bucket_and_outputs_go_elsewhere() -> None:
    triggers = [
        (lid, event["Properties"])
        for lid, props in FUNCTIONS.items()
        for event in props.get("Events", {}).values()
        if event["Type"] == "S3"
    ]
    assert [(lid, p["Bucket"]["Ref"]) for lid, p in triggers] == [
        ("StartJobFunction", "IngestBucket"),
        ("LiveIngestFunction", "IngestBucket"),
        ("LiveIngestFunction", "IngestBucket"),
    ]
    assert {"Name": "prefix", "Value": "uploads/"} in triggers[0][1]["Filter"]["S3Key"]["Rules"]
    assert {"Name": "prefix", "Value": "live/"} in triggers[1][1]["Filter"]["S3Key"]["Rules"]
    assert {"Name": "prefix", "Value": "clips/"} in triggers[2][1]["Filter"]["S3Key"]["Rules"]
    stack = Stack(ROOT)
    buckets = stack.buckets()
    assert buckets["IngestBucket"] != buckets["OutputBucket"]
    for f in stack.functions():
        assert f.environment["OUTPUT_BUCKET"] == buckets["OutputBucket"]
    # Every function knows the ingest bucket: the triggered start nothing of another's,
    # and each step refuses an event whose source is elsewhere (by name, not NoSuchBucket)
    for f in stack.functions():
        assert f.environment["INGEST_BUCKET"] == buckets["IngestBucket"], f.logical_id


def test_buckets_are_private_and_encrypted() -> None:
    for lid, res in TEMPLATE["Resources"].items():
        if res["Type"] != "AWS::S3::Bucket":
            continue
        props = res["Properties"]
        assert all(props["PublicAccessBlockConfiguration"].values()), lid
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], lid


def test_local_resolution_fills_every_environment_value() -> None:
    for function in Stack(ROOT).functions():
        for key, value in function.environment.items():
            assert "${" not in value and "Fn::" not in value, (function.logical_id, key)
    assert os.path.exists(ROOT / "statemachine" / "vod.asl.json")


def test_outputs_name_what_users_and_the_local_engine_need() -> None:
    outputs = Stack(ROOT).outputs()
    buckets = Stack(ROOT).buckets()
    assert outputs["IngestBucketName"] == buckets["IngestBucket"]
    assert outputs["OutputBucketName"] == buckets["OutputBucket"]
    assert outputs["VodStateMachineArn"].endswith(":stateMachine:vidflow-vod")


def test_the_stepfunctions_sdk_never_reaches_a_lambda_package() -> None:
    for requirements in (ROOT / "layers").glob("*/requirements.txt"):
        text = requirements.read_text().lower()
        assert "stepfunctions" not in text and "sagemaker" not in text, requirements
    for handler in (ROOT / "lambdas").glob("*/app.py"):
        assert "notebook" not in handler.read_text() and "stepfunctions." not in handler.read_text()


# The retention periods CloudWatch Logs accepts (PutRetentionPolicy, RetentionInDays).
CLOUDWATCH_RETENTION_DAYS = {
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
}  # fmt: skip


def test_every_log_retention_is_one_cloudwatch_accepts() -> None:
    # A parameter referenced as a log group's RetentionInDays takes only the periods
    # CloudWatch Logs offers: any other (2 days) passed the stack's checks and would
    # have failed the deploy part-way, at the first log group.
    text = (ROOT / "sam-template.yaml").read_text()
    referenced = set(re.findall(r"RetentionInDays: !Ref (\w+)", text))
    assert referenced
    for name in referenced:
        parameter = TEMPLATE["Parameters"][name]
        allowed = {int(v) for v in parameter["AllowedValues"]}
        assert allowed <= CLOUDWATCH_RETENTION_DAYS and int(parameter["Default"]) in allowed


def _lifecycle(bucket: str) -> list[dict[str, Any]]:
    return TEMPLATE["Resources"][bucket]["Properties"]["LifecycleConfiguration"]["Rules"]


def test_a_deleted_uploads_delete_marker_goes_once_no_version_is_behind_it() -> None:
    # The reconciler deletes a closed stream's uploads (workflow/live/lost.py), 900 keys
    # a stream-hour of 4 s segments: on the versioned ingest bucket each leaves
    # a delete marker that, without this, stays once its version expired, forever.
    rules = [r for r in _lifecycle("IngestBucket") if r["Status"] == "Enabled"]
    assert any(
        r.get("ExpiredObjectDeleteMarker") is True and "NoncurrentVersionExpiration" in r
        for r in rules
    )
    # and every bucket's stalled multipart uploads are aborted
    for bucket in ("IngestBucket", "OutputBucket"):
        assert any("AbortIncompleteMultipartUpload" in r for r in _lifecycle(bucket))


def test_a_closed_streams_uploads_outlive_the_last_redrive_of_their_events() -> None:
    # A lost event of a live upload waits in the failed-events queue to be redriven: the
    # uploads are deleted only once none can be.
    from workflow.live.lost import UPLOADS_KEPT_SECONDS

    queue = TEMPLATE["Resources"]["FailedEventsQueue"]["Properties"]
    assert int(queue["MessageRetentionPeriod"]) <= UPLOADS_KEPT_SECONDS
