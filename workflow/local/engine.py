"""The local engine: the template's buckets, functions and state machines on localhost.

moto serves S3, DynamoDB and Step Functions on 127.0.0.1 and runs executions with its
ASL interpreter. Lambda calls from the interpreter are answered by the local Lambda
runtime (``workflow.local.lambda_runtime``), which runs each function from its
``sam build`` artefacts in worker processes of its own, and S3 notifications reach the
functions whose template ``Events`` match, with the real S3 event shape. Nothing here
lists states, functions or buckets: everything comes from ``sam-template.yaml``.

Over 400 lines because it is the one place that joins moto to the template: the S3, queue
and state machine set-up and the hooks moto offers for Lambda calls and S3 events belong
together, and none is reused elsewhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import itertools
import json
import logging
import os
import secrets
import socket
import string
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.handlers
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.response import StreamingBody

from workflow.errors import ConfigurationError
from workflow.keys.service import PlaybackGate, PlaybackSecret
from workflow.keys.store import KeyStore
from workflow.local.asl_clients import install as share_asl_clients
from workflow.local.asl_import import install as import_asl_interpreter
from workflow.local.aws_files import PROFILES, forget_aws_files
from workflow.local.build import (
    ensure_built,
    ensure_stack_built,
    find_interpreter,
    runtime_folder,
)
from workflow.local.choice_paths import install as fail_choices_on_missing_paths
from workflow.local.dispatch import check as check_dispatch
from workflow.local.dispatch import dispatcher
from workflow.local.dynamodb_size import install as install_dynamodb_size
from workflow.local.dynamodb_transactions import install as install_dynamodb_transactions
from workflow.local.eventbridge import create as create_event_resources
from workflow.local.eventbridge import install as install_webhooks
from workflow.local.execution_names import install as install_execution_names
from workflow.local.fail_errors import install as report_fail_errors
from workflow.local.faults import FaultPlan, parse
from workflow.local.function_url import FunctionUrl
from workflow.local.lambda_runtime import LambdaRuntime, LogLine
from workflow.local.map_failures import install as fail_maps_past_their_threshold
from workflow.local.moto_pins import once
from workflow.local.origin import SHUTDOWN_POLL_SECONDS, Origin, addressed_here, from_a_web_page
from workflow.local.parameters import check as check_parameters
from workflow.local.presigned import install as install_presigned
from workflow.local.ranged_get import install as install_ranged_get
from workflow.local.s3_put import install as install_s3_put
from workflow.local.sse_c import install as install_sse_c
from workflow.local.template import Stack
from workflow.local.terminal_errors import install as leave_terminal_errors_uncaught
from workflow.local.xray import TraceDaemon
from workflow.settings import Settings
from workflow.storage import S3_CONFIG

log = logging.getLogger("vidflow.engine")

LOCAL_ACCESS_KEY_ID = "vidflow-local-key"
LOCAL_SECRET_ACCESS_KEY = "vidflow-local-secret-do-not-log"
# A function's role credentials on Lambda are temporary, and every URL it presigns carries
# their session token: one as long (~1,200 characters) makes a local function's URLs as
# long as on AWS, where ffmpeg cuts one past ``storage.FFMPEG_MAX_URL``.
LOCAL_SESSION_TOKEN = "vidflow-local-session-" + "0" * 1178


def use_local_stack(endpoint_url: str, region: str) -> None:
    """Point every AWS client this process makes at a local stack, with dummy keys.

    Never the user's real credentials: the local stack accepts any, and a profile or
    session token left in the environment would otherwise win over the dummy keys.
    """
    os.environ.update(
        {**local_credentials(endpoint_url), "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
    )
    forget_aws_files()
    # An endpoint named for one service (AWS_ENDPOINT_URL_S3), or the switch that ignores
    # the endpoint set here, would send that service's calls to AWS instead.
    for name in [*os.environ]:
        if name.startswith("AWS_ENDPOINT_URL_") or name in _NOT_LOCAL:
            os.environ.pop(name, None)
    _bypass_proxies()


# What in a user's shell would take a local stack's calls elsewhere.
_NOT_LOCAL = (*PROFILES, "AWS_SESSION_TOKEN", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def _bypass_proxies() -> None:
    """Reach the local stack directly: botocore and urllib send even a call to 127.0.0.1
    through the proxy the shell names (``http_proxy``, as on many company machines),
    which cannot reach this machine's loopback, unless ``no_proxy`` names the host."""
    names = ("no_proxy", "NO_PROXY")
    hosts = [h.strip() for n in names for h in os.environ.get(n, "").split(",") if h.strip()]
    bypass = ",".join(dict.fromkeys([*hosts, *LOCAL_HOSTS]))
    os.environ.update(dict.fromkeys(names, bypass))


