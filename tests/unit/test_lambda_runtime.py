"""The local Lambda runtime's rules that need no process: what a worker is given, how
warm workers are shared and reclaimed, and which error name each ending gets."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.exceptions
import botocore.signers
import pytest
from botocore.client import BaseClient
from moto import mock_aws

from workflow.cli.common import function_log
from workflow.local import bootstrap, lambda_runtime
from workflow.local.build import Interpreter, find_interpreter, runtime_folder
from workflow.local.lambda_runtime import (
    PAYLOAD_LIMIT,
    FunctionLog,
    LambdaRuntime,
    _Pool,
    artefacts_of,
)
from workflow.local.template import Stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LambdaRuntime]:
    stack = Stack(ROOT)
    build = tmp_path / "build"
    (build / "FfmpegLayer" / "bin").mkdir(parents=True)
    (build / "FfmpegLayer" / "bin" / "ffmpeg").write_bytes(b"")
    for layer in ("WorkflowLayer", "PyAVLayer"):
        (build / layer / "python").mkdir(parents=True)
    interpreter = Interpreter(Path("/usr/bin/python3.12"), "3.12")
    lambdas = LambdaRuntime(stack, build, tmp_path / "runtime", interpreter, {"AWS_X": "1"})
    yield lambdas
    lambdas.stop()


def test_a_function_sees_its_layers_in_the_templates_order(runtime: LambdaRuntime) -> None:
    # GIVEN the Probe function (global Workflow layer, then its own PyAV layer)
    artefacts = artefacts_of(runtime.functions["ProbeFunction"], runtime.build_dir)
    # THEN its path is its folder, then each layer's python/ in the template's order
    assert [p.relative_to(runtime.build_dir).as_posix() for p in artefacts.python_paths] == [
        "ProbeFunction",
        "WorkflowLayer/python",
        "PyAVLayer/python",
    ]


def test_only_a_function_with_the_ffmpeg_layer_is_told_where_ffmpeg_is(
    runtime: LambdaRuntime,
) -> None:
    chunk = runtime._environment(
        artefacts_of(runtime.functions["TranscodeChunkFunction"], runtime.build_dir)
    )
    plan = runtime._environment(artefacts_of(runtime.functions["PlanFunction"], runtime.build_dir))
    assert chunk["FFMPEG_BINARY"].endswith("FfmpegLayer/bin/ffmpeg")
    assert chunk["PATH"].split(":")[0].endswith("FfmpegLayer/bin")
    assert "FFMPEG_BINARY" not in plan and "Ffmpeg" not in plan["PATH"]


def test_a_function_gets_its_template_environment_and_lambdas_variables(
    runtime: LambdaRuntime,
) -> None:
    function = runtime.functions["TranscodeChunkFunction"]
    env = runtime._environment(artefacts_of(function, runtime.build_dir))
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "10240"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == function.name
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["LAMBDA_TASK_ROOT"].endswith("TranscodeChunkFunction")
    assert env["OUTPUT_BUCKET"] == function.environment["OUTPUT_BUCKET"]
    assert env["AWS_X"] == "1"
    # nothing of this process's own environment leaks in
    assert "VIRTUAL_ENV" not in env and "PYTHONPATH" not in env


@pytest.mark.parametrize(
    ("answer", "error_type"),
    [
        ({"tick": "deadline"}, "Sandbox.Timedout"),
        ({"killed": "memory"}, "Runtime.OutOfMemory"),
        ({"killed": "storage"}, "OSError"),
        ({"exited": 1}, "Runtime.ExitError"),
        ({"result": '"' + "x" * PAYLOAD_LIMIT + '"'}, "Function.ResponseSizeTooLarge"),
        ({"error": {"errorType": "NotAVideoError", "errorMessage": "m"}}, "NotAVideoError"),
    ],
)
def test_each_ending_has_lambdas_error_name(
    runtime: LambdaRuntime, answer: dict[str, Any], error_type: str
) -> None:
    result, error = runtime._outcome(runtime.functions["PlanFunction"], "id", answer)
    assert result is None and error is not None and error["errorType"] == error_type


def test_a_result_is_returned_as_json(runtime: LambdaRuntime) -> None:
    assert runtime._outcome(runtime.functions["PlanFunction"], "id", {"result": '{"a": 1}'}) == (
        {"a": 1},
        None,
    )


def test_an_unknown_function_and_an_oversized_event_are_refused(runtime: LambdaRuntime) -> None:
    assert runtime.invoke("NoSuchFunction", {})[1]["errorType"] == "ResourceNotFoundException"
    too_big = {"blob": "x" * PAYLOAD_LIMIT}
    error = runtime.invoke("PlanFunction", too_big)[1]
    assert error["errorType"] == "RequestEntityTooLargeException"


def test_a_call_over_the_reserved_concurrency_is_throttled_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack that reserves (and so caps) one concurrent chunk transcoder
    stack = Stack(
        ROOT, overrides={"TranscodeReservedConcurrency": "1", "KeyServiceReservedConcurrency": "5"}
    )
    reserved = {f.logical_id: f.reserved_concurrency for f in stack.functions()}
    assert (reserved["TranscodeChunkFunction"], reserved["KeyServiceFunction"]) == (1, 5)
    for function in ("TranscodeChunkFunction", "KeyServiceFunction"):
        assert Stack(ROOT).find_function(function).reserved_concurrency is None
    interpreter = Interpreter(Path("/usr/bin/python3.12"), "3.12")
    lambdas = LambdaRuntime(stack, tmp_path / "build", tmp_path / "runtime", interpreter, {})
    release, running = threading.Event(), threading.Event()

    def run(function: Any, event_json: str, request_id: str) -> tuple[Any, None]:
        running.set()
        release.wait(10)
        return {"ran": request_id}, None

    monkeypatch.setattr(lambdas, "_run", run)
    try:
        first: list[Any] = []
        call = threading.Thread(
            target=lambda: first.append(lambdas.invoke("TranscodeChunkFunction", {}, "one"))
        )
        call.start()
        assert running.wait(10)
        # WHEN a second call comes while the first runs
        result, error = lambdas.invoke("TranscodeChunkFunction", {}, "two")
        # THEN Lambda's throttle answers it at once, by name, as the Retry expects
        assert result is None and error is not None
        assert error["errorType"] == "Lambda.TooManyRequestsException", error
        assert "ReservedConcurrentExecutions" in error["errorMessage"]
        # AND another function is not held by it
        assert lambdas.invoke("PlanFunction", {}, "plan") == ({"ran": "plan"}, None)
        # AND once the first has ended, the next call runs
        release.set()
        call.join(10)
        assert first == [({"ran": "one"}, None)]
        assert lambdas.invoke("TranscodeChunkFunction", {}, "three") == ({"ran": "three"}, None)
    finally:
        release.set()
        lambdas.stop()


def test_a_worker_that_cannot_start_is_lambdas_own_failure_and_frees_its_place(
    runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a runtime that cannot start an execution environment (no file numbers left)
    def no_files(*_: Any) -> None:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(lambda_runtime, "Worker", no_files)
    runtime._pools["PlanFunction"].cap = 1
    # WHEN the function is invoked more times than its pool has places
    errors = [runtime.invoke("PlanFunction", {})[1] for _ in range(3)]
    # THEN each call returns (not raises) the error the state machines retry, naming the
    # cause, and no place in the pool is held by a worker that never started
    assert all(e is not None and e["errorType"] == "Lambda.ServiceException" for e in errors)
    assert all("Too many open files" in e["errorMessage"] for e in errors if e)
    assert runtime._pools["PlanFunction"].count == 0


def test_a_worker_whose_process_cannot_start_leaves_no_file_open(
    runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a machine out of processes: the worker's pipes and /tmp exist, its process not
    def no_processes(*_: Any, **__: Any) -> None:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(lambda_runtime.subprocess, "Popen", no_processes)
    monkeypatch.setattr(lambda_runtime.tempfile, "tempdir", str(tmp_path))
    open_before = set(os.listdir("/proc/self/fd"))
    # WHEN the function is invoked
    error = runtime.invoke("PlanFunction", {})[1]
    # THEN it is Lambda's own failure, and neither a pipe nor a /tmp folder is left behind
    assert error is not None and error["errorType"] == "Lambda.ServiceException"
    assert set(os.listdir("/proc/self/fd")) <= open_before
    assert list(tmp_path.glob("vidflow-*")) == []


def test_an_invocation_broken_by_the_runtime_stopping_is_not_reported_as_a_failure(
    runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a runtime being stopped (Ctrl-C) while an invocation talks to its worker
    def closed(*_: Any) -> None:
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(lambda_runtime, "Worker", closed)
    runtime.stop()
    # WHEN that invocation's pipe is found closed
    with caplog.at_level(logging.ERROR, logger="vidflow.lambda"):
        error = runtime.invoke("PlanFunction", {})[1]
    # THEN it ends as the runtime's exit, and nothing is said on stderr after "interrupted"
    assert error is not None and error["errorType"] == "Runtime.ExitError"
    assert caplog.records == []


class _Watched(threading.Condition):
    """A condition that counts the waits begun on it: a test waits for a thread to be
    blocked in it, rather than sleep and take a slow thread for a blocked one."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = threading.Semaphore(0)

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.release()
        return super().wait(timeout)


