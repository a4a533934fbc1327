"""moto's Step Functions interpreter, imported without moto's Batch and EC2 models.

moto 5.2.5's ASL interpreter imports ``moto.batch.utils`` for one enum (``JobStatus``, for
its Batch service integration). Importing it first runs the ``moto.batch`` package, whose
``__init__`` imports Batch's models and, through them, all of EC2's: 0.5 s of every engine
start (1.8 s -> 1.2 s measured), spent by the server while the engine waits to create its
first state machine. No template here calls Batch.

``install`` imports the interpreter once with a bare ``moto.batch`` package standing in
(its ``__init__`` not run), so only ``moto.batch.utils`` loads, and then takes the stand-in
away: anything that later imports ``moto.batch`` gets the real package. Like the S3
patches, it first checks that moto and the interpreter's Batch module are the ones it was
written for, and the engine refuses to start on others.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from importlib.abc import SourceLoader

from workflow.local.moto_pins import MotoChangedError, check_pinned

INTERPRETER = "moto.stepfunctions.parser.models"
BATCH_INTEGRATION = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch"
)
# sha256 (first 16 hex digits) of the source of the module that imports moto.batch.
EXPECTED_SOURCES = {"state_task_service_batch": "25ba79fe0294f0ef"}

_lock = threading.Lock()


def check() -> None:
    """Raise ``MotoChangedError`` unless moto and its Batch integration are the ones read."""
    spec = importlib.util.find_spec(BATCH_INTEGRATION)
    loader = spec.loader if spec else None
    source = loader.get_source(BATCH_INTEGRATION) if isinstance(loader, SourceLoader) else None
    if source is None:
        raise MotoChangedError(f"moto has no {BATCH_INTEGRATION} (asl_import.py)")
    check_pinned(
        "the interpreter's import (workflow/local/asl_import.py)",
        {"state_task_service_batch": source},
        EXPECTED_SOURCES,
    )


def install() -> None:
    """Import moto's ASL interpreter (once per process) without Batch's and EC2's models."""
    with _lock:
        if INTERPRETER in sys.modules or "moto.batch" in sys.modules:
            return
        check()
        spec = importlib.util.find_spec("moto.batch")
        if spec is None:
            raise MotoChangedError("moto has no moto.batch (asl_import.py)")
        sys.modules["moto.batch"] = importlib.util.module_from_spec(spec)
        try:
            importlib.import_module(INTERPRETER)
        finally:
            del sys.modules["moto.batch"]
