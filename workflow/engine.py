"""The local engine: the template's buckets, functions and state machines on localhost.

moto serves S3 and Step Functions on 127.0.0.1 and runs executions with its ASL
interpreter. Lambda calls from the interpreter are answered in-process by the handler
the template names for the function, and S3 notifications reach the functions whose
template ``Events`` match, with the real S3 event shape. Nothing here lists states,
functions or buckets: everything comes from ``sam-template.yaml``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import subprocess
import threading
import time
import types
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.handlers
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.response import StreamingBody

from workflow import transcode
from workflow.functions import FunctionHost, running_function
from workflow.origin import Origin
from workflow.template import Stack

LOCAL_ACCESS_KEY_ID = "vidflow-local-key"
LOCAL_SECRET_ACCESS_KEY = "vidflow-local-secret-do-not-log"


def use_local_stack(endpoint_url: str, region: str) -> None:
    """Point every AWS client this process makes at a local stack, with dummy keys.

    Never the user's real credentials: the local stack accepts any, and a profile or
    session token left in the environment would otherwise win over the dummy keys.
    """
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
        }
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)


@dataclass(frozen=True)
class Endpoints:
    """What a client needs to reach a running local stack."""

    endpoint_url: str
    ingest_bucket: str
    output_bucket: str
    region: str
    state_machine_arn: str
    live_state_machine_arn: str
    live_table: str
    # Players read the published output here (a CDN's job on AWS).
    playback_url: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


class LocalEngine:
    """Serve one stack of ``sam-template.yaml`` on 127.0.0.1 until stopped."""

    def __init__(
        self,
        root: Path,
        *,
        port: int = 0,
        parameters: dict[str, str] | None = None,
        retry_delay_scale: float = 1.0,
        log_file: Path | None = None,
        faults: str | None = None,
    ) -> None:
        self.root = root
        self.port = port
        self.stack = Stack(root, overrides=parameters or {})
        self.retry_delay_scale = retry_delay_scale
        self.log_file = log_file
        spec = os.environ.get("VIDFLOW_FAULTS", "") if faults is None else faults
        self.host = FunctionHost(self.stack, log_file, spec)
        self.functions = self.host.functions
        self._events = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3-event")
        self._stopping = threading.Event()
        self._server: Any = None
        self._origin: Origin | None = None
        self.endpoints: Endpoints | None = None

    def start(self) -> Endpoints:
        """Start moto, create the template's resources and route Lambda calls here."""
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        # Request lines and the interpreter's own failure traces are not for users.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        os.environ["MOTO_PORT"] = str(port)
        use_local_stack(endpoint, self.stack.region)
        self._install_hooks()
        self._create_resources()
        outputs = self.stack.outputs()
        self._origin = self._start_origin(outputs["OutputBucketName"])
        self.endpoints = Endpoints(
            endpoint_url=endpoint,
            ingest_bucket=outputs["IngestBucketName"],
            output_bucket=outputs["OutputBucketName"],
            region=self.stack.region,
            state_machine_arn=outputs["VodStateMachineArn"],
            live_state_machine_arn=outputs["LiveStateMachineArn"],
            live_table=outputs["LiveTableName"],
            playback_url=self._origin.url,
        )
        self._start_schedules()
        return self.endpoints

    def _start_origin(self, bucket: str) -> Origin:
        """The playback origin: on the port after the stack's when one was chosen."""
        s3 = self.client("s3")
        if self.port:
            try:
                return Origin(s3, bucket, self.port + 1).start()
            except OSError:
                pass
        return Origin(s3, bucket).start()

    def stop(self) -> None:
        self._stopping.set()
        if self._origin is not None:
            self._origin.stop()
        self._events.shutdown(wait=False, cancel_futures=True)
        if self._server is not None:
            self._server.stop()

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.stack.region)  # type: ignore[call-overload]

    # Resources from the template.

    def _create_resources(self) -> None:
        s3 = self.client("s3")
        for name in self.stack.buckets().values():
            s3.create_bucket(Bucket=name)
        dynamodb = self.client("dynamodb")
        for table, arguments in self.stack.tables().items():
            dynamodb.create_table(TableName=table, **arguments)
        sfn = self.client("stepfunctions")
        role = f"arn:aws:iam::{self.stack.account}:role/{self.stack.name}-local"
        for machine in self.stack.state_machines():
            sfn.create_state_machine(
                name=machine.name, definition=machine.definition, roleArn=role, type=machine.type
            )
        notifications: dict[str, list[dict[str, Any]]] = {}
        for function in self.functions.values():
            for number, trigger in enumerate(function.triggers):
                rules = [
                    {"Name": name, "Value": value}
                    for name, value in (("prefix", trigger.prefix), ("suffix", trigger.suffix))
                    if value
                ]
                notifications.setdefault(self.stack.ref(trigger.bucket_logical_id), []).append(
                    {
                        "Id": f"{function.logical_id}-{number}",
                        "LambdaFunctionArn": function.arn,
                        "Events": list(trigger.events),
                        "Filter": {"Key": {"FilterRules": rules}},
                    }
                )
        for bucket, configurations in notifications.items():
            s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={"LambdaFunctionConfigurations": configurations},
            )

    def _start_schedules(self) -> None:
        """Run each function with a ``Schedule`` event at its rate, as EventBridge would."""
        for function in self.functions.values():
            for seconds in function.schedules:
                threading.Thread(
                    target=self._run_every,
                    args=(function.arn, seconds),
                    name=f"schedule-{function.logical_id}",
                    daemon=True,
                ).start()

    def _run_every(self, arn: str, period: float) -> None:
        while not self._stopping.wait(period):
            self.invoke(arn, self.scheduled_event(arn))

    def scheduled_event(self, arn: str) -> dict[str, Any]:
        """The event EventBridge sends a function on its schedule."""
        rule = f"arn:aws:events:{self.stack.region}:{self.stack.account}:rule/{arn.split(':')[-1]}"
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.stack.account,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": self.stack.region,
            "resources": [rule],
            "detail": {},
        }

    # Routing Lambda calls and S3 notifications to in-process handlers.

    def _install_hooks(self) -> None:
        global _active_engine
        _active_engine = self
        _install_process_hooks()

    def answer_invoke(self, params: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
        """A Lambda ``Invoke`` response for the call ``params``, from the handler itself."""
        raw = params.get("Payload") or b"{}"
        event = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        result, error = self.invoke(params["FunctionName"], event)
        body = json.dumps(error if error is not None else result).encode()
        parsed: dict[str, Any] = {
            "StatusCode": 200,
            "ExecutedVersion": "$LATEST",
            "Payload": StreamingBody(io.BytesIO(body), len(body)),
            "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}},
        }
        if error is not None:
            parsed["FunctionError"] = "Unhandled"
        return AWSResponse("local://lambda", 200, HTTPHeaders(), None), parsed

    def invoke(self, function_name: str, event: Any) -> tuple[Any, dict[str, Any] | None]:
        """Run a function's handler; returns (result, None) or (None, Lambda error payload)."""
        return self.host.invoke(function_name, event)


# The engine that answers this process's Lambda calls and S3 notifications. The hooks
# are process-wide (botocore handlers, moto internals), so they are installed once.
_active_engine: LocalEngine | None = None
_hooks_lock = threading.Lock()
_hooks_installed = False


def _install_process_hooks() -> None:
    global _hooks_installed
    with _hooks_lock:
        if _hooks_installed:
            return
        import moto.s3.notifications as s3_notifications
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

        s3_notifications._invoke_awslambda = _on_s3_notification  # type: ignore[assignment]
        retrier_decl.time = types.SimpleNamespace(sleep=_retry_sleep)  # type: ignore[assignment]
        transcode.started_hook = _fault_ffmpeg
        hooks = [
            ("before-parameter-build.lambda.Invoke", _remember_invoke),
            ("before-call.lambda.Invoke", _answer_invoke),
            ("before-call.s3.PutObject", _fault_s3_put),
        ]
        botocore.handlers.BUILTIN_HANDLERS.extend(hooks)
        if boto3.DEFAULT_SESSION is not None:
            for event, hook in hooks:
                boto3.DEFAULT_SESSION._session.register(event, hook)  # type: ignore[arg-type]
        _hooks_installed = True


def _remember_invoke(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["vidflow_invoke"] = dict(params)


def _answer_invoke(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
    params = context.get("vidflow_invoke")
    if params is None or _active_engine is None:
        return None
    return _active_engine.answer_invoke(params)


def _fault_ffmpeg(process: subprocess.Popen[bytes]) -> None:
    if _active_engine is not None:
        _active_engine.host.faults.on_ffmpeg_start(process, running_function())


def _fault_s3_put(**_: Any) -> None:
    if _active_engine is not None and running_function() is not None:
        _active_engine.host.faults.on_s3_put()


def _on_s3_notification(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
    engine = _active_engine
    if engine is not None:
        engine._events.submit(engine.invoke, fn_arn, event_body)


def _retry_sleep(seconds: float) -> None:
    """The interpreter's back-off between retries, scaled for tests (never in production)."""
    scale = _active_engine.retry_delay_scale if _active_engine is not None else 1.0
    time.sleep(seconds * scale)