def _blocked(condition: _Watched) -> None:
    """Until a thread waits on ``condition`` (it holds its lock until it does)."""
    assert condition.waits.acquire(timeout=60), "no thread came to wait"
    with condition:
        pass


def test_the_pool_waits_at_its_cap_and_reuses_warm_workers() -> None:
    pool = _Pool(cap=1)
    pool.cond = _Watched()
    assert pool.take() is None  # the caller starts the one worker allowed
    worker: Any = SimpleNamespace(idle_since=0.0)
    taken: list[Any] = []
    waiter = threading.Thread(target=lambda: taken.append(pool.take()))
    waiter.start()
    _blocked(pool.cond)
    assert taken == []  # at the cap: waits for a worker to come back
    pool.give_back(worker)
    waiter.join(timeout=5)
    assert taken == [worker]


def test_a_call_waits_for_a_worker_started_ahead_rather_than_starting_its_own() -> None:
    # GIVEN a function whose one environment, started ahead of any call, is in its init
    pool = _Pool(cap=4)
    pool.cond = _Watched()
    assert pool.reserve_warming()
    worker: Any = SimpleNamespace(idle_since=0.0)
    taken: list[Any] = []
    waiter = threading.Thread(target=lambda: taken.append(pool.take()))
    # WHEN a call comes before that init ends
    waiter.start()
    _blocked(pool.cond)
    # THEN it waits for it (a new one would be ready later), while a second call that
    # comes meanwhile starts its own rather than queue behind the first
    assert taken == [] and pool.count == 1
    assert pool.take() is None and pool.count == 2
    pool.give_back(worker, warmed=True)
    waiter.join(timeout=5)
    assert taken == [worker] and pool.warming == 0 and pool.waiting == 0


