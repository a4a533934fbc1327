"""Failure records: the error name and cause a failed execution or segment leaves behind."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from workflow.runtime import Clients


def describe_error(error: dict[str, Any]) -> tuple[str, str]:
    """The error name and one-line cause from a ``Catch`` result (``Error``, ``Cause``)."""
    name = str(error.get("Error") or "States.Unknown")
    cause = str(error.get("Cause") or "")
    try:
        parsed = json.loads(cause)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        cause = str(parsed.get("errorMessage") or parsed.get("Cause") or cause)
    line = " ".join(cause.split())
    return name, line[:500] or name


@dataclass(frozen=True)
class FailureRecord:
    """What a failed job (``failures/<job>.json``) or live segment
    (``failures/live/<stream>/<sequence>.json``) leaves: who failed, the error's name
    and cause, the input it failed on, and when."""

    subject: dict[str, Any]
    error: str
    cause: str
    input: Any
    failed_at: str

    _FIELDS: ClassVar[tuple[str, ...]] = ("error", "cause", "input", "failed_at")

    @classmethod
    def of(
        cls, subject: dict[str, Any], caught: dict[str, Any], input: Any, clients: Clients
    ) -> FailureRecord:
        """The record of a ``Catch`` result (``Error``, ``Cause``), timed by the clock."""
        name, cause = describe_error(caught)
        return cls(subject, name, cause, input, clients.utc_now())

    def to_dict(self) -> dict[str, Any]:
        return {**self.subject, **{f: getattr(self, f) for f in self._FIELDS}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailureRecord:
        subject = {k: v for k, v in data.items() if k not in cls._FIELDS}
        return cls(subject, *(data[f] for f in cls._FIELDS))
