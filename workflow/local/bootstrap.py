"""The runtime inside one local Lambda worker: what ``/var/runtime/bootstrap`` is on AWS.

Standard library only: it runs on the function's interpreter with nothing on its path but
the function's code, its layers and the runtime folder (boto3), and is copied into that
folder. It imports the handler once (the init phase), then serves one invocation at a time
over two pipes from the engine: a JSON request line in, a JSON response line out. Errors
are reported as the Python runtime on Lambda reports them.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import os
import select
import shutil
import signal
import sys
import threading
import time
import traceback
from typing import Any, NoReturn


class Context:
    """The Lambda context object, with what awslambdaric gives a handler."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.invoked_function_arn = os.environ["_VIDFLOW_FUNCTION_ARN"]
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(error_type: str, message: str, trace: list[str]) -> dict[str, Any]:
    """Lambda's error payload, also logged the way the Python runtime logs it."""
    print(f"[ERROR] {error_type}: {message}", file=sys.stderr)
    if trace:
        print("Traceback (most recent call last):\n" + "".join(trace).rstrip(), file=sys.stderr)
    return {"errorType": error_type, "errorMessage": message, "stackTrace": trace}


def _trace(exc: BaseException) -> list[str]:
    return traceback.format_list(traceback.extract_tb(exc.__traceback__))


def load_handler(spec: str) -> tuple[Any, dict[str, Any] | None]:
    """The handler ``module.function``, or the init error Lambda would report."""
    module_name, _, attribute = spec.rpartition(".")
    if not module_name:
        return None, _error("Runtime.MalformedHandlerName", f"Bad handler '{spec}'", [])
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        message = f"Unable to import module '{module_name}': {exc}"
        return None, _error("Runtime.ImportModuleError", message, _trace(exc))
    except SyntaxError as exc:
        message = f"Syntax error in module '{module_name}': {exc}"
        return None, _error("Runtime.UserCodeSyntaxError", message, _trace(exc))
    except Exception as exc:
        return None, _error(type(exc).__name__, str(exc), _trace(exc))
    handler = getattr(module, attribute, None)
    if handler is None:
        message = f"Handler '{attribute}' missing on module '{module_name}'"
        return None, _error("Runtime.HandlerNotFound", message, [])
    return handler, None


# The function's role, held to its AWS calls as IAM holds it on AWS: moto grants every
# call, so a step that makes one its role lacks would pass locally and fail on AWS with
# AccessDenied. Statements: the role's inline ones and SAM's StepFunctionsExecutionPolicy,
# resolved by the engine. Every service is held: S3, DynamoDB, Step Functions, EventBridge,
# KMS and Secrets Manager by the resource each call names, any other by its action alone.
Need = tuple[str, str, "str | None"]  # action, resource ARN, the s3:prefix it lists
ANY = "*"  # a call whose resource is not modelled: held to its action alone


def allowed(
    statements: list[dict[str, Any]], action: str, resource: str, prefix: str | None
) -> bool:
    """Whether an Allow statement grants ``action`` on ``resource`` (an ``s3:prefix``
    condition counts only for a listing that names a prefix it matches)."""
    for statement in statements:
        if not any(fnmatch.fnmatchcase(action, a) for a in statement["Action"]):
            continue
        if resource != ANY and not any(
            fnmatch.fnmatchcase(resource, r) for r in statement["Resource"]
        ):
            continue
        prefixes = statement["Condition"].get("StringLike", {}).get("s3:prefix")
        if prefixes is not None and (
            prefix is None or not any(fnmatch.fnmatchcase(prefix, p) for p in prefixes)
        ):
            continue
        return True
    return False