def test_a_call_starts_its_own_worker_when_the_one_started_ahead_failed() -> None:
    pool = _Pool(cap=1)
    pool.cond = _Watched()
    assert pool.reserve_warming()
    assert not pool.reserve_warming()  # at the cap: nothing more is started ahead
    taken: list[Any] = []
    waiter = threading.Thread(target=lambda: taken.append(pool.take()))
    waiter.start()
    _blocked(pool.cond)
    assert taken == []
    pool.give_back(None, warmed=True)  # its init failed
    waiter.join(timeout=5)
    assert taken == [None] and pool.count == 1  # the call makes its own cold start


def test_an_environment_started_ahead_whose_init_fails_holds_no_place(
    runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a function whose init fails
    retired: list[Any] = []
    worker: Any = SimpleNamespace(alive=lambda: True)

    def failing_init(_: Any) -> tuple[Any, float, dict[str, Any]]:
        return worker, 12.0, {"errorType": "Runtime.ImportModuleError", "errorMessage": "x"}

    monkeypatch.setattr(runtime, "_cold_start", failing_init)
    monkeypatch.setattr(runtime, "_retire", retired.append)
    # WHEN it is started ahead
    runtime.prewarm(["PlanFunction"]).join(timeout=5)
    # THEN that environment is ended and its place freed for the call's own cold start,
    # which reports the error
    assert retired == [worker]
    pool = runtime._pools["PlanFunction"]
    assert (pool.count, pool.warming, pool.idle) == (0, 0, [])
    with pytest.raises(ValueError, match="NoSuchFunction"):
        runtime.prewarm(["NoSuchFunction"])


def test_a_waiter_hears_of_every_call_that_ends(
    runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN someone following a job (vidflow process) who has seen no call end
    assert runtime.wait_for_a_call(0, 0.01) == 0  # none ends: the wait runs out
    monkeypatch.setattr(runtime, "_run", lambda *_: ("done", None))
    ended = _Watched()
    monkeypatch.setattr(runtime, "_call_ended", ended)
    heard: list[int] = []
    waiter = threading.Thread(target=lambda: heard.append(runtime.wait_for_a_call(0, 30)))
    waiter.start()
    _blocked(ended)
    # WHEN a function's call ends
    assert runtime.invoke("PlanFunction", {}) == ("done", None)
    # THEN the waiter is woken by it, not by its timeout
    waiter.join(timeout=5)
    assert heard == [1]
    # AND a call that ends while nobody waits is not lost: the next wait, even one that
    # would not wait at all, counts it
    runtime.invoke("PlanFunction", {})
    assert runtime.wait_for_a_call(1, 0) == 2


def test_workers_idle_too_long_are_reclaimed() -> None:
    pool = _Pool(cap=4)
    old: Any = SimpleNamespace(idle_since=0.0)
    fresh: Any = SimpleNamespace(idle_since=0.0)
    for _ in range(2):
        pool.take()
    pool.give_back(old)
    pool.give_back(fresh)
    old.idle_since = time.monotonic() - 1000
    assert pool.expired(300) == [old]
    assert pool.idle == [fresh] and pool.count == 1


def test_the_function_log_is_private_and_never_written_through_a_link(tmp_path: Path) -> None:
    # GIVEN another user's link where a log would go (a shared /tmp), pointing at a file
    victim = tmp_path / "victim.sh"
    victim.write_text("mine\n")
    (tmp_path / "functions.log").symlink_to(victim)
    # THEN the log is not opened through it, and the file it names is untouched
    with pytest.raises(OSError):
        FunctionLog(tmp_path / "functions.log")
    assert victim.read_text() == "mine\n"
    # AND a stack's log is in a folder only its user enters, readable by that user only
    path = function_log(4566)
    log = FunctionLog(path)
    log.close()
    assert (path.parent.stat().st_mode & 0o777, path.stat().st_mode & 0o777) == (0o700, 0o600)
    assert path.parent.name.startswith("vidflow-4566-")
    path.unlink()
    path.parent.rmdir()


def test_a_function_is_given_its_roles_statements(runtime: LambdaRuntime) -> None:
    function = runtime.functions["ReconcileFunction"]
    env = runtime._environment(artefacts_of(function, runtime.build_dir))
    statements = json.loads(env["_VIDFLOW_POLICY"])
    assert statements == runtime.stack.role_statements("ReconcileFunction")
    table = f"arn:aws:dynamodb:{runtime.stack.region}:{runtime.stack.account}:table/"
    live = table + runtime.stack.ref("LiveTable")
    assert bootstrap.allowed(statements, "dynamodb:PutItem", live, None)
    # AND the worker reads its region and account from its ARN, to name its tables' ARNs
    region, account, role = bootstrap.where(env["_VIDFLOW_FUNCTION_ARN"])
    assert (region, account) == (runtime.stack.region, runtime.stack.account)
    assert role.endswith(f"/{function.name}")
    assert bootstrap.needs("dynamodb", "GetItem", {"TableName": "t"}, region, account) == [
        ("dynamodb:GetItem", f"{table}t", None)
    ]


def _restored_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """hold_to_role patches botocore's client class and presigner for the whole process:
    they are put back after the test."""
    monkeypatch.setattr(BaseClient, "_make_api_call", BaseClient._make_api_call)
    monkeypatch.setattr(
        botocore.signers, "generate_presigned_url", botocore.signers.generate_presigned_url
    )


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An in-process S3 (moto) whose calls pass a small role first, as a worker's do."""
    _restored_after(monkeypatch)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="ingest")
        s3.put_object(Bucket="ingest", Key="uploads/a.mp4", Body=b"a")
        yield s3


def _role(*statements: tuple[str, str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"Action": [a], "Resource": [r], "Condition": c} for a, r, c in statements]


def test_a_workers_calls_are_held_to_its_role_as_iam_holds_them(held: Any) -> None:
    # GIVEN a role that may read uploads/ and list it, by prefix only
    listing = {"StringLike": {"s3:prefix": ["uploads/*"]}}
    role = _role(
        ("s3:GetObject", "arn:aws:s3:::ingest/uploads/*", {}),
        ("s3:ListBucket", "arn:aws:s3:::ingest", listing),
    )
    bootstrap.hold_to_role(role, "us-east-1", "123456789012", "arn:aws:sts::1:assumed-role/r/f")
    # THEN what it grants is done
    assert held.get_object(Bucket="ingest", Key="uploads/a.mp4")["Body"].read() == b"a"
    assert held.list_objects_v2(Bucket="ingest", Prefix="uploads/")["KeyCount"] == 1
    # AND what it does not is AccessDenied, as on AWS (moto grants everything)
    for call in (
        lambda: held.put_object(Bucket="ingest", Key="uploads/b.mp4", Body=b"b"),
        lambda: held.get_object(Bucket="ingest", Key="live/0.ts"),
        lambda: held.list_objects_v2(Bucket="ingest", Prefix="live/"),
    ):
        with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
            call()
    # AND a read of a missing key is 403, not 404: the role may not list the whole bucket
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        held.head_object(Bucket="ingest", Key="uploads/gone.mp4")
    assert missing.value.response["Error"]["Code"] == "403"


def test_a_presigned_url_is_held_to_the_role_as_its_get_would_be(held: Any) -> None:
    # GIVEN a role that may read uploads/, but not a version of them
    role = _role(("s3:GetObject", "arn:aws:s3:::ingest/uploads/*", {}))
    bootstrap.hold_to_role(role, "us-east-1", "123456789012", "arn:aws:sts::1:assumed-role/r/f")
    s3 = boto3.client("s3", region_name="us-east-1")
    # THEN it presigns what it may read, and ffmpeg reads it
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "ingest", "Key": "uploads/a.mp4"}
    )
    assert "/uploads/a.mp4?" in url
    # AND a URL whose GET S3 would refuse the role (403 to its reader on AWS, where moto
    # checks no signature) is AccessDenied: another prefix, or a version of the upload
    for params in ({"Key": "live/0.ts"}, {"Key": "uploads/a.mp4", "VersionId": "v1"}):
        with pytest.raises(botocore.exceptions.ClientError, match=r"AccessDenied.*presigned"):
            s3.generate_presigned_url("get_object", Params={"Bucket": "ingest", **params})


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """In-process Step Functions, EventBridge, KMS and Secrets Manager (moto), each with
    what a function's role might name and what it might not."""
    _restored_after(monkeypatch)
    with mock_aws():
        made = {
            name: boto3.client(name, region_name="us-east-1")
            for name in ("stepfunctions", "events", "kms", "secretsmanager")
        }
        role_arn = "arn:aws:iam::123456789012:role/sfn"
        definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
        for machine in ("vod", "clip"):
            made["stepfunctions"].create_state_machine(
                name=machine, definition=json.dumps(definition), roleArn=role_arn
            )
        made["events"].create_event_bus(Name="vidflow-events")
        for alias in ("alias/content", "alias/other"):
            key = made["kms"].create_key()["KeyMetadata"]["KeyId"]
            made["kms"].create_alias(AliasName=alias, TargetKeyId=key)
        for secret in ("token", "other"):
            made["secretsmanager"].create_secret(Name=secret, SecretString="s")
        yield made