def local_credentials(endpoint_url: str) -> dict[str, str]:
    """The environment that points an AWS SDK at a local stack (a function's role, locally)."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
    }


def local_function_env(endpoint_url: str) -> dict[str, str]:
    """What a function's worker gets to reach the local stack: its dummy role, and no
    shared AWS config or credentials files (a profile there must not steer it)."""
    return {
        **local_credentials(endpoint_url),
        "AWS_SESSION_TOKEN": LOCAL_SESSION_TOKEN,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def built_runtime(
    stack: Stack,
    aws_env: dict[str, str],
    *,
    log_file: Path | None = None,
    faults: FaultPlan | None = None,
    max_workers: int = 8,
) -> LambdaRuntime:
    """The stack's functions, built by ``sam build`` if their sources changed, ready to run."""
    interpreter = find_interpreter(stack.runtime())
    return LambdaRuntime(
        stack,
        ensure_built(stack.root, interpreter, private=True),
        runtime_folder(stack.root),
        interpreter,
        aws_env,
        log_file=log_file,
        faults=faults,
        max_workers=max_workers,
    )


class _MotoServer:
    """moto's threaded server, with S3's answers to functions open to injected faults."""

    def __init__(self, fault: Callable[[dict[str, Any]], str | None], port: int) -> None:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        class Server(ThreadedMotoServer):
            def _server_entry(self) -> None:
                from moto.moto_server.werkzeug_app import MotoRequestHandler
                from werkzeug.serving import make_server

                bound: list[int] = []
                self._server = make_server(
                    self._ip_address,
                    self._port,
                    _local_only(_faulty(dispatcher(), fault), bound),
                    True,
                    request_handler=MotoRequestHandler,
                )
                bound.append(self._server.server_port)
                self._server_ready_event.set()
                self._server.serve_forever(SHUTDOWN_POLL_SECONDS)

        self._inner = Server(ip_address="127.0.0.1", port=port, verbose=False)

    def start(self) -> None:
        self._inner.start()

    def get_host_and_port(self) -> tuple[str, int]:
        return self._inner.get_host_and_port()

    def stop(self) -> None:
        self._inner.stop()


_SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


def _faulty(app: Any, fault: Callable[[dict[str, Any]], str | None]) -> Any:
    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        kind = fault(environ)
        if kind == "slowdown":
            start_response(
                "503 Slow Down",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(_SLOWDOWN)))],
            )
            return [_SLOWDOWN]
        _read_body_at_once(environ)
        result: Iterable[bytes] = app(environ, start_response)
        if kind == "reset":
            return _cut_short(result, environ["werkzeug.socket"])
        return result

    return serve


_REFUSED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>The local stack answers only programs on this machine, by its loopback"
    b" address: not web pages, not other host names.</Message></Error>"
)


def _local_only(app: Any, port: list[int]) -> Any:
    """``app``, for requests from this machine's programs only, signed as S3 requires.

    moto takes any credentials and lets any web page read it (its CORS headers allow every
    origin): a page the user visits could read the stack's secrets, write uploads or wipe
    it. So a request a browser makes for any page but the stack's own (``from_a_web_page``:
    another site's, or one served on another port of this machine), or one addressed to
    another host name (DNS rebinding: ``addressed_here``), is refused;
    and one signed with SigV2 is answered as S3 answers it where it takes only SigV4.
    """

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {
            "Origin": environ.get("HTTP_ORIGIN"),
            "Sec-Fetch-Site": environ.get("HTTP_SEC_FETCH_SITE"),
        }
        here = addressed_here(environ.get("HTTP_HOST"), port[0])
        if from_a_web_page(headers, port[0]) or not here:
            start_response(
                "403 Forbidden",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(_REFUSED)))],
            )
            return [_REFUSED]
        if _signed_with_sigv2(environ):
            start_response(
                "400 Bad Request",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(_SIGV2)))],
            )
            return [_SIGV2]
        result: Iterable[bytes] = app(environ, start_response)
        return result

    return serve


