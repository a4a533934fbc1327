"""Parameters checked as CloudFormation checks them, against a template's declarations."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from workflow.local.parameters import (
    ENVIRONMENT_LIMIT,
    ParameterError,
    check,
    declared_problems,
    environment_problems,
    rule_problems,
    settings_problems,
)
from workflow.local.template import Stack
from workflow.settings import Limits, Settings

ROOT = Path(__file__).resolve().parents[2]
DECLARED = {
    "Mode": {"Type": "String", "AllowedValues": ["a", "b"]},
    "Count": {"Type": "Number", "MinValue": 1, "MaxValue": 10},
    "Arn": {"Type": "String", "AllowedPattern": "^$|^arn:[a-z]+$"},
    "Name": {"Type": "String", "MinLength": 2, "MaxLength": 4},
}


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"Mode": "c"}, "parameter Mode must be one of a, b, got 'c'"),
        ({"Count": "0"}, "parameter Count must be at least 1, got 0"),
        ({"Count": "11"}, "parameter Count must be at most 10, got 11"),
        ({"Count": "1e"}, "parameter Count must be a number, got '1e'"),
        ({"Arn": "arn:x1"}, "parameter Arn must match ^$|^arn:[a-z]+$, got 'arn:x1'"),
        ({"Name": "n"}, "parameter Name must be at least 2 characters long"),
        ({"Name": "names"}, "parameter Name must be at most 4 characters long"),
        ({"mode": "a"}, "parameter mode does not exist in the template (did you mean Mode?)"),
    ],
)
def test_each_rule_names_the_parameter(given: dict[str, str], problem: str) -> None:
    assert declared_problems(DECLARED, given) == [problem]


def test_values_inside_every_rule_pass() -> None:
    assert declared_problems(DECLARED, {"Mode": "b", "Count": "10", "Arn": "", "Name": "ab"}) == []


def test_the_templates_defaults_and_the_clis_own_override_pass() -> None:
    check(Stack(ROOT, overrides={"MapMaxConcurrency": "2"}))


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ParameterError) as raised:
        check(Stack(ROOT, overrides={"Packaging": "dash", "X264Preset": "placebo"}))
    assert len(raised.value.problems) == 2


def test_a_webhook_without_its_api_key_is_refused_as_the_templates_rule_says() -> None:
    hook = {"WebhookUrl": "https://example.com/hooks/vidflow"}
    with pytest.raises(ParameterError) as raised:
        check(Stack(ROOT, overrides=hook))
    assert raised.value.problems == [
        "WebhookApiKey must be set with WebhookUrl (EventBridge connections need a key value)"
    ]
    check(Stack(ROOT, overrides={**hook, "WebhookApiKey": "k3y"}))


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "ftp://127.0.0.1/x",
        "https://a b",
        # what EventBridge's API destination refuses (its InvocationEndpoint), which the
        # local engine's delivery failed on unsaid
        "https://hooks.example/\u00fc",
        "https://[::1]/hook",
        "https://hooks.example/?sig={x}",
        "https://hooks.example/" + "a" * 2030,
    ],
)
def test_a_webhook_must_be_https_except_on_this_machine(url: str) -> None:
    with pytest.raises(ParameterError):
        check(Stack(ROOT, overrides={"WebhookUrl": url, "WebhookApiKey": "k"}))
    check(
        Stack(
            ROOT,
            overrides={"WebhookUrl": "https://h.example/a%20b?x=1&y=(2)", "WebhookApiKey": "k"},
        )
    )


@pytest.mark.parametrize("key", ["Bearer: abc", "line\nbreak", "cl\u00e9", "k" * 513, ""])
def test_a_webhook_key_eventbridge_refuses_is_refused_without_being_shown(key: str) -> None:
    # GIVEN an API key EventBridge's connection refuses (a colon, a control character,
    # past 512 characters; not ASCII: no header carries it as written), or none
    hook = {"WebhookUrl": "https://hooks.example/vidflow", "WebhookApiKey": key}
    # WHEN the stack is checked, THEN it is refused by name, its value (NoEcho) unshown
    with pytest.raises(ParameterError) as raised:
        check(Stack(ROOT, overrides=hook))
    assert any(p.startswith("parameter WebhookApiKey") for p in raised.value.problems)
    assert key[:3] not in " ".join(raised.value.problems) or not key


def test_a_cdn_is_refused_locally_by_name_and_deploys_with_its_key() -> None:
    # GIVEN the parameters that put CloudFront in front of the output
    cdn = {"PlaybackCdn": "cloudfront"}
    with pytest.raises(ParameterError) as raised:
        check(Stack(ROOT, overrides=cdn))
    # THEN the local stack says it only deploys, naming the resource, rather than half-run
    (problem,) = raised.value.problems
    assert problem.startswith("PlaybackDistribution would be a CloudFront distribution")
    # AND on AWS the functions name the distribution, which trusts the key group only if given
    deployed = Stack(ROOT, overrides=cdn)
    assert set(deployed.of_type("AWS::CloudFront::Distribution")) == {"PlaybackDistribution"}
    assert not deployed.of_type("AWS::CloudFront::KeyGroup")
    assert "PlaybackCdnUrl" in deployed.template["Outputs"]
    pem = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqh+/=\n-----END PUBLIC KEY-----\n"
    signed = Stack(ROOT, overrides={**cdn, "CdnPublicKey": pem})
    assert signed.of_type("AWS::CloudFront::KeyGroup") == ["CdnKeyGroup"]
    assert declared_problems(signed.template["Parameters"], {"CdnPublicKey": "not a key"})
    # AND by default there is none
    assert not Stack(ROOT).of_type("AWS::CloudFront::Distribution")


def test_every_bound_on_an_upload_is_a_template_parameter() -> None:
    # GIVEN a stack whose bounds are each set to other values than the defaults
    stack = Stack(
        ROOT,
        overrides={"MaxInputBytes": "1000", "MaxInputSeconds": "60", "MaxInputPixels": "4096",
                   "MaxInputFps": "24", "MaxInputStreams": "2"},
    )  # fmt: skip
    # THEN the function that probes uploads holds them to those values
    (probe,) = [f for f in stack.functions() if f.logical_id == "ProbeFunction"]
    limits = Settings.from_env(probe.environment).limits
    assert limits == Limits(
        max_bytes=1000, max_seconds=60, max_pixels=4096, max_fps=24, max_streams=2
    )


@pytest.mark.parametrize(
    "given",
    [
        {"Ladder": "720p:2800"},
        {"Ladder": ""},
        {"SegmentSeconds": "0.25"},
        {"SegmentSeconds": "61"},
        {"ChunkSeconds": "0"},
        {"ChunkSeconds": "7200"},
        {"ThumbnailSeconds": "1e9"},
        {"MaxInputBytes": "0"},
        {"MaxInputSeconds": "0"},
        {"MaxInputPixels": "0"},
        {"MaxInputFps": "0"},
        {"MaxInputStreams": "0"},
        {"TargetVmaf": "101"},
        {"TargetVmaf": "720:100.5"},
        {"ReconcileGraceSeconds": "172800"},
        {"Encryption": "cbcs"},
        {"Encryption": "aes-128", "Packaging": "cmaf"},
        {"MapMaxConcurrency": "2.5"},
        {"MaxInputBytes": "1e9"},
        {"MaxInputPixels": "9437184.0"},
        {"LiveWindow": "3.5"},
    ],
)
def test_what_the_functions_would_refuse_at_cold_start_the_deploy_refuses(
    given: dict[str, str],
) -> None:
    stack = Stack(ROOT, overrides=given)
    # GIVEN a value every function's settings code refuses (on AWS: at its cold start,
    # each upload's event then failing into the queue)
    assert settings_problems(stack)
    # THEN CloudFormation's own checks, which `sam deploy` runs, refuse it first
    assert declared_problems(stack.template["Parameters"], given) + rule_problems(stack)


@pytest.mark.parametrize("value", ["2.5", "-1.0", "00", "-2", "1e3"])
def test_reserved_concurrency_must_be_whole_or_the_deploy_would_fail_part_way(value: str) -> None:
    # GIVEN a value Lambda refuses for ReservedConcurrentExecutions, or, for "00", one that
    # is not "0" to the template's condition and would reserve none: the function never runs
    given = {"TranscodeReservedConcurrency": value}
    # THEN CloudFormation refuses the parameter before it creates anything
    assert declared_problems(Stack(ROOT).template["Parameters"], given) == [
        "parameter TranscodeReservedConcurrency must be -1, 0 or a whole number of functions,"
        f" got {value!r}"
    ]


def test_whole_number_parameters_take_their_defaults_and_their_bounds() -> None:
    parameters = Stack(ROOT).template["Parameters"]
    given = {
        "MapMaxConcurrency": "10000",
        "MaxInputBytes": "1",
        "MaxInputPixels": "1",
        "LiveWindow": "0",
        "TranscodeReservedConcurrency": "400",
    }
    assert declared_problems(parameters, given) == []
    assert declared_problems(parameters, {"MapMaxConcurrency": "10001"})
    assert declared_problems(parameters, {"MapMaxConcurrency": "0"})
    check(Stack(ROOT, overrides={"TranscodeReservedConcurrency": "-1"}))


def test_an_environment_over_lambdas_4_kb_is_refused_as_the_deploy_would_be() -> None:
    # GIVEN a playback URL the parameter's pattern allows, long enough that every function's
    # environment (the URL is in Globals) measures over 4 KB as Lambda measures it
    url = "https://cdn.example.com/" + "a" * 3500
    # WHEN the stack's parameters are checked
    with pytest.raises(ParameterError) as raised:
        check(Stack(ROOT, overrides={"PlaybackBaseUrl": url}))
    # THEN the deploy's refusal is named, once per function, with the variable to blame
    problems = raised.value.problems
    assert len(problems) == len(Stack(ROOT).functions())
    assert all("over Lambda's 4 KB limit" in p and "PlaybackBaseUrl" in p for p in problems)


def test_an_environment_near_4_kb_is_measured_as_the_longest_deployable_stack_would_be() -> None:
    def largest(stack: Stack) -> int:
        return max(
            len(json.dumps(f.environment, separators=(",", ":")).encode())
            for f in stack.functions()
        )

    # GIVEN a playback URL that brings the largest environment to exactly 4 KB as the
    # local stack (vidflow, us-east-1) resolves it
    base = "https://cdn.example.com/"
    short = largest(Stack(ROOT, overrides={"PlaybackBaseUrl": base}))
    url = base + "a" * (ENVIRONMENT_LIMIT - short)
    assert largest(Stack(ROOT, overrides={"PlaybackBaseUrl": url})) == ENVIRONMENT_LIMIT
    # WHEN it is checked / THEN it is refused: deployed as a stack with a longer name, in a
    # region with a longer name, its ARNs and bucket names make it longer
    with pytest.raises(ParameterError, match="the longest name and region"):
        check(Stack(ROOT, overrides={"PlaybackBaseUrl": url}))


def test_the_longest_stack_name_keeps_every_environment_within_4_kb() -> None:
    # CloudFormation allows 128 characters; the names made from it are in the environments.
    assert environment_problems(Stack(ROOT, name="s" * 128)) == []


def test_a_webhook_delivery_that_cannot_be_sent_says_so(caplog: pytest.LogCaptureFixture) -> None:
    from workflow.local import eventbridge

    # GIVEN a delivery that fails before any request is made (a header no HTTP carries)
    request = ("http://127.0.0.1:9/hook", "POST", {"x-api-key": "a\nb"}, b"{}")
    # WHEN it runs on the delivery pool, THEN it is logged by name, and counted as ended
    with caplog.at_level(logging.ERROR, logger=eventbridge.logger.name):
        eventbridge._queue(request)
        assert eventbridge.deliveries_settled(timeout=30)
    assert "an event could not be sent: ValueError" in caplog.text


@pytest.mark.parametrize("bucket", ["s3://my-logs/", "arn:aws:s3:::logs", "Logs_Bucket", "my logs"])
def test_an_access_log_bucket_that_is_no_bucket_name_is_refused(bucket: str) -> None:
    # (on AWS the buckets' logging configuration would fail the deploy part-way)
    with pytest.raises(ParameterError, match="parameter AccessLogBucket must be an existing"):
        check(Stack(ROOT, overrides={"AccessLogBucket": bucket}))
    check(Stack(ROOT, overrides={"AccessLogBucket": "vidflow-access-logs.example"}))