def test_every_service_a_worker_calls_is_held_to_its_role(services: dict[str, Any]) -> None:
    # GIVEN a role that may start the vod machine, put on the stack's bus, use the
    # content key (named through its alias, as the stack names it) and read the token
    where = "us-east-1:123456789012"
    machine = f"arn:aws:states:{where}:stateMachine"
    bus = f"arn:aws:events:{where}:event-bus"
    content_key = "arn:aws:local:us-east-1:123456789012:ContentKeyMasterKey"
    role = _role(
        ("states:StartExecution", f"{machine}:vod", {}),
        ("events:PutEvents", f"{bus}/vidflow-events", {}),
        ("kms:GenerateDataKey", content_key, {}),
        ("kms:Decrypt", content_key, {}),
        ("secretsmanager:GetSecretValue", "token", {}),
        ("kms:GenerateRandom", "*", {}),
    )
    other = services["kms"].generate_data_key(KeyId="alias/other", NumberOfBytes=16)
    ids = {a["AliasName"]: a["TargetKeyId"] for a in services["kms"].list_aliases()["Aliases"]}
    keys = {"alias/content": content_key, "alias/other": "arn:aws:local:us-east-1:1:Other"}
    bootstrap.hold_to_role(
        role, "us-east-1", "123456789012", "arn:aws:sts::1:assumed-role/r/f", keys
    )
    sfn, events = services["stepfunctions"], services["events"]
    kms, secrets = services["kms"], services["secretsmanager"]
    entry = {"Source": "vidflow", "DetailType": "t", "Detail": "{}"}
    # THEN what it grants is done
    sfn.start_execution(stateMachineArn=f"{machine}:vod", name="a")
    events.put_events(Entries=[{**entry, "EventBusName": "vidflow-events"}])
    made = kms.generate_data_key(KeyId="alias/content", NumberOfBytes=16)
    assert kms.decrypt(CiphertextBlob=made["CiphertextBlob"])["Plaintext"] == made["Plaintext"]
    kms.generate_data_key(KeyId=ids["alias/content"], NumberOfBytes=16)  # (by the key's id)
    assert secrets.get_secret_value(SecretId="token")["SecretString"] == "s"
    assert len(kms.generate_random(NumberOfBytes=8)["Plaintext"]) == 8  # (a call of no key)
    # AND what it does not is AccessDenied, as on AWS (moto grants everything): another
    # machine, a look at an execution, the default bus, another key (also to decrypt what
    # it wrapped, which names no key), another secret, a service it is given nothing of
    for call in (
        lambda: sfn.start_execution(stateMachineArn=f"{machine}:clip", name="a"),
        lambda: sfn.describe_execution(executionArn=f"arn:aws:states:{where}:execution:vod:a"),
        lambda: events.put_events(Entries=[entry]),
        lambda: kms.generate_data_key(KeyId="alias/other", NumberOfBytes=16),
        lambda: kms.decrypt(CiphertextBlob=other["CiphertextBlob"]),
        lambda: kms.generate_data_key(KeyId=ids["alias/other"], NumberOfBytes=16),
        lambda: kms.encrypt(KeyId="alias/content", Plaintext=b"k"),
        lambda: secrets.get_secret_value(SecretId="other"),
        lambda: boto3.client("sqs", region_name="us-east-1").list_queues(),
        lambda: kms.list_keys(),
    ):
        with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
            call()