def _s3_needs(operation: str, params: dict[str, Any]) -> list[Need]:
    bucket = f"arn:aws:s3:::{params.get('Bucket')}"
    key = f"{bucket}/{params.get('Key')}"
    version = "Version" if params.get("VersionId") else ""
    if operation in ("GetObject", "HeadObject"):
        return [(f"s3:GetObject{version}", key, None)]
    if operation in ("PutObject", "CreateMultipartUpload", "UploadPart",
                     "CompleteMultipartUpload"):  # fmt: skip
        return [("s3:PutObject", key, None)]
    if operation == "AbortMultipartUpload":
        return [("s3:AbortMultipartUpload", key, None)]
    if operation == "DeleteObject":
        return [(f"s3:DeleteObject{version}", key, None)]
    if operation == "DeleteObjects":
        return [
            ("s3:DeleteObject", f"{bucket}/{o['Key']}", None) for o in params["Delete"]["Objects"]
        ]
    if operation == "CopyObject":
        source = params["CopySource"]
        if isinstance(source, str):
            source_bucket, _, source_key = source.lstrip("/").partition("/")
            source = {"Bucket": source_bucket, "Key": source_key.split("?")[0]}
        return [
            ("s3:PutObject", key, None),
            ("s3:GetObject", f"arn:aws:s3:::{source['Bucket']}/{source['Key']}", None),
        ]
    if operation in ("ListObjectsV2", "ListObjects"):
        return [("s3:ListBucket", bucket, params.get("Prefix", ""))]
    if operation == "ListObjectVersions":
        return [("s3:ListBucketVersions", bucket, params.get("Prefix", ""))]
    return [(f"s3:{operation}", bucket, None)]


def _dynamodb_needs(
    operation: str, params: dict[str, Any], region: str, account: str
) -> list[Need]:
    def table(name: str, index: str | None = None) -> str:
        arn = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        return f"{arn}/index/{index}" if index else arn

    if operation in ("BatchGetItem", "BatchWriteItem"):
        item_action = "GetItem" if operation == "BatchGetItem" else "WriteItem"
        return [
            (f"dynamodb:Batch{item_action}", table(name), None) for name in params["RequestItems"]
        ]
    if operation == "TransactWriteItems":
        return [
            (f"dynamodb:{kind}Item" if kind != "ConditionCheck" else "dynamodb:ConditionCheckItem",
             table(body["TableName"]), None)
            for item in params["TransactItems"]
            for kind, body in item.items()
        ]  # fmt: skip
    return [(f"dynamodb:{operation}", table(params["TableName"], params.get("IndexName")), None)]


def _events_needs(operation: str, params: dict[str, Any], region: str, account: str) -> list[Need]:
    if operation != "PutEvents":
        return [(f"events:{operation}", ANY, None)]
    buses = []
    for entry in params["Entries"]:
        bus = entry.get("EventBusName") or "default"  # a name or an ARN
        arn = (
            bus if bus.startswith("arn:") else f"arn:aws:events:{region}:{account}:event-bus/{bus}"
        )
        if arn not in buses:
            buses.append(arn)
    return [("events:PutEvents", arn, None) for arn in buses]


def kms_key(key_id: str, keys: dict[str, str]) -> str:
    """The ARN IAM holds a KMS call to: an alias (by name or ARN) stands for the key it
    names (``keys``: alias name -> key ARN), as IAM resolves it; a key ARN stands for
    itself."""
    alias = key_id[key_id.index("alias/") :] if "alias/" in key_id else None
    if alias is not None and alias in keys:
        return keys[alias]
    return key_id


NAMED_BY_CIPHERTEXT = ("Decrypt",)  # KMS calls that name no key: the ciphertext does


def _kms_needs(operation: str, params: dict[str, Any], keys: dict[str, str]) -> list[Need]:
    key_id = params.get("KeyId")
    if key_id is None and operation in NAMED_BY_CIPHERTEXT:
        return []  # the key the ciphertext names: hold_to_role asks KMS which, after
    if key_id is None:
        return [(f"kms:{operation}", ANY, None)]  # ListKeys, GenerateRandom, ...
    return [(f"kms:{operation}", kms_key(str(key_id), keys), None)]


