"""Records one function writes and another reads, whichever versions the two run.

CloudFormation updates a stack's functions one by one, so for a while a newer function's
record (a Probe's facts, a chunk's result, a stream's settings) is read by an older
function, and a rollback runs older code over newer records for good. A reader takes the
fields it knows and leaves the rest, as a field a newer writer adds is always optional
to its readers (it has a default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any


def known_fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The items of ``data`` that are fields of the dataclass ``cls``."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}