def test_the_stack_roles_grant_the_executions_sam_grants() -> None:
    # StepFunctionsExecutionPolicy: SAM expands it to StartExecution on the named machine
    stack = Stack(ROOT)
    machine = f"arn:aws:states:{stack.region}:{stack.account}:stateMachine:{stack.name}"
    starts = bootstrap.needs("stepfunctions", "StartExecution", {"stateMachineArn": ""}, "", "")
    assert starts == [("states:StartExecution", "", None)]
    for function, machines in (
        ("StartJobFunction", {"vod"}),
        ("LiveIngestFunction", {"live", "clip"}),
        ("ReconcileFunction", {"vod", "live", "clip"}),
    ):
        statements = stack.role_statements(function)
        for name in ("vod", "live", "clip"):
            may = bootstrap.allowed(statements, "states:StartExecution", f"{machine}-{name}", None)
            assert may == (name in machines), (function, name)
    # AND an alias the functions name stands for the key their statements name
    alias = stack.resolve(stack.template["Globals"]["Function"]["Environment"]["Variables"]
                          ["CONTENT_KEY_KMS_KEY"])  # fmt: skip
    key = bootstrap.kms_key(alias, stack.kms_keys())
    assert bootstrap.allowed(
        stack.role_statements("PlanFunction"), "kms:GenerateDataKey", key, None
    )
    assert not bootstrap.allowed(
        stack.role_statements("TranscodeChunkFunction"), "kms:GenerateDataKey", key, None
    )


