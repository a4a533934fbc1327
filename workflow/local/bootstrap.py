"""The runtime inside one local Lambda worker: what ``/var/runtime/bootstrap`` is on AWS.

Standard library only: it runs on the function's interpreter with nothing on its path but
the function's code, its layers and the runtime folder (boto3), and is copied into that
folder. It imports the handler once (the init phase), then serves one invocation at a time
over two pipes from the engine: a JSON request line in, a JSON response line out. Errors
are reported as the Python runtime on Lambda reports them.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


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


def _introspection() -> dict[str, Any]:
    """What this process imports from: for the engine's own checks, never for handlers."""
    modules = {
        name: module.__file__
        for name, module in list(sys.modules.items())
        if getattr(module, "__file__", None)
    }
    # The interpreter's own library folder: the standard library and its extensions.
    return {"path": sys.path, "modules": modules, "stdlib": os.path.join(sys.base_prefix, "lib")}


def serve() -> int:
    read_fd, write_fd = (int(fd) for fd in os.environ.pop("_VIDFLOW_RUNTIME_FDS").split(","))
    # Lambda's order: the task root, the layers, the runtime; the standard library last.
    sys.path[:0] = json.loads(os.environ.pop("_VIDFLOW_RUNTIME_PATH"))
    requests = os.fdopen(read_fd, "rb")
    responses = os.fdopen(write_fd, "wb")

    def answer(message: dict[str, Any]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        responses.write(json.dumps(message).encode() + b"\n")
        responses.flush()

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
    return 0


if __name__ == "__main__":
    sys.exit(serve())
