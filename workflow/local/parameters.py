"""A stack's parameters, checked before anything starts: as CloudFormation checks them
(names, types, ``AllowedValues``, ``AllowedPattern``, ``MinValue``/``MaxValue``,
``MinLength``/``MaxLength``), then as Lambda checks the environments they resolve to (4 KB
each), then by the code every function runs at cold start
(``Settings.from_env``) on the environment the template gives it.

A value ``sam deploy`` would refuse never reaches a local stack, and one that would deploy
but leave the functions failing at cold start is named before a job waits on them.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from typing import TYPE_CHECKING, Any

from workflow.errors import ConfigurationError
from workflow.settings import Settings

if TYPE_CHECKING:
    from workflow.local.template import Stack


class ParameterError(Exception):
    """One or more parameters a deploy would refuse; ``problems`` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def check(stack: Stack) -> None:
    """Raise ``ParameterError`` naming every problem with the stack's parameters."""
    declared = stack.template.get("Parameters", {})
    problems = declared_problems(declared, stack.overrides)
    if not problems:
        problems = rule_problems(stack) + deploy_only_problems(stack)
    if not problems:
        problems = environment_problems(stack) + settings_problems(stack)
    if problems:
        raise ParameterError(problems)


def rule_problems(stack: Stack) -> list[str]:
    """The template's ``Rules`` assertions that fail, as CloudFormation checks them."""
    problems = []
    for rule in stack.template.get("Rules", {}).values():
        if "RuleCondition" in rule and not stack.evaluate(rule["RuleCondition"]):
            continue
        for assertion in rule.get("Assertions", []):
            if not stack.evaluate(assertion["Assert"]):
                problems.append(assertion.get("AssertDescription", "a template rule fails"))
    return problems


# What the template can create that a laptop cannot; asked for locally, the stack says so.
_DEPLOY_ONLY = {
    "AWS::CloudFront::Distribution": "a CloudFront distribution; locally the engine's own "
    "origin serves the output (leave PlaybackCdn at none)",
}


def deploy_only_problems(stack: Stack) -> list[str]:
    """The resources these parameters turn on that only deploy to AWS."""
    return [
        f"{lid} would be {what}"
        for kind, what in _DEPLOY_ONLY.items()
        for lid in stack.of_type(kind)
    ]


# Lambda's limit on a function's environment: its variables as one JSON object, in bytes
# (what CreateFunction measures and refuses over, and so the deploy).
ENVIRONMENT_LIMIT = 4 * 1024


# The longest identity a deploy can have: the buckets' names (<stack>-output-<account>-
# <region>, 63 characters at most) leave a stack in a 14-character region 28 characters.
LONGEST_REGION = "ap-southeast-2"
LONGEST_STACK_NAME = 63 - len("-output-") - 12 - 1 - len(LONGEST_REGION)


def environment_problems(stack: Stack) -> list[str]:
    """The functions whose environment Lambda would refuse, measured as the stack resolves
    it under the longest name and region it could be deployed with (the names and ARNs
    made from them are in the environments: measured as the local stack's, a parameter
    near the limit passed here and failed the deploy)."""
    problems = []
    longest = dataclasses.replace(stack, name="s" * LONGEST_STACK_NAME, region=LONGEST_REGION)
    expressions = _variable_expressions(stack)
    for function in longest.functions():
        measured = json.dumps(function.environment, separators=(",", ":"), ensure_ascii=False)
        size = len(measured.encode())
        if size <= ENVIRONMENT_LIMIT:
            continue
        largest = max(function.environment, key=lambda name: len(function.environment[name]))
        parameters = sorted(_refs(expressions.get(largest)) & set(stack.parameters))
        blame = f" (set by {', '.join(parameters)})" if parameters else ""
        problems.append(
            f"function {function.logical_id}'s environment would measure {size} bytes "
            "(deployed as a stack of the longest name and region its buckets allow), over "
            f"Lambda's 4 KB limit ({ENVIRONMENT_LIMIT} bytes); its largest variable is "
            f"{largest}{blame}"
        )
    return problems


def _variable_expressions(stack: Stack) -> dict[str, Any]:
    """Each environment variable's template expression, in ``Globals`` or a function."""
    functions = [stack.template.get("Globals", {}).get("Function", {})] + [
        stack.resources[lid].get("Properties", {})
        for lid in stack.of_type("AWS::Serverless::Function")
    ]
    return {
        variable: value
        for function in functions
        for variable, value in function.get("Environment", {}).get("Variables", {}).items()
    }


def _refs(expression: Any) -> set[str]:
    """The names an expression refers to, by ``Ref`` or inside a ``!Sub`` string."""
    if isinstance(expression, dict):
        found = {expression["Ref"]} if isinstance(expression.get("Ref"), str) else set()
        return found.union(*(_refs(value) for value in expression.values()))
    if isinstance(expression, list):
        return set().union(*(_refs(value) for value in expression))
    if isinstance(expression, str):
        return set(re.findall(r"\$\{([A-Za-z0-9]+)\}", expression))
    return set()


def declared_problems(declared: dict[str, dict[str, Any]], given: dict[str, str]) -> list[str]:
    """What CloudFormation would say of ``given`` against the template's ``Parameters``."""
    problems = []
    for name in given:
        if name not in declared:
            near = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]}?)" if near else ""
            problems.append(f"parameter {name} does not exist in the template{hint}")
    for name, spec in declared.items():
        if name in given:
            problem = _value_problem(spec, given[name])
            if problem:
                problems.append(f"parameter {name} {problem}")
    return problems


def _value_problem(spec: dict[str, Any], value: str) -> str | None:
    allowed = [str(v) for v in spec.get("AllowedValues", [])]
    if allowed and value not in allowed:
        return f"must be one of {', '.join(allowed)}, got {value!r}"
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return f"must be a number, got {value!r}"
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"must be at least {spec['MinValue']}, got {value}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"must be at most {spec['MaxValue']}, got {value}"
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        # (a NoEcho parameter's value is a secret: never shown, as CloudFormation shows none)
        shown = "" if str(spec.get("NoEcho", "")).lower() == "true" else f", got {value!r}"
        return f"{spec.get('ConstraintDescription', f'must match {pattern}')}{shown}"
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"must be at least {spec['MinLength']} characters long"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"must be at most {spec['MaxLength']} characters long"
    return None


def settings_problems(stack: Stack) -> list[str]:
    """What the functions' own settings code says of the environment each one gets,
    with each variable named by the parameter that sets it."""
    problems: list[str] = []
    for function in stack.functions():
        try:
            Settings.from_env(function.environment)
        except ConfigurationError as exc:
            message = _in_parameter_names(str(exc), _variables_of_parameters(stack))
            problem = f"the functions would refuse this at cold start: {message}"
            if problem not in problems:
                problems.append(problem)
    return problems


def _variables_of_parameters(stack: Stack) -> dict[str, str]:
    """Each environment variable the template sets straight from a parameter, in
    ``Globals`` or a function's own (``LADDER: !Ref Ladder``), and that parameter's name."""
    functions = [stack.template.get("Globals", {}).get("Function", {})] + [
        stack.resources[lid].get("Properties", {})
        for lid in stack.of_type("AWS::Serverless::Function")
    ]
    return {
        variable: value["Ref"]
        for function in functions
        for variable, value in function.get("Environment", {}).get("Variables", {}).items()
        if isinstance(value, dict) and value.get("Ref") in stack.parameters
    }


def _in_parameter_names(message: str, names: dict[str, str]) -> str:
    for variable, parameter in names.items():
        message = re.sub(rf"\b{variable}\b", parameter, message)
    return message