def needs(
    service: str,
    operation: str,
    params: dict[str, Any],
    region: str,
    account: str,
    kms_keys: dict[str, str] | None = None,
) -> list[Need]:
    """The IAM actions, resources (and listed prefix) one call needs; ``ANY`` for an
    action whose resource is not modelled here (any statement granting it will do)."""
    if service == "s3":
        return _s3_needs(operation, params)
    if service == "dynamodb":
        return _dynamodb_needs(operation, params, region, account)
    if service == "stepfunctions":
        for field in ("executionArn", "stateMachineArn", "mapRunArn"):
            if field in params:
                return [(f"states:{operation}", str(params[field]), None)]
        return [(f"states:{operation}", ANY, None)]
    if service == "events":
        return _events_needs(operation, params, region, account)
    if service == "kms":
        return _kms_needs(operation, params, kms_keys or {})
    if service == "secretsmanager" and "SecretId" in params:
        return [(f"secretsmanager:{operation}", str(params["SecretId"]), None)]
    return [(f"{service}:{operation}", ANY, None)]


def _denied(operation: str, message: str, *, head: bool = False) -> Exception:
    from botocore.exceptions import ClientError  # the runtime's boto3, as the handler's

    # (botocore reads the headers of a refusal: its S3 region lookup after a bare 400)
    status: Any = {"HTTPStatusCode": 403, "HTTPHeaders": {}}
    error: Any = (
        {"Code": "403", "Message": "Forbidden"}
        if head
        else {"Code": "AccessDenied", "Message": message}
    )
    return ClientError({"Error": error, "ResponseMetadata": status}, operation)


def missing_denied(
    statements: list[dict[str, Any]], operation: str, bucket: str, exc: Exception
) -> Exception | None:
    """What S3 answers an S3 ``operation`` on ``bucket`` that failed with ``exc``, where
    that was a read of a missing key: 403, not 404, to a role that may not list the
    whole bucket (a ListBucket held to prefixes does not count). None where S3 answers
    ``exc`` itself."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    if (
        operation in ("GetObject", "HeadObject")
        and code in ("NoSuchKey", "404")
        and not allowed(statements, "s3:ListBucket", f"arn:aws:s3:::{bucket}", None)
    ):
        return _denied(operation, "Access Denied", head=operation == "HeadObject")
    return None


HEAD_PARAMS = ("Bucket", "Key", "VersionId")  # what a presigned GET's HEAD names


def where(function_arn: str) -> tuple[str, str, str]:
    """A function's region, account and the role session its calls are made as."""
    _, _, _, region, account, _, name = function_arn.split(":", 6)
    return region, account, f"arn:aws:sts::{account}:assumed-role/{name}-role/{name}"