def test_a_role_that_may_list_the_bucket_reads_a_missing_key_as_404(held: Any) -> None:
    role = _role(
        ("s3:GetObject", "arn:aws:s3:::ingest/*", {}),
        ("s3:ListBucket", "arn:aws:s3:::ingest", {}),
    )
    bootstrap.hold_to_role(role, "us-east-1", "123456789012", "arn:aws:sts::1:assumed-role/r/f")
    with pytest.raises(held.exceptions.NoSuchKey):
        held.get_object(Bucket="ingest", Key="uploads/gone.mp4")


def test_a_read_of_an_upload_under_a_kms_key_is_held_to_the_roles_kms_decrypt(
    held: Any,
) -> None:
    # GIVEN uploads under SSE-S3, S3's own KMS key (aws/s3), a key the role may decrypt
    # with (the stack's KmsKeyArn), and the uploader's own key, which it may not
    kms = boto3.client("kms", region_name="us-east-1")
    granted, theirs = (kms.create_key()["KeyMetadata"]["Arn"] for _ in range(2))
    kms.create_alias(AliasName="alias/theirs", TargetKeyId=theirs)
    uploads = {
        "uploads/s3.mp4": {"ServerSideEncryption": "AES256"},
        "uploads/aws-s3.mp4": {"ServerSideEncryption": "aws:kms"},
        "uploads/granted.mp4": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": granted},
        "uploads/theirs.mp4": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": theirs},
        "uploads/alias.mp4": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/theirs"},
    }
    for key, sse in uploads.items():
        held.put_object(Bucket="ingest", Key=key, Body=b"v", **sse)
    role = _role(
        ("s3:GetObject", "arn:aws:s3:::ingest/uploads/*", {}),
        ("kms:Decrypt", granted, {}),
    )
    bootstrap.hold_to_role(role, "us-east-1", "123456789012", "arn:aws:sts::1:assumed-role/r/f")
    s3 = boto3.client("s3", region_name="us-east-1")
    # THEN what S3 decrypts for the role is read, GET and presigned
    for key in ("uploads/s3.mp4", "uploads/aws-s3.mp4", "uploads/granted.mp4"):
        assert s3.get_object(Bucket="ingest", Key=key)["Body"].read() == b"v"
        s3.generate_presigned_url("get_object", Params={"Bucket": "ingest", "Key": key})
    # AND a GET under a key the role may not decrypt with is AccessDenied naming
    # kms:Decrypt on that key, as S3 answers it; so is a presigned URL of it
    for key in ("uploads/theirs.mp4", "uploads/alias.mp4"):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            s3.get_object(Bucket="ingest", Key=key, Range="bytes=0-0")
        error = refused.value.response["Error"]
        assert error["Code"] == "AccessDenied"
        assert f"kms:Decrypt on resource: {theirs}" in error["Message"]
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with pytest.raises(botocore.exceptions.ClientError, match=r"AccessDenied.*kms:Decrypt"):
            s3.generate_presigned_url("get_object", Params={"Bucket": "ingest", "Key": key})
        # AND a HEAD, which decrypts nothing, is answered
        assert s3.head_object(Bucket="ingest", Key=key)["SSEKMSKeyId"].endswith(
            ("alias/theirs", theirs)
        )


