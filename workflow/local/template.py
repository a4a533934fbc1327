"""Read ``sam-template.yaml`` the way the local engine needs it.

The template is the only description of the deployment: buckets, functions, their
environment and S3 events, state machines and their definition substitutions. This
module resolves the intrinsic functions it uses (``Ref``, ``Fn::Sub``, ``Fn::GetAtt``,
``Fn::Join``, and ``Fn::If`` on the template's ``Conditions`` with ``AWS::NoValue``) for one
local stack, so the engine never keeps a second copy. Just over 400 lines: the intrinsic
functions and the typed views of the resources that use them (functions, tables, queues,
state machines) read best side by side.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

_SUB = re.compile(r"\$\{([^}!][^}]*)\}")
# What ``!Ref AWS::NoValue`` resolves to: the property (or list item) holding it is dropped.
_NO_VALUE = object()


class TemplateError(Exception):
    """The template uses something the local engine cannot resolve."""


class _CfnLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML loader that reads CloudFormation short tags (``!Ref``, ``!Sub``, ...); libyaml's
    where PyYAML has it (0.016 s for the template, against 0.55 s in pure Python)."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        data: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)
    return data


@dataclass(frozen=True)
class S3Trigger:
    bucket_logical_id: str
    events: tuple[str, ...]
    prefix: str
    suffix: str


@dataclass(frozen=True)
class Function:
    logical_id: str
    name: str
    arn: str
    code_uri: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    triggers: tuple[S3Trigger, ...] = ()
    # Seconds between runs, from ``Schedule`` events (``rate(...)``).
    schedules: tuple[float, ...] = ()
    # Layer logical ids in the template's order (Globals first), as Lambda stacks them.
    layers: tuple[str, ...] = ()
    runtime: str = "python3.12"
    # MB of /tmp (``EphemeralStorage``; Lambda's default is 512).
    ephemeral_storage: int = 512
    # Asynchronous invocations (S3 events): retries after a failure, and the ARN of the
    # queue an event that failed them all goes to (``EventInvokeConfig``), if any.
    async_retries: int = 2
    on_failure: str | None = None
    # ``ReservedConcurrentExecutions``: at most this many run at once, the rest throttled.
    reserved_concurrency: int | None = None


@dataclass(frozen=True)
class StateMachine:
    logical_id: str
    name: str
    arn: str
    type: str
    definition: str


@dataclass
class Stack:
    """A template resolved for one local stack."""

    root: Path
    name: str = "vidflow"
    region: str = "us-east-1"
    account: str = "123456789012"
    overrides: dict[str, str] = field(default_factory=dict)
    # Where the engine serves each function URL (function logical id -> URL):
    # ``serve_function_urls``.
    function_urls: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._functions: list[Function] | None = None
        self.root = self.root.resolve()
        self.template = load_template(self.root / "sam-template.yaml")
        self.resources: dict[str, dict[str, Any]] = self.template.get("Resources", {})
        self.parameters = {
            name: str(self.overrides.get(name, spec.get("Default", "")))
            for name, spec in self.template.get("Parameters", {}).items()
        }

    def of_type(self, kind: str) -> list[str]:
        """Logical ids of this kind, leaving out resources whose ``Condition`` is false."""
        return [
            lid
            for lid, res in self.resources.items()
            if res.get("Type") == kind
            and ("Condition" not in res or self.condition(res["Condition"]))
        ]

    def condition(self, name: str) -> bool:
        """The value of one of the template's ``Conditions`` for this stack's parameters."""
        conditions = self.template.get("Conditions", {})
        if name not in conditions:
            raise TemplateError(f"no such condition {name}")
        return self.evaluate(conditions[name])

    def outputs(self) -> dict[str, str]:
        """The stack's ``Outputs``, resolved, as ``sam deploy`` would print them."""
        return {
            name: str(self.resolve(spec["Value"]))
            for name, spec in self.template.get("Outputs", {}).items()
            if "Condition" not in spec or self.condition(spec["Condition"])
        }

    def runtime(self) -> str:
        """The functions' ``Runtime`` from ``Globals`` (``python3.12``)."""
        return str(
            self.template.get("Globals", {}).get("Function", {}).get("Runtime", "python3.12")
        )

    def function_log_group(self) -> str | None:
        """The log group every function logs to (``Globals`` ``LoggingConfig``), if one."""
        config = self.template.get("Globals", {}).get("Function", {}).get("LoggingConfig", {})
        return str(self.resolve(config["LogGroup"])) if "LogGroup" in config else None

    def buckets(self) -> dict[str, str]:
        """Logical id -> bucket name."""
        return {lid: self.ref(lid) for lid in self.of_type("AWS::S3::Bucket")}

    def bucket_versioning(self) -> dict[str, str]:
        """Bucket name -> its ``VersioningConfiguration`` status, for buckets that set one."""
        found = {}
        for lid in self.of_type("AWS::S3::Bucket"):
            config = self.resources[lid].get("Properties", {}).get("VersioningConfiguration")
            if config:
                found[self.ref(lid)] = str(self.resolve(config["Status"]))
        return found

    def role_statements(self, logical_id: str) -> list[dict[str, Any]]:
        """The Allow statements of a function's inline policies, resolved, with ``Action``
        and ``Resource`` as lists and ``Condition`` ({} for none); of SAM's policy
        templates, ``StepFunctionsExecutionPolicy`` as SAM expands it. Any other policy
        template or a managed policy refuses the stack: the engine cannot say what it
        grants, and every call of a worker is held to its role."""
        policies = self.resolve(self.resources[logical_id]["Properties"].get("Policies", []))
        policies = policies if isinstance(policies, list) else [policies]
        # A policy of its own (AWS::IAM::Policy) attached to the role SAM makes for it.
        for lid in self.of_type("AWS::IAM::Policy"):
            attached = self.resources[lid]["Properties"]
            if {"Ref": f"{logical_id}Role"} in attached.get("Roles", []):
                policies.append(self.resolve(attached["PolicyDocument"]))
        found = []
        for policy in policies:
            if not isinstance(policy, dict) or not {"Statement"} >= set(policy) - {
                "StepFunctionsExecutionPolicy",
                "Version",
            }:
                raise TemplateError(
                    f"{logical_id}: the local engine holds a function's role to inline "
                    f"Statements and StepFunctionsExecutionPolicy only, not {policy}"
                )
            starts = policy.get("StepFunctionsExecutionPolicy")
            if starts is not None:
                where = f"arn:aws:states:{self.region}:{self.account}"
                machine = f"{where}:stateMachine:{starts['StateMachineName']}"
                found.append(
                    {"Action": ["states:StartExecution"], "Resource": [machine], "Condition": {}}
                )
            for statement in policy.get("Statement", []):
                self._holdable(logical_id, statement)
                actions, resources = statement["Action"], statement["Resource"]
                found.append({
                    "Action": actions if isinstance(actions, list) else [actions],
                    "Resource": resources if isinstance(resources, list) else [resources],
                    "Condition": statement.get("Condition") or {},
                })  # fmt: skip
        return found

    @staticmethod
    def _holdable(logical_id: str, statement: dict[str, Any]) -> None:
        """Refuse a statement the local role check would hold otherwise than IAM: it
        reads Allow, Action, Resource and an ``s3:prefix`` condition; skipping a Deny, or
        a condition it does not read, would grant locally what AWS refuses."""
        what = statement.get("Sid") or statement.get("Action")
        if statement.get("Effect") != "Allow" or not {"Action", "Resource"} <= set(statement):
            raise TemplateError(
                f"{logical_id}: the local engine holds a role to Allow statements with Action "
                f"and Resource only, not {what}"
            )
        for operator, keys in (statement.get("Condition") or {}).items():
            if operator != "StringLike" or set(keys) != {"s3:prefix"}:
                raise TemplateError(
                    f"{logical_id}: the local engine cannot hold {what} to its condition "
                    f"{operator} {sorted(keys)} (it reads StringLike s3:prefix only)"
                )

    def functions(self) -> list[Function]:
        """The template's functions, resolved once: every Lambda call looks one up."""
        if self._functions is None:
            self._functions = self._resolve_functions()
        return list(self._functions)

    def _resolve_functions(self) -> list[Function]:
        globals_ = self.template.get("Globals", {}).get("Function", {})
        found = []
        for lid in self.of_type("AWS::Serverless::Function"):
            self.role_statements(lid)  # one the engine could not hold refuses the stack
            own = self.resources[lid].get("Properties", {})
            props = {**globals_, **own}
            # SAM appends a function's own layers to the global ones.
            layers = [*globals_.get("Layers", []), *own.get("Layers", [])]
            env = self.resolve(
                {
                    **globals_.get("Environment", {}).get("Variables", {}),
                    **own.get("Environment", {}).get("Variables", {}),
                }
            )
            triggers = []
            schedules = []
            for event in props.get("Events", {}).values():
                if event.get("Type") == "Schedule":
                    schedules.append(_rate_seconds(event["Properties"]["Schedule"]))
                if event.get("Type") != "S3":
                    continue
                ep = event["Properties"]
                rules = {
                    r["Name"].lower(): r["Value"]
                    for r in ep.get("Filter", {}).get("S3Key", {}).get("Rules", [])
                }
                events = ep["Events"] if isinstance(ep["Events"], list) else [ep["Events"]]
                triggers.append(
                    S3Trigger(
                        ep["Bucket"]["Ref"],
                        tuple(events),
                        rules.get("prefix", ""),
                        rules.get("suffix", ""),
                    )
                )
            reserved = self.resolve(props.get("ReservedConcurrentExecutions", _NO_VALUE))
            found.append(
                Function(
                    logical_id=lid,
                    name=self.ref(lid),
                    arn=self.get_att(lid, "Arn"),
                    code_uri=self.root / props["CodeUri"],
                    handler=props["Handler"],
                    timeout=int(props.get("Timeout", 3)),
                    memory=int(props.get("MemorySize", 128)),
                    environment={k: str(v) for k, v in env.items()},
                    triggers=tuple(triggers),
                    schedules=tuple(schedules),
                    layers=tuple(layer["Ref"] for layer in layers),
                    runtime=str(props.get("Runtime", "python3.12")),
                    ephemeral_storage=int(props.get("EphemeralStorage", {}).get("Size", 512)),
                    **self._invoke_config(props.get("EventInvokeConfig", {})),
                    reserved_concurrency=None if reserved is _NO_VALUE else int(reserved),
                )
            )
        _refuse_overlapping_notifications(found)
        return found

    def _invoke_config(self, config: dict[str, Any]) -> dict[str, Any]:
        on_failure = config.get("DestinationConfig", {}).get("OnFailure", {})
        if on_failure and on_failure.get("Type") != "SQS":
            raise TemplateError("the local engine delivers failed events to SQS queues only")
        return {
            "async_retries": int(config.get("MaximumRetryAttempts", 2)),
            "on_failure": str(self.resolve(on_failure["Destination"])) if on_failure else None,
        }

    def serve_function_urls(self, urls: dict[str, str]) -> None:
        """Resolve each function URL (function logical id -> URL) to where it is served."""
        self.function_urls = dict(urls)
        self._functions = None  # environments that name a URL resolve again

    def url_functions(self) -> dict[str, dict[str, Any]]:
        """Logical id -> its URL's ``Cors`` (``AllowOrigins``, ``AllowMethods``, ...), for
        the functions with a function URL."""
        return {
            lid: dict(self.resources[lid]["Properties"]["FunctionUrlConfig"].get("Cors", {}))
            for lid in self.of_type("AWS::Serverless::Function")
            if "FunctionUrlConfig" in self.resources[lid].get("Properties", {})
        }

    def secrets(self) -> dict[str, dict[str, Any]]:
        """Secret name -> its ``GenerateSecretString``, for the template's secrets."""
        return {
            str(self.resolve(self.resources[lid]["Properties"]["Name"])): dict(
                self.resources[lid]["Properties"].get("GenerateSecretString", {})
            )
            for lid in self.of_type("AWS::SecretsManager::Secret")
        }

    def kms_aliases(self) -> dict[str, str]:
        """Alias name -> the logical id of the KMS key it names."""
        return {
            str(self.resolve(self.resources[lid]["Properties"]["AliasName"])): self.resources[lid][
                "Properties"
            ]["TargetKeyId"]["Ref"]
            for lid in self.of_type("AWS::KMS::Alias")
        }

    def kms_keys(self) -> dict[str, str]:
        """Alias name -> the ARN of the KMS key it names, as a role's statements name it."""
        return {alias: self.get_att(lid, "Arn") for alias, lid in self.kms_aliases().items()}

    def queues(self) -> dict[str, str]:
        """Queue ARN -> queue name, for the template's SQS queues."""
        return {
            self.get_att(lid, "Arn"): self.get_att(lid, "QueueName")
            for lid in self.of_type("AWS::SQS::Queue")
        }

    def find_function(self, name: str) -> Function | None:
        """A function by logical id, name, ARN (with or without qualifier) or code folder."""
        bare = name.split(":function:")[-1].split(":")[0].lower()
        for function in self.functions():
            keys = (function.logical_id, function.name, function.code_uri.name)
            if bare in (key.lower() for key in keys):
                return function
        return None

    def tables(self) -> dict[str, dict[str, Any]]:
        """Table name -> the ``CreateTable`` arguments its template properties give."""
        found = {}
        for lid in self.of_type("AWS::DynamoDB::Table"):
            props = self.resolve(self.resources[lid].get("Properties", {}))
            arguments = {
                key: props[key]
                for key in ("AttributeDefinitions", "KeySchema", "BillingMode")
                if key in props
            }
            indexes = props.get("GlobalSecondaryIndexes")
            if indexes:
                arguments["GlobalSecondaryIndexes"] = indexes
            found[self.ref(lid)] = arguments
        return found

    def state_machines(self) -> list[StateMachine]:
        found = []
        for lid in self.of_type("AWS::Serverless::StateMachine"):
            props = self.resources[lid]["Properties"]
            text = (self.root / props["DefinitionUri"]).read_text()
            substitutions = {
                k: str(self.resolve(v)) for k, v in props.get("DefinitionSubstitutions", {}).items()
            }
            definition = _SUB.sub(partial(_substitute, values=substitutions), text)
            json.loads(definition)
            found.append(
                StateMachine(
                    logical_id=lid,
                    name=self.get_att(lid, "Name"),
                    arn=self.ref(lid),
                    type=props.get("Type", "STANDARD"),
                    definition=definition,
                )
            )
        return found

    # Intrinsic functions, resolved for this stack.

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and arg == "AWS::NoValue":
                return _NO_VALUE
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::If":
                name, if_true, if_false = arg
                return self.resolve(if_true if self.condition(name) else if_false)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::GetAtt":
                return self.get_att(*(arg if isinstance(arg, list) else arg.split(".", 1)))
            if key == "Fn::Join":
                return arg[0].join(str(self.resolve(v)) for v in arg[1])
            if key.startswith("Fn::"):
                raise TemplateError(f"the local engine does not resolve {key}")
        if isinstance(value, dict):
            resolved = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not _NO_VALUE}
        if isinstance(value, list):
            return [v for v in map(self.resolve, value) if v is not _NO_VALUE]
        return value

    def evaluate(self, expression: Any) -> bool:
        """A condition expression: ``Fn::Equals``/``Not``/``And``/``Or`` and ``Condition``."""
        if isinstance(expression, dict) and len(expression) == 1:
            ((key, arg),) = expression.items()
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Equals":
                left, right = (str(self.resolve(v)) for v in arg)
                return left == right
            if key == "Fn::Not":
                return not self.evaluate(arg[0])
            if key == "Fn::And":
                return all(self.evaluate(v) for v in arg)
            if key == "Fn::Or":
                return any(self.evaluate(v) for v in arg)
        raise TemplateError(f"the local engine does not evaluate the condition {expression}")

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::StackName": self.name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        resource = self.resources.get(name)
        if resource is None:
            raise TemplateError(f"!Ref {name}: no such parameter or resource")
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::S3::Bucket":
            return str(self.resolve(props.get("BucketName", f"{self.name}-{name.lower()}")))
        if kind == "AWS::Serverless::StateMachine":
            machine = self.get_att(name, "Name")
            return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{machine}"
        if kind == "AWS::Serverless::Function":
            return str(self.resolve(props.get("FunctionName", f"{self.name}-{name}")))
        if kind == "AWS::DynamoDB::Table":
            return str(self.resolve(props.get("TableName", f"{self.name}-{name}")))
        if kind == "AWS::Events::EventBus":
            return str(self.resolve(props["Name"]))
        if kind == "AWS::Logs::LogGroup":
            return str(self.resolve(props.get("LogGroupName", f"{self.name}-{name}")))
        if kind == "AWS::KMS::Alias":
            return str(self.resolve(props["AliasName"]))
        if kind == "AWS::SecretsManager::Secret":
            return str(self.resolve(props["Name"]))
        if kind == "AWS::SQS::Queue":
            return (
                f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self._queue_name(name)}"
            )
        if kind == "AWS::SNS::Topic":
            topic = self.resolve(props.get("TopicName", f"{self.name}-{name}"))
            return f"arn:aws:sns:{self.region}:{self.account}:{topic}"
        return f"{self.name}-{name}"

    def get_att(self, name: str, attribute: str) -> str:
        if attribute == "FunctionUrl" and name.removesuffix("Url") in self.url_functions():
            # SAM's <Function>Url resource: where the engine serves it, else its AWS shape.
            function = name.removesuffix("Url")
            return self.function_urls.get(
                function, f"https://{function.lower()}.lambda-url.{self.region}.on.aws/"
            )
        resource = self.resources.get(name)
        if resource is None:
            raise TemplateError(f"!GetAtt {name}.{attribute}: no such resource")
        kind = resource["Type"]
        if kind == "AWS::Serverless::Function" and attribute == "Arn":
            return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.ref(name)}"
        if kind == "AWS::Serverless::StateMachine" and attribute == "Name":
            props = resource.get("Properties", {})
            return str(self.resolve(props.get("Name", f"{self.name}-{name}")))
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{self.ref(name)}"
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{self.ref(name)}"
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return self._queue_name(name)
        if kind == "AWS::SQS::Queue" and attribute == "Arn":
            return f"arn:aws:sqs:{self.region}:{self.account}:{self._queue_name(name)}"
        if kind == "AWS::Events::EventBus" and attribute == "Arn":
            return f"arn:aws:events:{self.region}:{self.account}:event-bus/{self.ref(name)}"
        if attribute == "Arn":
            return f"arn:aws:local:{self.region}:{self.account}:{name}"
        raise TemplateError(f"!GetAtt {name}.{attribute} is not resolved locally")

    def _queue_name(self, name: str) -> str:
        props = self.resources[name].get("Properties", {})
        return str(self.resolve(props.get("QueueName", f"{self.name}-{name}")))

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        values = {k: str(self.resolve(v)) for k, v in variables.items()}

        def lookup(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in values:
                return values[token]
            if "." in token:
                return self.get_att(*token.split(".", 1))
            return self.ref(token)

        return _SUB.sub(lookup, text)


_RATE_UNITS = {"minute": 60.0, "minutes": 60.0, "hour": 3600.0, "hours": 3600.0, "day": 86400.0}


def _event_types_overlap(one: str, other: str) -> bool:
    """Whether two S3 event types name a common event (``s3:ObjectCreated:*`` and
    ``s3:ObjectCreated:Put`` do)."""

    def names(event: str, wider: str) -> bool:
        return event == wider or (wider.endswith(":*") and event.startswith(wider[:-1]))

    return names(one, other) or names(other, one)


def _refuse_overlapping_notifications(functions: list[Function]) -> None:
    """Refuse two S3 triggers of a bucket that one object's event could match both of,
    as S3 refuses such a notification configuration ("Configuration is ambiguously
    defined"), failing the deploy; moto takes it, and the engine delivered to both."""
    triggers = [(f.logical_id, t) for f in functions for t in f.triggers]
    for i, (name, one) in enumerate(triggers):
        for other_name, other in triggers[i + 1 :]:
            if (
                one.bucket_logical_id == other.bucket_logical_id
                and any(_event_types_overlap(a, b) for a in one.events for b in other.events)
                and (one.prefix.startswith(other.prefix) or other.prefix.startswith(one.prefix))
                and (one.suffix.endswith(other.suffix) or other.suffix.endswith(one.suffix))
            ):
                raise TemplateError(
                    f"{name}'s and {other_name}'s S3 events on {one.bucket_logical_id} "
                    f"overlap (prefixes {one.prefix!r} and {other.prefix!r}, suffixes "
                    f"{one.suffix!r} and {other.suffix!r}, for a common event type): S3 "
                    "refuses the bucket's notification configuration, and the deploy fails"
                )


def _rate_seconds(expression: str) -> float:
    """Seconds between runs of an EventBridge ``rate(N unit)`` expression; one EventBridge
    refuses (a value under 1, ``rate(1 minutes)``, ``rate(5 minute)``) is refused here too,
    where it would fail the deploy."""
    match = re.fullmatch(r"rate\((\d+) (minutes?|hours?|days?)\)", expression.strip())
    if match is None:
        raise TemplateError(f"the local engine runs rate(...) schedules only, not {expression}")
    value, unit = int(match.group(1)), match.group(2)
    if value < 1 or (value == 1) == unit.endswith("s"):
        raise TemplateError(
            f"EventBridge refuses {expression}: the value is a positive whole number, the "
            "unit singular for 1 (rate(1 minute)) and plural otherwise (rate(5 minutes))"
        )
    return value * _RATE_UNITS.get(unit, 86400.0)


def _substitute(match: re.Match[str], values: dict[str, str]) -> str:
    token = match.group(1)
    if token not in values:
        raise TemplateError(
            f"definition placeholder ${{{token}}} has no DefinitionSubstitutions entry"
        )
    return values[token]