def hold_to_role(
    statements: list[dict[str, Any]],
    region: str,
    account: str,
    role: str,
    kms_keys: dict[str, str] | None = None,
) -> None:
    """Make every AWS call of this process, and every URL it presigns, pass its role's
    statements first, and a read of a missing S3 key answer 403, as S3 answers a role that
    may not list the bucket without a prefix condition. ``kms_keys``: alias name -> the
    key ARN it names."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    make_call = BaseClient._make_api_call  # type: ignore[attr-defined]
    keys = dict(kms_keys or {})

    def check(operation: str, held: list[Need], how: str = "") -> None:
        for action, resource, prefix in held:
            if not allowed(statements, action, resource, prefix):
                raise _denied(
                    operation,
                    f"User: {role} is not authorized to perform: {action} on resource: "
                    f"{resource}{f' (prefix {prefix})' if prefix is not None else ''}{how} "
                    f"because no identity-based policy allows the {action} action",
                )

    def key_of(client: Any, key_arn: str) -> str:
        """The stack's key ARN for the KMS key ``key_arn`` (an id or ARN; one of its
        aliases names it)."""
        try:
            aliases = make_call(client, "ListAliases", {"KeyId": key_arn})["Aliases"]
        except ClientError:
            return key_arn  # no such key: the call itself answers so
        for alias in aliases:
            if alias["AliasName"] in keys:
                return keys[alias["AliasName"]]
        return key_arn

    def checked(client: Any, operation: str, params: dict[str, Any]) -> Any:
        service = client.meta.service_model.service_name
        held = needs(service, operation, params, region, account, keys)
        if service == "kms" and "alias/" not in str(params.get("KeyId", "alias/")):
            # A key named by its id or ARN: held as the stack's key its aliases name.
            held = [(f"kms:{operation}", key_of(client, str(params["KeyId"])), None)]
        check(operation, held)
        if service == "kms" and operation in NAMED_BY_CIPHERTEXT and "KeyId" not in params:
            # Decrypt names no key: IAM holds it to the key the ciphertext was made under.
            answer = make_call(client, operation, params)
            check(operation, [(f"kms:{operation}", key_of(client, answer["KeyId"]), None)])
            return answer
        try:
            answer = make_call(client, operation, params)
        except ClientError as exc:
            if service == "s3":
                denied = missing_denied(statements, operation, params["Bucket"], exc)
                if denied is not None:
                    raise denied from None
            raise
        if service == "s3" and operation == "GetObject":
            try:
                check_decrypt(operation, answer)
            except ClientError:
                answer["Body"].close()
                raise
        return answer

    kms_clients: list[Any] = []

    def check_decrypt(operation: str, described: dict[str, Any], how: str = "") -> None:
        """S3 decrypts an SSE-KMS object for a GET (not a HEAD) with the role's own
        kms:Decrypt on its key: held as IAM holds it. S3's own key (aws/s3, an upload's
        aws:kms without a key) lets anyone in the account read through S3."""
        key_id = described.get("SSEKMSKeyId")
        encryption = str(described.get("ServerSideEncryption"))
        if not encryption.startswith("aws:kms") or not key_id:  # (aws:kms, aws:kms:dsse)
            return
        if not kms_clients:
            import boto3  # the runtime's, as the handler's

            kms_clients.append(boto3.client("kms", region_name=region))
        kms = kms_clients[0]
        try:
            found = make_call(kms, "DescribeKey", {"KeyId": key_id})["KeyMetadata"]
        except ClientError:
            found = {"Arn": key_id, "KeyManager": "CUSTOMER"}  # (S3 would refuse it too)
        if found.get("KeyManager") == "AWS" or str(key_id).endswith("alias/aws/s3"):
            return
        check(operation, [("kms:Decrypt", key_of(kms, found["Arn"]), None)], how)

    BaseClient._make_api_call = checked  # type: ignore[attr-defined]

    # A presigned URL (ffmpeg reads sources through them) is signed by the role: on AWS
    # the GET it makes is held to the role as the call would be, and answers 403 where the
    # role lacks it. moto checks no signature, so the URL is held here, when it is made.
    import botocore.signers

    presign = botocore.signers.generate_presigned_url

    def presign_checked(client: Any, ClientMethod: str, Params: Any = None, **kw: Any) -> Any:
        operation = client._PY_TO_OP_NAME.get(ClientMethod)
        if operation is not None:
            service = client.meta.service_model.service_name
            wanted = needs(service, operation, dict(Params or {}), region, account, keys)
            how = " (a presigned URL: on AWS its reader gets 403 Forbidden)"
            check(operation, wanted, how)
            if service == "s3" and operation == "GetObject":
                # (its reader's GET would be refused by KMS: a HEAD says which key)
                try:
                    head = {k: v for k, v in dict(Params or {}).items() if k in HEAD_PARAMS}
                    described = make_call(client, "HeadObject", head)
                except ClientError:
                    described = {}  # (the reader's GET answers what is not there itself)
                check_decrypt(operation, described, how)
        return presign(client, ClientMethod, Params, **kw)

    # Set on each client class as it is made (botocore.signers.add_generate_presigned_url).
    botocore.signers.generate_presigned_url = presign_checked  # type: ignore[assignment]


def _introspection() -> dict[str, Any]:
    """What this process imports from: for the engine's own checks, never for handlers."""
    modules = {
        name: module.__file__
        for name, module in list(sys.modules.items())
        if getattr(module, "__file__", None)
    }
    # The interpreter's own library folder: the standard library and its extensions.
    return {"path": sys.path, "modules": modules, "stdlib": os.path.join(sys.base_prefix, "lib")}