def test_a_stack_with_its_own_kms_key_grants_the_roles_its_key_policy_names() -> None:
    # GIVEN a stack deployed with KmsKeyArn: its KmsKeyUse policy (an AWS::IAM::Policy
    # attached to the functions' roles) grants them kms:Decrypt on that key
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    stack = Stack(ROOT, overrides={"KmsKeyArn": key})
    # THEN the roles it names may decrypt with it (an upload under the stack's own key is
    # read), and no role of a stack without it may
    for function in ("ProbeFunction", "LiveTranscodeFunction"):
        assert bootstrap.allowed(stack.role_statements(function), "kms:Decrypt", key, None)
    assert not bootstrap.allowed(
        Stack(ROOT).role_statements("ProbeFunction"), "kms:Decrypt", key, None
    )


SLOW_INIT = """
import time

time.sleep({seconds})


def handler(event, context):
    return {{"left_ms": context.get_remaining_time_in_millis()}}
"""


@pytest.fixture
def slow_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaRuntime]:
    """A runtime whose Plan function, a real worker, takes 0.6 s to import, against an
    init limit of 0.3 s (Lambda's is 10 s)."""
    monkeypatch.setattr(lambda_runtime, "INIT_SECONDS", 0.3)
    build = tmp_path / "build"
    for layer in ("WorkflowLayer", "PyAVLayer"):
        (build / layer / "python").mkdir(parents=True)
    (build / "PlanFunction").mkdir()
    (build / "PlanFunction" / "app.py").write_text(SLOW_INIT.format(seconds=0.6))
    lambdas = LambdaRuntime(
        Stack(ROOT),
        build,
        runtime_folder(ROOT),
        find_interpreter("python3.12"),
        {},
        log_file=tmp_path / "functions.log",
    )
    yield lambdas
    lambdas.stop()


