"""Tables the template declares, made in a unit test's mocked account under a name of
their own.

The unit tests run last, in the process whose session stack still runs: its schedules
(LiveSweep each minute) act on moto's backends by the template's table names, and
``mock_aws`` shares those backends. A unit test's table named as the stack names it
could be swept mid-test; the prefix keeps the two apart."""

from __future__ import annotations

from typing import Any

from workflow.local.template import Stack


def create_table(client: Any, stack: Stack, logical_id: str) -> str:
    """Create the template's ``logical_id`` table with ``client`` and say its name."""
    declared = stack.ref(logical_id)
    name = f"unit-{declared}"
    client.create_table(TableName=name, **stack.tables()[declared])
    return name
