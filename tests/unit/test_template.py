"""The SAM template, resolved for a local stack the way the engine reads it."""

from __future__ import annotations

import ast
import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workflow.local.template import Stack, TemplateError, load_template
from workflow.settings import Settings
from workflow.vod.jobs import UPLOAD_PREFIX

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\$\{([^}!][^}]*)\}")


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack(ROOT)


def values_of(node: Any, key: str) -> Iterator[Any]:
    """Every value stored under ``key`` anywhere in a JSON document."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from values_of(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from values_of(v, key)


# What S3 answers through CloudFront for a key not written yet (403: origin access
# control reads with GetObject only, no ListBucket) or while it is busy; CloudFront
# caches each for 10 s unless told otherwise.
_ORIGIN_ERRORS = {403, 404, 500, 502, 503, 504}


def test_the_cdn_keeps_an_error_no_longer_than_a_live_playlist() -> None:
    # GIVEN the distribution, and how long it keeps a live playlist
    resources = Stack(ROOT, overrides={"PlaybackCdn": "cloudfront"}).template["Resources"]
    config = resources["PlaybackDistribution"]["Properties"]["DistributionConfig"]
    playlist = resources["PlaylistCachePolicy"]["Properties"]["CachePolicyConfig"]["MaxTTL"]
    # THEN a player that asks for a playlist or segment a moment before it is written
    # (or while S3 slows down) is not answered that error for 10 s after it lands: long
    # enough to stall a live player whose playlist is 1 s old at the edge
    kept = {e["ErrorCode"]: e for e in config.get("CustomErrorResponses", [])}
    assert set(kept) >= _ORIGIN_ERRORS
    for code in _ORIGIN_ERRORS:
        assert kept[code]["ErrorCachingMinTTL"] <= playlist, code
        # the error itself, not a page in its place
        assert "ResponsePagePath" not in kept[code] and "ResponseCode" not in kept[code]


def test_bucket_names_follow_the_template(stack: Stack) -> None:
    # GIVEN the default local stack (name vidflow, us-east-1, account 123456789012)
    # WHEN its buckets are resolved
    # THEN !Sub "${AWS::StackName}-<role>-${AWS::AccountId}-${AWS::Region}" is filled in
    assert stack.buckets() == {
        "IngestBucket": "vidflow-ingest-123456789012-us-east-1",
        "OutputBucket": "vidflow-output-123456789012-us-east-1",
    }


def test_bucket_names_follow_the_stack_identity() -> None:
    # GIVEN a stack with another name, region and account
    stack = Stack(ROOT, name="demo", region="eu-west-1", account="111122223333")

    # WHEN its buckets are resolved
    # THEN the names carry them
    assert stack.buckets() == {
        "IngestBucket": "demo-ingest-111122223333-eu-west-1",
        "OutputBucket": "demo-output-111122223333-eu-west-1",
    }


def test_every_function_handler_exists(stack: Stack) -> None:
    # GIVEN every function in the template
    functions = stack.functions()
    assert functions

    # WHEN / THEN its Handler names a module file in its CodeUri that defines the function
    for function in functions:
        module, name = function.handler.rsplit(".", 1)
        source = function.code_uri / f"{module.replace('.', '/')}.py"
        assert source.is_file(), f"{function.logical_id}: {source} is missing"
        tree = ast.parse(source.read_text())
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert name in defined, f"{function.logical_id}: {source} defines no {name}()"


def test_every_function_gets_the_global_environment_and_its_own(stack: Stack) -> None:
    # GIVEN the template's Globals and each function's own variables
    template = load_template(ROOT / "sam-template.yaml")
    global_names = set(template["Globals"]["Function"]["Environment"]["Variables"])

    for function in stack.functions():
        props = template["Resources"][function.logical_id]["Properties"]
        own = set(props.get("Environment", {}).get("Variables", {}))

        # WHEN / THEN its environment holds both, every value resolved to a plain string
        assert set(function.environment) == global_names | own
        for name, value in function.environment.items():
            assert isinstance(value, str), name
            assert "${" not in value and "Fn::" not in value, (name, value)


def test_the_environment_points_at_this_stack(stack: Stack) -> None:
    # GIVEN the resolved functions, buckets and state machine
    functions = {f.logical_id: f for f in stack.functions()}
    machines = {m.logical_id: m for m in stack.state_machines()}

    # WHEN / THEN every function writes to the stack's output bucket, StartJob starts
    # the stack's own VOD state machine and LiveIngest its live one
    for function in functions.values():
        assert function.environment["OUTPUT_BUCKET"] == stack.buckets()["OutputBucket"]
    start, ingest = functions["StartJobFunction"], functions["LiveIngestFunction"]
    assert start.environment["STATE_MACHINE_ARN"] == machines["VodStateMachine"].arn
    assert ingest.environment["LIVE_STATE_MACHINE_ARN"] == machines["LiveStateMachine"].arn
    assert machines["LiveStateMachine"].type == "EXPRESS"
    # AND every live function finds the stack's state table
    for name in ("LiveIngestFunction", "LiveProbeFunction", "LivePublishFunction"):
        assert functions[name].environment["LIVE_TABLE"] in stack.tables()


def test_the_template_defaults_are_valid_settings(stack: Stack) -> None:
    # GIVEN each function's resolved environment
    for function in stack.functions():
        # WHEN settings are read from it
        settings = Settings.from_env(function.environment)

        # THEN the template's parameter defaults pass the settings' own checks
        assert settings.ladder == stack.parameters["Ladder"]
        assert settings.chunk_seconds == float(stack.parameters["ChunkSeconds"])
        assert settings.segment_seconds == float(stack.parameters["SegmentSeconds"])


def test_parameter_overrides_reach_the_environment() -> None:
    # GIVEN a stack with the Ladder parameter overridden
    stack = Stack(ROOT, overrides={"Ladder": "720:2800,360:800"})

    # WHEN / THEN every function sees the override
    assert {f.environment["LADDER"] for f in stack.functions()} == {"720:2800,360:800"}


def test_uploads_trigger_start_job_and_live_segments_and_clips_live_ingest(stack: Stack) -> None:
    # GIVEN the resolved functions
    triggered = {f.logical_id: f for f in stack.functions() if f.triggers}

    # WHEN / THEN StartJob listens under uploads/, LiveIngest under live/ and (clip
    # requests) clips/, to object creation in the ingest bucket, with prefixes that
    # cannot overlap
    assert sorted(triggered) == ["LiveIngestFunction", "StartJobFunction"]
    listening = {
        (name, trigger.prefix, trigger.suffix)
        for name, function in triggered.items()
        for trigger in function.triggers
        if trigger.bucket_logical_id == "IngestBucket"
        and all(e.startswith("s3:ObjectCreated:") for e in trigger.events)
    }
    assert listening == {
        ("StartJobFunction", UPLOAD_PREFIX, ""),
        ("LiveIngestFunction", "live/", ""),
        ("LiveIngestFunction", "clips/", ".json"),
    }


def test_the_sweep_runs_on_a_schedule_the_engine_can_keep(stack: Stack) -> None:
    scheduled = {f.logical_id: f.schedules for f in stack.functions() if f.schedules}
    assert scheduled == {"LiveSweepFunction": (60.0,), "ReconcileFunction": (300.0,)}


def test_a_scheduled_run_that_fails_is_not_run_again_by_lambda(stack: Stack) -> None:
    # EventBridge invokes a scheduled function asynchronously, and Lambda retries a failed
    # asynchronous run twice (a minute, then two, later) with the same event. A sweep fails
    # whenever one stream could not be advanced, after advancing every other: retried, one
    # bad stream would triple the sweeps of every stream, each as of a minute-old time; a
    # reconcile run past its timeout would overlap the next. The next scheduled run does a
    # failed run's work, as the engine runs them (once, never again).
    retried = {f.logical_id: f.async_retries for f in stack.functions() if f.schedules}
    assert retried == {"LiveSweepFunction": 0, "ReconcileFunction": 0}


def test_every_asl_placeholder_is_filled_with_a_function_arn(stack: Stack) -> None:
    template = load_template(ROOT / "sam-template.yaml")
    arns = {f.arn for f in stack.functions()}
    machines = stack.state_machines()
    assert {(m.name, m.type) for m in machines} == {
        ("vidflow-vod", "STANDARD"),
        ("vidflow-live", "EXPRESS"),
        ("vidflow-clip", "STANDARD"),
    }
    for machine in machines:
        # GIVEN the raw ASL with its ${...} placeholders
        props = template["Resources"][machine.logical_id]["Properties"]
        placeholders = set(PLACEHOLDER.findall((ROOT / props["DefinitionUri"]).read_text()))
        assert placeholders

        # WHEN the state machine is resolved
        definition = json.loads(machine.definition)

        # THEN every placeholder has a substitution, none is left, and every FunctionName
        # is the ARN of a function in this stack
        assert placeholders <= set(props["DefinitionSubstitutions"])
        assert not PLACEHOLDER.search(machine.definition)
        names = list(values_of(definition, "FunctionName"))
        assert names and set(names) <= arns


def write_template(tmp_path: Path, body: str, asl: str | None = None) -> Path:
    (tmp_path / "sam-template.yaml").write_text(textwrap.dedent(body))
    if asl is not None:
        (tmp_path / "machine.asl.json").write_text(asl)
    return tmp_path


FUNCTION_WITH_ENV = """\
    Globals:
      Function:
        Environment:
          Variables:
            SHARED: from-globals
            BOTH: from-globals
    Resources:
      Fn:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: fn/
          Handler: app.handler
          Environment:
            Variables:
              BOTH: from-function
              VALUE: {value}
    """


def test_function_environment_wins_over_globals(tmp_path: Path) -> None:
    # GIVEN a variable set both in Globals and on the function
    root = write_template(tmp_path, FUNCTION_WITH_ENV.format(value="plain"))

    # WHEN the function is resolved
    (function,) = Stack(root).functions()

    # THEN the function's own value wins and the rest of Globals is kept
    assert function.environment == {
        "SHARED": "from-globals",
        "BOTH": "from-function",
        "VALUE": "plain",
    }


@pytest.mark.parametrize(
    "value",
    [
        "!Select [0, [a, b]]",
        "!ImportValue other-stack-output",
        "!If [IsProd, a, b]",
        "!FindInMap [Map, Key, Value]",
        "!Base64 text",
    ],
)
def test_an_unknown_intrinsic_is_a_template_error(tmp_path: Path, value: str) -> None:
    # GIVEN a function variable that uses an intrinsic the local engine cannot resolve
    root = write_template(tmp_path, FUNCTION_WITH_ENV.format(value=value))

    # WHEN / THEN resolving the functions fails loudly instead of passing the dict through
    with pytest.raises(TemplateError):
        Stack(root).functions()


def test_a_ref_to_nothing_is_a_template_error(tmp_path: Path) -> None:
    # GIVEN a variable that refers to a parameter or resource that does not exist
    root = write_template(tmp_path, FUNCTION_WITH_ENV.format(value="!Ref Missing"))

    # WHEN / THEN resolving fails
    with pytest.raises(TemplateError, match="Missing"):
        Stack(root).functions()


@pytest.mark.parametrize(
    "policy",
    [
        "Statement: [{Effect: Deny, Action: s3:DeleteObject, Resource: '*'}]",
        "Statement: [{Effect: Allow, NotAction: s3:DeleteObject, Resource: '*'}]",
        "Statement: [{Effect: Allow, Action: s3:PutObject, Resource: '*', "
        "Condition: {StringEquals: {s3:x-amz-server-side-encryption: aws:kms}}}]",
        "S3ReadPolicy: {BucketName: media}",
        "arn:aws:iam::aws:policy/AmazonS3FullAccess",
    ],
)
def test_a_role_the_engine_cannot_hold_as_iam_does_is_a_template_error(
    tmp_path: Path, policy: str
) -> None:
    # GIVEN a function whose role the local check would misread: a Deny or a condition it
    # skipped would grant locally what AWS refuses; a SAM policy template or a managed
    # policy grants what the engine cannot say, so every call it was for would be a
    # puzzling AccessDenied at run time
    root = write_template(
        tmp_path,
        f"""\
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: fn/
              Handler: app.handler
              Policies:
                - {policy}
        """,
    )

    # WHEN / THEN the stack is refused when it is read, naming the function
    with pytest.raises(TemplateError, match="Fn: the local engine"):
        Stack(root).functions()


Trigger = tuple[str, str, str]  # event type, prefix, suffix


def _triggered(*triggers: Trigger) -> str:
    """A template of a bucket and a function triggered by it for each of ``triggers``."""

    def function(event: str, prefix: str, suffix: str) -> dict[str, Any]:
        rules = [{"Name": "prefix", "Value": prefix}]
        rules += [{"Name": "suffix", "Value": suffix}] if suffix else []
        source = {
            "Bucket": {"Ref": "Ingest"},
            "Events": event,
            "Filter": {"S3Key": {"Rules": rules}},
        }
        return {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "CodeUri": "fn/",
                "Handler": "app.handler",
                "Events": {"Upload": {"Type": "S3", "Properties": source}},
            },
        }

    resources = {f"Fn{n}": function(*t) for n, t in enumerate(triggers, 1)}
    return json.dumps({"Resources": {"Ingest": {"Type": "AWS::S3::Bucket"}, **resources}})


CREATED = "s3:ObjectCreated:*"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((CREATED, "live/", ""), (CREATED, "live/", "END")),
        (("s3:ObjectCreated:Put", "up/", ""), (CREATED, "up/a/", "")),
        ((CREATED, "c/", ".json"), (CREATED, "c/x", "a.json")),
    ],
)
def test_two_s3_triggers_one_event_could_match_are_a_template_error(
    tmp_path: Path, first: Trigger, second: Trigger
) -> None:
    # GIVEN two functions whose S3 events on one bucket overlap (S3 refuses such a
    # notification configuration and the deploy fails; moto takes it)
    root = write_template(tmp_path, _triggered(first, second))

    # WHEN / THEN the stack is refused, naming both
    with pytest.raises(TemplateError, match="Fn1's and Fn2's S3 events on Ingest overlap"):
        Stack(root).functions()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((CREATED, "live/", ""), (CREATED, "clips/", "")),
        ((CREATED, "c/", ".json"), (CREATED, "c/", ".mp4")),
        ((CREATED, "up/", ""), ("s3:ObjectRemoved:*", "up/", "")),
    ],
)
def test_s3_triggers_no_event_could_match_both_of_are_taken(
    tmp_path: Path, first: Trigger, second: Trigger
) -> None:
    root = write_template(tmp_path, _triggered(first, second))
    assert len(Stack(root).functions()) == 2


def _scheduled(expression: str) -> str:
    function = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "CodeUri": "fn/",
            "Handler": "app.handler",
            "Events": {"Every": {"Type": "Schedule", "Properties": {"Schedule": expression}}},
        },
    }
    return json.dumps({"Resources": {"Fn": function}})


@pytest.mark.parametrize(
    "expression", ["rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "rate(2 day)"]
)
def test_a_schedule_eventbridge_refuses_is_a_template_error(
    tmp_path: Path, expression: str
) -> None:
    # GIVEN a schedule cfn-lint passes and EventBridge refuses, failing the deploy (the
    # engine ran rate(1 minutes) each minute, and rate(0 minutes) without a pause)
    root = write_template(tmp_path, _scheduled(expression))

    # WHEN / THEN the stack is refused
    with pytest.raises(TemplateError, match="EventBridge refuses"):
        Stack(root).functions()


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60.0), ("rate(5 minutes)", 300.0), ("rate(1 day)", 86400.0)],
)
def test_a_schedule_runs_at_its_rate(tmp_path: Path, expression: str, seconds: float) -> None:
    root = write_template(tmp_path, _scheduled(expression))
    assert Stack(root).functions()[0].schedules == (seconds,)


def test_an_asl_placeholder_without_a_substitution_is_a_template_error(tmp_path: Path) -> None:
    # GIVEN an ASL that needs ${OtherArn}, which the template does not provide
    asl = json.dumps(
        {
            "StartAt": "A",
            "States": {"A": {"Type": "Task", "Resource": "${OtherArn}", "End": True}},
        }
    )
    root = write_template(
        tmp_path,
        """\
        Resources:
          Machine:
            Type: AWS::Serverless::StateMachine
            Properties:
              DefinitionUri: machine.asl.json
              DefinitionSubstitutions:
                SomeArn: arn:aws:lambda:us-east-1:1:function:x
        """,
        asl,
    )

    # WHEN / THEN resolving the state machine fails, naming the placeholder
    with pytest.raises(TemplateError, match="OtherArn"):
        Stack(root).state_machines()


CONDITIONAL_ENV = """\
    Parameters:
      KeyArn:
        Type: String
        Default: ""
      Reserved:
        Type: Number
        Default: 5
    Conditions:
      HasKey: !Not [!Equals [!Ref KeyArn, ""]]
      Reserves: !Not [!Or [!Equals [!Ref Reserved, "0"], !Equals [!Ref Reserved, "-1"]]]
      Both: !And [!Condition HasKey, !Condition Reserves]
    Resources:
      OnlyWithKey:
        Type: AWS::S3::Bucket
        Condition: HasKey
        Properties:
          BucketName: keyed
      Fn:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: fn/
          Handler: app.handler
          Environment:
            Variables:
              KEY: !If [HasKey, !Ref KeyArn, none]
              BOTH: !If [Both, "yes", !Ref AWS::NoValue]
    """


@pytest.mark.parametrize(
    ("overrides", "environment", "buckets"),
    [
        ({}, {"KEY": "none"}, {}),
        ({"KeyArn": "arn:k"}, {"KEY": "arn:k", "BOTH": "yes"}, {"OnlyWithKey": "keyed"}),
        ({"KeyArn": "arn:k", "Reserved": "-1"}, {"KEY": "arn:k"}, {"OnlyWithKey": "keyed"}),
    ],
)
def test_conditions_choose_values_and_resources(
    tmp_path: Path, overrides: dict[str, str], environment: dict[str, str], buckets: dict[str, str]
) -> None:
    # GIVEN a template whose values and resources depend on Conditions of its parameters
    root = write_template(tmp_path, CONDITIONAL_ENV)

    # WHEN it is resolved with these parameters
    stack = Stack(root, overrides=overrides)

    # THEN Fn::If takes the branch its condition names, AWS::NoValue drops the variable,
    # and a resource whose Condition is false does not exist
    (function,) = stack.functions()
    assert function.environment == environment
    assert stack.buckets() == buckets


def test_alarm_math_fills_each_series_it_combines() -> None:
    # GIVEN every alarm that computes over more than one metric
    template = load_template(ROOT / "sam-template.yaml")
    alarms = {
        name: resource["Properties"]["Metrics"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm" and "Metrics" in resource["Properties"]
    }
    combined = {name: m for name, m in alarms.items() if sum("MetricStat" in x for x in m) > 1}
    assert "JobFailureRateAlarm" in combined
    for name, metrics in combined.items():
        series = {m["Id"] for m in metrics if "MetricStat" in m}
        for m in metrics:
            expression = m.get("Expression", "")
            if not isinstance(expression, str):
                continue
            # THEN a series is read only through FILL: metric math combines two series only
            # at the times both have a point, so a series with none (no job succeeded)
            # would leave the alarm without data rather than breaching
            bare = set(re.findall(r"[a-z]\w*", re.sub(r"FILL\(\w+, *0\)", "", expression)))
            assert not bare & series, (name, expression)