def _end_with_the_engine(read_fd: int, tmp: str | None) -> None:
    """Wait for the engine to be gone, then end this environment as its stop would have.

    The engine holds the only write end of the request pipe, so the pipe hangs up when
    it exits; one killed (SIGKILL, a second Ctrl-C once) stops nothing itself, and this
    worker, in a session of its own, went on: retrying a stack that was no more for up to
    a minute, its ffmpeg encoding, its /tmp left for good. Its processes are killed, its
    /tmp removed, and it exits.
    """
    hangup = select.poll()
    hangup.register(read_fd, 0)  # POLLHUP alone: a request waiting is not an end
    while not hangup.poll():
        pass
    _end(tmp)


def _end(tmp: str | None) -> NoReturn:
    """Kill every process this worker started, remove its /tmp, exit.

    The handler's thread runs on meanwhile, its ffmpeg just killed under it: its cleanup
    or its next step may write a file or start a process while the folder is removed
    (which then fails, "directory not empty", and the folder would stay for good). So
    both are done again until the folder is gone, for up to 5 s."""
    for _ in range(100):
        _kill_children()
        if not tmp:
            break
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.lexists(tmp):
            break
        time.sleep(0.05)
    os._exit(1)


def _kill_children() -> None:
    """SIGKILL every process under this one."""
    tree, pending = [], [os.getpid()]
    while pending:  # all of it first: a child killed leaves its own to init
        pid = pending.pop()
        for task in _listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as listing:
                    children = [int(child) for child in listing.read().split()]
            except OSError:
                continue
            tree += children
            pending += children
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def serve() -> int:
    read_fd, write_fd = (int(fd) for fd in os.environ.pop("_VIDFLOW_RUNTIME_FDS").split(","))
    tmp = os.environ.get("TMPDIR")
    if tmp:
        # Before anything asks tempfile for its folder (it would settle on /tmp instead).
        os.makedirs(tmp, mode=0o700, exist_ok=True)
    threading.Thread(target=_end_with_the_engine, args=(read_fd, tmp), daemon=True).start()
    # Lambda's order: the task root, the layers, the runtime; the standard library last.
    sys.path[:0] = json.loads(os.environ.pop("_VIDFLOW_RUNTIME_PATH"))
    requests = os.fdopen(read_fd, "rb")
    responses = os.fdopen(write_fd, "wb")

    def answer(message: dict[str, Any]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        responses.write(json.dumps(message).encode() + b"\n")
        responses.flush()

    policy = os.environ.pop("_VIDFLOW_POLICY", None)
    if policy is not None:
        keys = json.loads(os.environ.pop("_VIDFLOW_KMS_KEYS", "{}"))
        hold_to_role(json.loads(policy), *where(os.environ["_VIDFLOW_FUNCTION_ARN"]), keys)
    began = time.monotonic()
    handler, init_error = load_handler(os.environ["_HANDLER"])
    answer({"init_ms": round((time.monotonic() - began) * 1000, 1), "error": init_error})
    if init_error is not None:
        return 1
    for line in requests:
        request = json.loads(line)
        if request.get("introspect"):
            answer({"result": json.dumps(_introspection())})
            continue
        context = Context(request["request_id"], request["deadline_ms"])
        # Lambda's runtime gives each invocation its trace header this way.
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace_id", "")
        began = time.monotonic()
        try:
            result = handler(request["event"], context)
        except Exception as exc:
            answer({"error": _error(type(exc).__name__, str(exc), _trace(exc))})
            continue
        handler_ms = round((time.monotonic() - began) * 1000, 3)
        try:
            answer({"result": json.dumps(result), "handler_ms": handler_ms})
        except (TypeError, ValueError) as exc:
            answer(
                {"error": _error("Runtime.MarshalError", f"Unable to marshal response: {exc}", [])}
            )
    # The requests ended: the engine is gone (its stop kills this process instead).
    _end(tmp)


if __name__ == "__main__":
    sys.exit(serve())
