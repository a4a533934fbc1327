"""What one VOD job is billed for, read from the template and the state machine it defines.

Nothing here names a function, a state or a memory size: they come from the VOD state
machine's definition (the template's ``VodStateMachineArn`` output, its ``DefinitionUri``
with the ``DefinitionSubstitutions`` filled in) and the functions its tasks call.

How each count is made, for a job in which every state succeeds at its first attempt
(retries are billed too, but a job's records do not say how many there were):

- State transitions (Standard workflows bill one each time a state runs): the states
  from ``StartAt`` following each ``Next`` to the end, never a ``Catch``. For the Map
  on that path, per work item: one transition for starting its child execution (a
  Distributed Map bills one per child it starts) plus the states the child runs: the
  ``Choice`` and the branch the item's kind selects (the ``Default`` for a kind it does
  not name). A ``Choice`` on anything else takes its ``Default``: a fixed ladder's
  path, without a per-title analysis.
- Lambda requests: the functions whose S3 events start the machine (their environment
  holds its ARN), plus every Lambda task on those paths.
- Lambda compute: each work item's measured wall time at the memory of the function its
  branch calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from workflow import prices
from workflow.local.template import Stack, TemplateError

_LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
# The field of a work item its Map child's Choice branches on.
_KIND = "$.item.kind"


@dataclass(frozen=True)
class Branch:
    """What one work item of a kind runs: its Map child execution."""

    transitions: int
    requests: int
    memory_mb: int


@dataclass(frozen=True)
class VodBilling:
    """The billable shape of one VOD job: what runs once, and what runs per work item."""

    # The Map state on the path: where a job's work items run.
    map_state: str
    transitions: int
    requests: int
    # Memory (MB) of the function each Lambda task state on the top-level path calls.
    task_memory: dict[str, int]
    branches: dict[str, Branch]
    default: Branch

    @classmethod
    def from_stack(cls, stack: Stack) -> VodBilling:
        """Read from the template resolved for ``stack``."""
        arn = stack.outputs()["VodStateMachineArn"]
        machine = next((m for m in stack.state_machines() if m.arn == arn), None)
        if machine is None:
            raise TemplateError(f"no state machine in the template has the ARN {arn}")
        definition = json.loads(machine.definition)
        path = _path(definition, None)
        maps = [(name, state) for name, state in path if state["Type"] == "Map"]
        if len(maps) != 1:
            raise TemplateError(f"{machine.name}: expected one Map on its path, found {len(maps)}")
        map_state, map_definition = maps[0]
        processor = map_definition.get("ItemProcessor") or map_definition["Iterator"]
        distributed = processor.get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"

        def branch(kind: str | None) -> Branch:
            states = [state for _, state in _path(processor, kind)]
            memory = [_memory(stack, state) for state in states if _function(state)]
            return Branch(int(distributed) + len(states), len(memory), max(memory, default=0))

        starters = [f for f in stack.functions() if f.triggers and arn in f.environment.values()]
        tasks = {name: _memory(stack, state) for name, state in path if _function(state)}
        return cls(
            map_state=map_state,
            transitions=len(path),
            requests=len(starters) + len(tasks),
            task_memory=tasks,
            branches={kind: branch(kind) for kind in _kinds(processor)},
            default=branch(None),
        )

    def branch(self, item: str) -> Branch:
        """The branch of a work item, by its result's name: ``video-00003``, ``audio``,
        ``subtitles-en`` (the kind, then an optional ``-`` and what tells items apart)."""
        return self.branches.get(item.partition("-")[0], self.default)

    def state_transitions(self, items: Iterable[str]) -> int:
        return self.transitions + sum(self.branch(item).transitions for item in items)

    def lambda_requests(self, items: Iterable[str]) -> int:
        return self.requests + sum(self.branch(item).requests for item in items)

    def gb_seconds(self, seconds: Mapping[str, float]) -> float:
        """GB-seconds of the work items, from each one's wall seconds."""
        return sum(s * self.branch(item).memory_mb / 1024 for item, s in seconds.items())

    def estimate(self, seconds: Mapping[str, float]) -> dict[str, float]:
        """Dollars for a job whose work items took these wall seconds, by result name."""
        dollars = {
            "lambda_compute": self.gb_seconds(seconds) * prices.LAMBDA_GB_SECOND.usd,
            "lambda_requests": self.lambda_requests(seconds) * prices.LAMBDA_REQUEST.usd,
            "state_transitions": self.state_transitions(seconds) * prices.STANDARD_TRANSITION.usd,
        }
        return {
            **{k: round(v, 6) for k, v in dollars.items()},
            "total": round(sum(dollars.values()), 6),
        }


def _path(machine: dict[str, Any], kind: str | None) -> list[tuple[str, dict[str, Any]]]:
    """The states an execution runs when each succeeds first time; a ``Choice`` on the
    item's kind takes the rule for ``kind`` (its ``Default`` for None or no rule)."""
    states: dict[str, dict[str, Any]] = machine["States"]
    ran: list[tuple[str, dict[str, Any]]] = []
    name: str | None = machine["StartAt"]
    while name is not None:
        if len(ran) > len(states):
            raise TemplateError(f"the path through {name} loops")
        state = states[name]
        ran.append((name, state))
        if state["Type"] == "Choice" and not any(
            r.get("Variable") == _KIND for r in state["Choices"]
        ):
            # Not on the item's kind (the per-title analysis): the plain path.
            name = state.get("Default")
        elif state["Type"] == "Choice":
            rule = next((r for r in state["Choices"] if _rule_kind(r) == kind), None)
            name = rule["Next"] if rule else state.get("Default")
        else:
            name = state.get("Next")
    return ran


def _rule_kind(rule: dict[str, Any]) -> str:
    """The item kind a Choice rule selects."""
    if set(rule) != {"Variable", "StringEquals", "Next"} or rule["Variable"] != _KIND:
        raise TemplateError(f"cost estimates read Choice rules on {_KIND} only, not {rule}")
    return str(rule["StringEquals"])


def _kinds(processor: dict[str, Any]) -> list[str]:
    """The item kinds a Map child's Choices name."""
    return [
        _rule_kind(rule)
        for state in processor["States"].values()
        if state["Type"] == "Choice"
        for rule in state["Choices"]
    ]


def _function(state: dict[str, Any]) -> str | None:
    """The Lambda function a Task state calls, if it calls one."""
    if state["Type"] != "Task":
        return None
    resource = str(state["Resource"])
    if resource.startswith(_LAMBDA_INVOKE):
        return str(state["Parameters"]["FunctionName"])
    return resource if resource.startswith("arn:aws:lambda:") else None


def _memory(stack: Stack, state: dict[str, Any]) -> int:
    name = _function(state) or ""
    function = stack.find_function(name)
    if function is None:
        raise TemplateError(f"a task calls {name}, which is not a function of the template")
    return function.memory
