"""A module's log read through a logger of the test's own."""

from __future__ import annotations

import logging
from types import ModuleType

import pytest


class _Keep(logging.Handler):
    def __init__(self, kept: list[logging.LogRecord]) -> None:
        super().__init__()
        self.kept = kept

    def emit(self, record: logging.LogRecord) -> None:
        self.kept.append(record)


def own_log(
    monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str
) -> list[logging.LogRecord]:
    """Set ``module.log`` to a logger of the test's own (``test.<name>``) and return the
    list its records go to: other tests' logging configuration (Powertools', from a
    handler imported earlier in the same process) can disable the module's logger, or
    keep its records from the root and so from caplog."""
    kept: list[logging.LogRecord] = []
    logger = logging.getLogger(f"test.{name}")
    logger.propagate, logger.handlers, logger.disabled = False, [], False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(_Keep(kept))
    monkeypatch.setattr(module, "log", logger)
    return kept