def test_an_init_past_its_limit_runs_again_in_the_call_under_the_functions_timeout(
    slow_init: LambdaRuntime, tmp_path: Path
) -> None:
    # GIVEN a function whose import outlasts Lambda's init limit
    function = slow_init.functions["PlanFunction"]
    # WHEN it is called cold
    result, error = slow_init.invoke("PlanFunction", {})
    # THEN, as Lambda does, the init is run again in the call and the call succeeds, its
    # handler given the function's timeout less the second init's time
    assert error is None, error
    assert 0 < result["left_ms"] <= (function.timeout - 0.6) * 1000
    assert slow_init.cold_starts == 2
    # and the first init's timeout is in the function log; the second init is in the
    # call's Duration, with no Init Duration of its own
    slow_init.stop()
    log = (tmp_path / "functions.log").read_text()
    assert "INIT_REPORT Init Duration: 300.00 ms\tPhase: init\tStatus: timeout" in log
    [report] = [line for line in log.splitlines() if "REPORT RequestId:" in line]
    assert "Init Duration" not in report
    assert float(report.split("Duration: ")[1].split(" ms")[0]) >= 600


def test_an_environment_started_ahead_whose_init_outran_the_limit_inits_in_the_call(
    slow_init: LambdaRuntime, tmp_path: Path
) -> None:
    # GIVEN a function whose import outlasts Lambda's init limit, started ahead
    slow_init.prewarm(["PlanFunction"]).join(timeout=5)
    assert slow_init.workers() == []
    # WHEN it is called
    result, error = slow_init.invoke("PlanFunction", {})
    # THEN the call runs the init again under the function's timeout, as the first call
    # of that environment would, rather than trying the 10 s limit once more
    assert error is None and result["left_ms"] > 0, error
    assert slow_init.cold_starts == 2
    slow_init.stop()
    log = (tmp_path / "functions.log").read_text()
    assert log.count("Phase: init\tStatus: timeout") == 1


def test_an_init_again_past_the_functions_timeout_times_the_call_out(
    slow_init: LambdaRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a function whose import outlasts both the init limit and its own timeout
    function = replace(slow_init.functions["PlanFunction"], timeout=0.4)
    monkeypatch.setitem(slow_init.functions, "PlanFunction", function)
    # WHEN it is called cold
    result, error = slow_init.invoke("PlanFunction", {})
    # THEN the call times out as Lambda's does, and no worker is left
    assert result is None and error is not None
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 0.40 seconds" in error["errorMessage"]
    assert slow_init.workers() == []


WRITING_ON = """
import os, sys, threading, time
sys.path.insert(0, sys.argv[1])
from workflow.local import bootstrap

tmp = sys.argv[2]


def handler_cleaning_up():
    # the handler's thread after its ffmpeg is killed: files written for 0.3 s more
    until, n = time.monotonic() + 0.3, 0
    while time.monotonic() < until:
        try:
            open(os.path.join(tmp, f"part-{n}"), "w").close()
        except OSError:
            pass
        n += 1


threading.Thread(target=handler_cleaning_up).start()
time.sleep(0.02)
bootstrap._end(tmp)
"""


def test_a_worker_whose_handler_writes_on_as_it_ends_still_removes_its_tmp(
    tmp_path: Path,
) -> None:
    # GIVEN a worker ending because its engine is gone, its handler's thread still
    # writing files into its /tmp
    tmp = tmp_path / "vidflow-TranscodeChunkFunction-x"
    tmp.mkdir()
    # WHEN it ends
    done = subprocess.run(
        [sys.executable, "-c", WRITING_ON, str(ROOT), str(tmp)], capture_output=True, timeout=60
    )
    # THEN it exits as an ended worker does, and its /tmp is gone, not left half removed
    assert done.returncode == 1, done.stderr
    assert not tmp.exists(), f"{len(list(tmp.iterdir()))} files left"
