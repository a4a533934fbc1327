"""The local engine: the template's buckets, functions and state machines on localhost.

moto serves S3 and Step Functions on 127.0.0.1 and runs executions with its ASL
interpreter. Lambda calls from the interpreter are answered in-process by the handler
the template names for the function, and S3 notifications reach the functions whose
template ``Events`` match, with the real S3 event shape. Nothing here lists states,
functions or buckets: everything comes from ``sam-template.yaml``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import types
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.handlers
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.response import StreamingBody

from workflow.template import Function, Stack

log = logging.getLogger("vidflow.engine")

_env_lock = threading.Lock()


@dataclass(frozen=True)
class Endpoints:
    """What a client needs to reach a running local stack."""

    endpoint_url: str
    ingest_bucket: str
    output_bucket: str
    region: str
    state_machine_arn: str

    def to_dict(self) -> dict[str, str]:
        return {
            "endpoint_url": self.endpoint_url,
            "ingest_bucket": self.ingest_bucket,
            "output_bucket": self.output_bucket,
            "region": self.region,
            "state_machine_arn": self.state_machine_arn,
        }


class LambdaContext:
    """The parts of the Lambda context object handlers and Powertools read."""

    def __init__(self, function: Function, region: str) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + function.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


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
    ) -> None:
        self.root = root
        self.port = port
        self.stack = Stack(root, overrides=parameters or {})
        self.retry_delay_scale = retry_delay_scale
        self.log_file = log_file
        self.functions = {f.logical_id: f for f in self.stack.functions()}
        self._by_name = {
            key: f for f in self.functions.values() for key in (f.name, f.arn, f.logical_id)
        }
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._load_lock = threading.Lock()
        self._events = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3-event")
        self._server: Any = None
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
        os.environ.update(
            {
                "MOTO_PORT": str(port),
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "vidflow-local"),
                "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "vidflow-local"),
                "AWS_DEFAULT_REGION": self.stack.region,
                "AWS_REGION": self.stack.region,
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        self._install_hooks()
        self._create_resources()
        outputs = self.stack.outputs()
        self.endpoints = Endpoints(
            endpoint_url=endpoint,
            ingest_bucket=outputs["IngestBucketName"],
            output_bucket=outputs["OutputBucketName"],
            region=self.stack.region,
            state_machine_arn=outputs["VodStateMachineArn"],
        )
        return self.endpoints

    def stop(self) -> None:
        self._events.shutdown(wait=False, cancel_futures=True)
        if self._server is not None:
            self._server.stop()

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.stack.region)

    # Resources from the template.

    def _create_resources(self) -> None:
        s3 = self.client("s3")
        for name in self.stack.buckets().values():
            s3.create_bucket(Bucket=name)
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
        function = self._by_name.get(function_name) or self._by_name.get(
            function_name.split(":function:")[-1].split(":")[0]
        )
        if function is None:
            error = {
                "errorType": "ResourceNotFoundException",
                "errorMessage": f"no function {function_name}",
            }
            return None, error
        try:
            handler = self._handler(function)
            result = handler(event, LambdaContext(function, self.stack.region))
            return json.loads(json.dumps(result)), None
        except Exception as exc:
            log.info("%s failed: %s: %s", function.logical_id, type(exc).__name__, exc)
            return None, {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc),
            }

    def _handler(self, function: Function) -> Callable[..., Any]:
        with self._load_lock:
            if function.logical_id not in self._handlers:
                self._handlers[function.logical_id] = self._cold_start(function)
            return self._handlers[function.logical_id]

    def _cold_start(self, function: Function) -> Callable[..., Any]:
        """Import the handler module with the function's environment, as Lambda would."""
        module_name, attribute = function.handler.rsplit(".", 1)
        path = function.code_uri / f"{module_name.replace('.', '/')}.py"
        spec = importlib.util.spec_from_file_location(f"vidflow_fn_{function.logical_id}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        with _environment(function.environment):
            spec.loader.exec_module(module)
        self._quiet_function_logs()
        handler: Callable[..., Any] = getattr(module, attribute)
        return handler

    def _quiet_function_logs(self) -> None:
        """Send the functions' Powertools logs to the engine's log file, not stdout."""
        service = logging.getLogger(os.environ.get("POWERTOOLS_SERVICE_NAME", "vidflow"))
        for logger in (service, logging.getLogger("vidflow")):
            for handler in list(logger.handlers):
                if isinstance(handler, logging.StreamHandler) and handler.stream in (
                    sys.stdout,
                    sys.stderr,
                ):
                    logger.removeHandler(handler)
                    if self.log_file is not None:
                        file_handler = logging.FileHandler(self.log_file)
                        file_handler.setFormatter(handler.formatter)
                        logger.addHandler(file_handler)


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
        hooks = [
            ("before-parameter-build.lambda.Invoke", _remember_invoke),
            ("before-call.lambda.Invoke", _answer_invoke),
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


def _on_s3_notification(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
    engine = _active_engine
    if engine is not None:
        engine._events.submit(engine.invoke, fn_arn, event_body)


def _retry_sleep(seconds: float) -> None:
    """The interpreter's back-off between retries, scaled for tests (never in production)."""
    scale = _active_engine.retry_delay_scale if _active_engine is not None else 1.0
    time.sleep(seconds * scale)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    with _env_lock:
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