# What S3 answers a request signed with SigV2 where it takes only SigV4: for objects under
# a KMS key, and on every bucket made since June 2020.
_SIGV2 = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidRequest</Code>'
    b"<Message>The authorization mechanism you have provided is not supported. Please use"
    b" AWS4-HMAC-SHA256.</Message></Error>"
)


def _signed_with_sigv2(environ: dict[str, Any]) -> bool:
    """A SigV2 presigned URL (``AWSAccessKeyId`` and ``Signature`` in its query), or a
    SigV2 ``Authorization`` header (``AWS <key>:<signature>``)."""
    query = environ.get("QUERY_STRING", "")
    if "AWSAccessKeyId=" in query and "Signature=" in query:
        return True
    return str(environ.get("HTTP_AUTHORIZATION", "")).startswith("AWS ")


def _cut_short(result: Iterable[bytes], connection: socket.socket) -> Iterator[bytes]:
    """Half of a response's body, then the connection dropped (its headers promised all).

    werkzeug treats a ``ConnectionError`` from the body as a client gone away and writes
    nothing more; the socket, shut down first, tells the client at once.
    """
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    yield body[: len(body) // 2]
    connection.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("s3get:reset injected")


# The largest object S3 takes in one PUT.
_ONE_PUT_MAX = 5 * 1024**3


def _read_body_at_once(environ: dict[str, Any]) -> None:
    """Read a request's body in one call and hand it on as a stream that is already whole.

    werkzeug reads a body of known length 64 KB at a time into a growing buffer and then
    copies it: for the 277 MB upload of the VOD benchmark and the segments the functions
    write, about 0.5 s of the stack's CPU, holding the GIL the engine's threads share.
    ``wsgi.input_terminated`` tells werkzeug the stream ends where the body does. A body
    cut short stays short, and werkzeug answers it as a client that went away, as before.
    The one read takes its whole length at once, so a body claimed longer than S3 takes
    in one PUT is left to werkzeug's reading in pieces (a false ``Content-Length`` of
    terabytes would otherwise fail to allocate).
    """
    length = environ.get("CONTENT_LENGTH") or ""
    if "wsgi.input_terminated" in environ or not length.isdigit():
        return
    size = int(length)
    if not 0 < size <= _ONE_PUT_MAX:
        return
    try:
        body = environ["wsgi.input"].read(size)
    except OSError:  # the client went away, or its socket timed out, mid-body
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    if len(body) == size:
        environ["wsgi.input_terminated"] = True


def _from_a_function(environ: dict[str, Any]) -> bool:
    """botocore names Lambda's execution environment in its User-Agent (``exec-env/...``)."""
    return "exec-env/AWS_Lambda" in environ.get("HTTP_USER_AGENT", "")


@dataclass(frozen=True)
class Endpoints:
    """What a client needs to reach a running local stack."""

    endpoint_url: str
    ingest_bucket: str
    output_bucket: str
    region: str
    state_machine_arn: str
    live_state_machine_arn: str
    clip_state_machine_arn: str
    live_table: str
    # The log group that keeps every event of the stack's bus.
    event_log: str
    # Players read the published output here (a CDN's job on AWS).
    playback_url: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class AsyncFailure:
    """One failed attempt of an asynchronous invocation: the function, which attempt, and
    Lambda's error payload (``errorType``, ``errorMessage``)."""

    function: str
    attempt: int
    error: dict[str, Any]


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
        max_workers: int | None = None,
        prewarm: Callable[[Stack], Sequence[str]] | None = None,
    ) -> None:
        self.root = root.resolve()
        self.port = port
        self.stack = Stack(root, overrides=parameters or {})
        # Checked now, as a deploy would, so a bad value fails before anything starts.
        check_parameters(self.stack)
        self.retry_delay_scale = retry_delay_scale
        self.log_file = log_file
        # Execution environments per function at most (Lambda scales further).
        self.max_workers = max_workers or _lambda_workers()
        self._fault_spec = os.environ.get("VIDFLOW_FAULTS", "") if faults is None else faults
        # Function URLs are bound now: the functions' environments name them.
        self._function_urls = self._bind_function_urls()
        self.stack.serve_function_urls({lid: url.url for lid, url in self._function_urls.items()})
        self.functions = {f.logical_id: f for f in self.stack.functions()}
        # Checked now, so a bad spec fails before anything starts.
        self.faults = FaultPlan(parse(self._fault_spec), self._logical_id)
        self.lambdas: LambdaRuntime | None = None
        # Which functions get an execution environment while the engine starts, in order.
        self._prewarm = prewarm
        # Every failed attempt of an asynchronous invocation (an S3 event's), as it happens.
        self.async_failures: list[AsyncFailure] = []
        self._events = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3-event")
        self._stopping = threading.Event()
        self._server: Any = None
        self._origin: Origin | None = None
        # The functions' X-Ray segments, as the daemon beside a Lambda would receive them.
        self.traces: TraceDaemon | None = None
        self.endpoints: Endpoints | None = None

    def _bind_function_urls(self) -> dict[str, FunctionUrl]:
        """A local address for each function URL: after the origin's port when the stack
        has a port (4568, ...), else any free one."""
        bound = {}
        for number, (lid, cors) in enumerate(self.stack.url_functions().items()):
            arn = self.stack.get_att(lid, "Arn")
            port = self.port + 2 + number if self.port else 0
            port = port if port <= 65535 else 0  # (past the last port: any free one)
            try:
                bound[lid] = FunctionUrl(self.invoke, arn, cors, port)
            except OSError:
                bound[lid] = FunctionUrl(self.invoke, arn, cors)
        return bound

    def _logical_id(self, name: str) -> str | None:
        function = self.stack.find_function(name)
        return function.logical_id if function else None

    def start(self) -> Endpoints:
        """Build the functions, start moto, create the template's resources, route calls."""
        from moto.core.config import default_user_config

        # moto's modules make boto3 clients as they are imported: a profile the shell
        # names, and this machine lacks, or a config file that does not parse, would stop
        # them (use_local_stack drops them too).
        forget_aws_files()
        # First, so a failed build leaves nothing running.
        ensure_stack_built(self.stack)
        # Before the server: a moto this patch does not know stops the engine here, loudly.
        install_ranged_get()
        install_s3_put()
        install_dynamodb_size()
        install_dynamodb_transactions()
        install_presigned()
        install_sse_c()
        install_execution_names()
        install_webhooks()
        check_dispatch()
        import_asl_interpreter()
        share_asl_clients()
        report_fail_errors()
        leave_terminal_errors_uncaught()
        fail_maps_past_their_threshold()
        fail_choices_on_missing_paths()
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        # Request lines and the interpreter's own failure traces are not for users.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        self._server = _MotoServer(self._s3_fault, port=self.port)
        self._server.start()
        host, port = self._server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        os.environ["MOTO_PORT"] = str(port)
        use_local_stack(endpoint, self.stack.region)
        self.traces = TraceDaemon()
        self.lambdas = built_runtime(
            self.stack,
            {**local_function_env(endpoint), "AWS_XRAY_DAEMON_ADDRESS": self.traces.address},
            log_file=self.log_file,
            faults=self.faults,
            max_workers=self.max_workers,
        )
        if self._prewarm is not None:
            # Their inits run in their own processes while this one creates the resources.
            self.lambdas.prewarm(list(self._prewarm(self.stack)))
        self._install_hooks()
        self._create_resources()
        group = self.stack.function_log_group()
        if group is not None:
            self.lambdas.log.ship(functools.partial(_send_logs, self.client("logs"), group))
        outputs = self.stack.outputs()
        self._origin = self._start_origin(outputs["OutputBucketName"])
        for url in self._function_urls.values():
            url.start()
        self.endpoints = Endpoints(
            endpoint_url=endpoint,
            ingest_bucket=outputs["IngestBucketName"],
            output_bucket=outputs["OutputBucketName"],
            region=self.stack.region,
            state_machine_arn=outputs["VodStateMachineArn"],
            live_state_machine_arn=outputs["LiveStateMachineArn"],
            clip_state_machine_arn=outputs["ClipStateMachineArn"],
            live_table=outputs["LiveTableName"],
            event_log=outputs["EventLogName"],
            playback_url=self._origin.url,
        )
        self._start_schedules()
        return self.endpoints

    def _start_origin(self, bucket: str) -> Origin:
        """The playback origin: on the port after the stack's when one was chosen; it
        checks playback tokens on protected assets as the key service does."""
        s3 = self.client("s3")
        settings = Settings.from_env(self.functions[self._key_service()].environment)
        gate = PlaybackGate(
            KeyStore(
                settings.keys_table,
                settings.content_key_kms_key,
                self.client("dynamodb"),
                self.client("kms"),
            ),
            PlaybackSecret(self.client("secretsmanager"), settings.playback_secret),
        )
        if self.port:
            try:
                return Origin(s3, bucket, self.port + 1, gate.allows).start()
            except OSError:
                pass
        return Origin(s3, bucket, guard=gate.allows).start()

    def _key_service(self) -> str:
        """The function that serves content keys: the one with a URL and a secret."""
        return next(
            lid
            for lid in self._function_urls
            if "PLAYBACK_SECRET" in self.functions[lid].environment
        )

    def stop(self) -> None:
        self._stopping.set()
        self._events.shutdown(wait=False, cancel_futures=True)
        # Every part stops even if another fails; the workers and their ffmpeg first.
        with contextlib.ExitStack() as stopping:
            if self._server is not None:
                stopping.callback(self._server.stop)
            if self._origin is not None:
                stopping.callback(self._origin.stop)
            for url in self._function_urls.values():
                stopping.callback(url.stop)
            if self.lambdas is not None:
                stopping.callback(self.lambdas.stop)
            if self.traces is not None:
                stopping.callback(self.traces.stop)

    def arm(self, spec: str) -> FaultPlan:
        """Replace the armed faults with ``spec``'s; returns the plan, to read what fired."""
        self.faults = FaultPlan(parse(spec), self._logical_id)
        if self.lambdas is not None:
            self.lambdas.faults = self.faults
        return self.faults

    def _s3_fault(self, environ: dict[str, Any]) -> str | None:
        """The fault S3 answers this request with, if one is armed for it: ``slowdown`` for
        a function's PutObject, ``reset`` for a ranged GetObject by a function's ffmpeg."""
        method = environ.get("REQUEST_METHOD")
        bucket_and_key = environ.get("PATH_INFO", "").strip("/").split("/", 1)
        if len(bucket_and_key) < 2:
            return None
        if method == "GET" and "HTTP_RANGE" in environ:
            # Only a function's ffmpeg reads the source with ranges from a presigned URL.
            from_ffmpeg = environ.get("HTTP_USER_AGENT", "").startswith("Lavf/")
            return "reset" if from_ffmpeg and self.faults.s3_get_cut() else None
        if method != "PUT" or not _from_a_function(environ):
            return None
        if "/s3/aws4_request" not in environ.get("HTTP_AUTHORIZATION", ""):
            return None
        query = environ.get("QUERY_STRING", "")
        if "uploadId" in query or "HTTP_X_AMZ_COPY_SOURCE" in environ:
            return None
        return "slowdown" if self.faults.s3_put_fails() else None

    def client(self, service: str) -> Any:
        """A client of the stack; for S3, made as the functions make theirs (SigV4)."""
        config = S3_CONFIG if service == "s3" else None
        return boto3.client(service, region_name=self.stack.region, config=config)  # type: ignore[call-overload]

    # Resources from the template.

    def _create_resources(self) -> None:
        s3 = self.client("s3")
        for name in self.stack.buckets().values():
            s3.create_bucket(Bucket=name)
        for name, status in self.stack.bucket_versioning().items():
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
        sqs = self.client("sqs")
        for name in self.stack.queues().values():
            sqs.create_queue(QueueName=name)
        dynamodb = self.client("dynamodb")
        for table, arguments in self.stack.tables().items():
            dynamodb.create_table(TableName=table, **arguments)
        create_event_resources(self.stack, self.client("events"), self.client("logs"))
        self._create_keys_and_secrets()
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

    def _create_keys_and_secrets(self) -> None:
        """The template's KMS keys (by their aliases) and secrets, with generated values."""
        kms = self.client("kms")
        made: dict[str, str] = {}
        for alias, key_lid in self.stack.kms_aliases().items():
            if key_lid not in made:
                made[key_lid] = kms.create_key(Description=f"{self.stack.name} {key_lid}")[
                    "KeyMetadata"
                ]["KeyId"]
            kms.create_alias(AliasName=alias, TargetKeyId=made[key_lid])
        secrets_manager = self.client("secretsmanager")
        for name, spec in self.stack.secrets().items():
            secrets_manager.create_secret(Name=name, SecretString=generated_secret(spec))

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

    # Routing Lambda calls and S3 notifications to the local Lambda runtime.

    def _install_hooks(self) -> None:
        global _active_engine
        _active_engine = self
        _install_process_hooks()

    def answer_invoke(self, params: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
        """A Lambda ``Invoke`` response for the call ``params``, from the function's worker."""
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

    def invoke(
        self, function_name: str, event: Any, request_id: str | None = None
    ) -> tuple[Any, dict[str, Any] | None]:
        """Run a function's handler; returns (result, None) or (None, Lambda error payload)."""
        if self.lambdas is None:
            raise RuntimeError("the engine is not started")
        return self.lambdas.invoke(function_name, event, request_id)

    def deliver(
        self, function_name: str, event: Any, attempt: int = 1, request_id: str | None = None
    ) -> None:
        """Queue an asynchronous invocation; if the engine itself fails to make it, that
        is said on stderr, not kept in a future nobody reads."""
        if self._stopping.is_set():
            return
        self._events.submit(
            self.invoke_async, function_name, event, attempt, request_id
        ).add_done_callback(_report_undelivered)

    def invoke_async(
        self, function_name: str, event: Any, attempt: int = 1, request_id: str | None = None
    ) -> None:
        """An asynchronous invocation, as S3 makes one: Lambda retries a failure twice (or
        ``MaximumRetryAttempts``), a minute and then two apart, with the same request id,
        and then hands the event to the function's on-failure destination, if it has
        one, else drops it."""
        function = self.stack.find_function(function_name)
        if function is None or self._stopping.is_set():
            return
        request_id = request_id or str(uuid.uuid4())
        _, error = self.invoke(function.arn, event, request_id)
        if error is None:
            return
        self.async_failures.append(AsyncFailure(function.logical_id, attempt, error))
        if attempt <= function.async_retries:
            retry = threading.Timer(
                ASYNC_RETRY_DELAYS[min(attempt, len(ASYNC_RETRY_DELAYS)) - 1]
                * self.retry_delay_scale,
                self.deliver,
                args=(function.arn, event, attempt + 1, request_id),
            )
            retry.daemon = True
            retry.start()
            return
        if function.on_failure:
            queue = self.stack.queues()[function.on_failure]
            sqs = self.client("sqs")
            sqs.send_message(
                QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"],
                MessageBody=json.dumps(
                    _failure_record(function.arn, event, error, attempt, request_id)
                ),
            )


# The engine that answers this process's Lambda calls and S3 notifications. The hooks
# are process-wide (botocore handlers, moto internals), so they are installed once.
_active_engine: LocalEngine | None = None


@once
def _install_process_hooks() -> None:
    import moto.s3.notifications as s3_notifications
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    s3_notifications._invoke_awslambda = _on_s3_notification
    s3_notifications._get_s3_event = _with_version_id(s3_notifications._get_s3_event)
    s3_notifications.send_event = _without_multipart_put(s3_notifications.send_event)
    retrier_decl.time = types.SimpleNamespace(sleep=_retry_sleep)  # type: ignore[assignment,attr-defined]
    hooks = [
        ("before-parameter-build.lambda.Invoke", _remember_invoke),
        ("before-call.lambda.Invoke", _answer_invoke),
    ]
    botocore.handlers.BUILTIN_HANDLERS.extend(hooks)
    if boto3.DEFAULT_SESSION is not None:
        for event, hook in hooks:
            boto3.DEFAULT_SESSION._session.register(event, hook)  # type: ignore[arg-type]


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
        engine.deliver(fn_arn, event_body)


def _report_undelivered(future: Future[None]) -> None:
    error = None if future.cancelled() else future.exception()
    if error is not None:
        log.error("an asynchronous invocation was lost by the engine: %r", error)


# Lambda's waits before the retries of a failed asynchronous invocation.
ASYNC_RETRY_DELAYS = (60.0, 120.0)


def _failure_record(
    arn: str, event: Any, error: dict[str, Any] | None, attempts: int, request_id: str
) -> dict[str, Any]:
    """What Lambda sends an on-failure destination once every attempt failed."""
    return {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {k: v for k, v in (error or {}).items() if k != "stackTrace"},
    }


# S3's event sequencers: hexadecimal, rising with each PUT (one per event made).
_SEQUENCERS = itertools.count(1)


def _with_version_id(make_event: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """S3 names the new object's ``versionId`` in its event when the bucket keeps versions,
    and a ``sequencer`` that orders the events of one key (the same in each delivery of
    one event); moto's event leaves both out."""

    def event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        body = make_event(event_name, bucket, key, notification_id)
        sequencer = f"{next(_SEQUENCERS):018X}"
        for record in body["Records"]:
            record["s3"]["object"]["sequencer"] = sequencer
            if getattr(bucket, "is_versioned", False) and key.version_id not in (None, "null"):
                record["s3"]["object"]["versionId"] = key.version_id
        return body

    return event


def _without_multipart_put(send_event: Callable[..., None]) -> Callable[..., None]:
    """S3 announces a completed multipart upload once, ``ObjectCreated:CompleteMultipartUpload``;
    moto 5.2.5 announces it twice, an ``ObjectCreated:Put`` first (its completion stores the
    object with ``put_object``), each with a sequencer of its own here. Without versions
    StartJob takes a second sequencer for a second upload of the same bytes: ``aws s3 cp``
    of a file past 8 MB started two jobs and published two assets."""

    def send(account_id: str, event_name: str, bucket: Any, key: Any) -> None:
        if event_name.endswith(":Put") and getattr(key, "multipart", None) is not None:
            return
        send_event(account_id, event_name, bucket, key)

    return send


def _send_logs(logs: Any, group: str, lines: list[LogLine]) -> None:
    """Put the functions' log lines in their log group, a stream per function, as Lambda
    does (CloudWatch takes no empty message). A stream is made when a put finds none:
    moto builds its error for a stream that already exists through xmltodict, and making
    it before every batch cost 0.3 s of the stack's CPU in the VOD bench's run."""
    by_function: dict[str, list[dict[str, Any]]] = {}
    for name, at, message in lines:
        if message:
            by_function.setdefault(name, []).append({"timestamp": at, "message": message})
    for name, events in by_function.items():
        stream = f"local/[$LATEST]{name}"
        try:
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except logs.exceptions.ResourceNotFoundException:
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def generated_secret(spec: dict[str, Any]) -> str:
    """A value as ``GenerateSecretString`` would make it: ``PasswordLength`` characters,
    letters and digits where ``ExcludePunctuation`` is set."""
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += string.punctuation
    return "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))


def _retry_sleep(seconds: float) -> None:
    """The interpreter's back-off between retries, scaled for tests (never in production)."""
    scale = _active_engine.retry_delay_scale if _active_engine is not None else 1.0
    time.sleep(seconds * scale)


def _lambda_workers() -> int:
    """``VIDFLOW_LAMBDA_WORKERS``: execution environments per function, 8 unset."""
    raw = os.environ.get("VIDFLOW_LAMBDA_WORKERS") or "8"
    workers = int(raw) if raw.strip().isdigit() else 0
    if workers < 1:
        # (0 made every invocation wait for an environment for good)
        raise ConfigurationError(
            f"VIDFLOW_LAMBDA_WORKERS must be a whole number of 1 or more, got {raw!r}"
        )
    return workers
