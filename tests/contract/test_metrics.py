"""The dashboard and alarms name exactly the metrics the code emits, with its dimensions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from workflow import metrics
from workflow.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "sam-template.yaml")
RESOURCES = TEMPLATE["Resources"]
_SEARCH_NAME = re.compile(r'MetricName="([A-Za-z]+)"')


def _dashboard() -> dict[str, Any]:
    (body,) = [
        r["Properties"]["DashboardBody"]["Fn::Sub"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    return dict(json.loads(body.replace("${AWS::StackName}", "s").replace("${AWS::Region}", "r")))


def _dashboard_metrics() -> list[tuple[str, dict[str, str]]]:
    """(name, dimensions) of every vidflow metric a widget plots; a SEARCH gives its name."""
    found = []
    for widget in _dashboard()["widgets"]:
        for line in widget.get("properties", {}).get("metrics", []):
            if isinstance(line[0], dict):
                names = _SEARCH_NAME.findall(line[0]["expression"])
                found.extend((name, {"ErrorName": "*"}) for name in names)
            elif line[0] == "vidflow":
                values = [v for v in line[2:] if isinstance(v, str)]
                found.append((line[1], dict(zip(values[::2], values[1::2], strict=True))))
    return found


def _alarm_metrics() -> list[tuple[str, dict[str, str]]]:
    found = []
    for resource in RESOURCES.values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        for metric in [props, *stats]:
            if metric.get("Namespace") == "vidflow":
                dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                found.append((metric["MetricName"], dims))
    return found


def test_the_dashboard_and_alarms_name_every_emitted_metric_and_no_other() -> None:
    named = {name for name, _ in _dashboard_metrics() + _alarm_metrics()}
    assert named == set(metrics.NAMES)


def test_every_metric_listed_is_emitted_somewhere_in_the_runtime() -> None:
    sources = "\n".join(
        p.read_text() for p in (ROOT / "workflow").rglob("*.py") if p.name != "metrics.py"
    )
    constants = {v: k for k, v in vars(metrics).items() if k.isupper() and v in metrics.NAMES}
    for name, constant in constants.items():
        used = f"metrics.{constant}" in sources or (
            name == metrics.JOBS_FAILED and "metrics.job_failed(" in sources
        )
        assert used, f"{name} is listed but nothing emits it"
    assert set(constants) == set(metrics.NAMES)


def test_plotted_and_alarmed_metrics_use_the_dimensions_the_code_writes() -> None:
    # the code's records carry service and Stack on every metric, and ErrorName on the
    # by-error copy of JobsFailed only
    for name, dims in _dashboard_metrics() + _alarm_metrics():
        if "ErrorName" in dims:
            assert name == metrics.JOBS_FAILED
            continue
        assert set(dims) == {"service", "Stack"}, name
        assert dims["service"] == "vidflow"


def test_every_alarm_on_a_vidflow_metric_reads_the_stacks_own_series() -> None:
    for name, dims in _alarm_metrics():
        assert dims["Stack"] == {"Ref": "AWS::StackName"}, name


def _alarms() -> dict[str, dict[str, Any]]:
    return {n: r for n, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def _watched(props: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric name, dimensions) of every metric an alarm reads, plain or in math."""
    stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
    return [
        (m["Namespace"], m["MetricName"], {d["Name"]: d["Value"] for d in m["Dimensions"]})
        for m in [props, *stats]
        if "MetricName" in m
    ]


def test_every_state_machine_has_an_alarm_on_its_failed_and_timed_out_executions() -> None:
    # docs/deploy.md: an alarm fires on any failed execution (a clip's too: a clip that
    # failed, or one published whose event the bus never took, is seen nowhere else); an
    # execution stopped at its time limit (an Express one at 5 minutes, whose Catch never
    # runs) is counted as timed out, not failed, so the same alarm reads both
    machines = {
        name for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::StateMachine"
    }
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        watched = {
            dims["StateMachineArn"]["Ref"]
            for alarm in _alarms().values()
            for namespace, name, dims in _watched(alarm["Properties"])
            if namespace == "AWS/States" and name == metric
        }
        assert machines and machines == watched, metric


def test_every_alarm_tells_the_alarm_topic_when_it_fires_and_ends() -> None:
    # An alarm with no action only turns red in a console nobody watches at 2 a.m.
    assert RESOURCES["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    assert TEMPLATE["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}
    assert len(_alarms()) >= 8
    for name, alarm in _alarms().items():
        props = alarm["Properties"]
        assert props.get("AlarmActions") == [{"Ref": "AlarmTopic"}], name
        assert props.get("OKActions") == [{"Ref": "AlarmTopic"}], name


def test_every_function_run_outside_a_state_machine_has_its_failures_alarmed() -> None:
    # What S3 or a schedule invokes fails where no execution alarm looks: S3's go to a
    # queue that an alarm watches once their retries are spent (and an alarm watches how
    # long they wait: throttled events are retried for hours first), a scheduled one
    # fails in its log only, so an alarm reads its Errors.
    queues = {
        dims["QueueName"]["Fn::GetAtt"][0]
        for alarm in _alarms().values()
        for namespace, name, dims in _watched(alarm["Properties"])
        if namespace == "AWS/SQS" and name == "ApproximateNumberOfMessagesVisible"
    }
    lambda_alarms = {
        (name, dims["FunctionName"]["Ref"])
        for alarm in _alarms().values()
        for namespace, name, dims in _watched(alarm["Properties"])
        if namespace == "AWS/Lambda"
    }
    kinds: dict[str, set[str]] = {}
    for function, resource in RESOURCES.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        for event in props.get("Events", {}).values():
            kinds.setdefault(event["Type"], set()).add(function)
            if event["Type"] == "S3":
                failure = props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
                assert failure["Destination"]["Fn::GetAtt"][0] in queues, function
                assert ("AsyncEventAge", function) in lambda_alarms, function
            elif event["Type"] in ("Schedule", "ScheduleV2", "EventBridgeRule"):
                assert ("Errors", function) in lambda_alarms, function
    assert kinds["S3"] == {"StartJobFunction", "LiveIngestFunction"}
    assert kinds["Schedule"] == {"LiveSweepFunction", "ReconcileFunction"}


def test_the_webhook_s_given_up_deliveries_are_alarmed_by_its_rule_s_name() -> None:
    # EventBridge drops an event the endpoint refuses with most 4xx at once, unretried:
    # its FailedInvocations, on a custom bus, carry the bus's and the rule's names
    rule = RESOURCES["WebhookRule"]
    ((alarm_name, alarm),) = [
        (n, a)
        for n, a in _alarms().items()
        if ("AWS/Events", "FailedInvocations")
        in {(ns, name) for ns, name, _ in _watched(a["Properties"])}
    ]
    assert alarm["Condition"] == rule["Condition"] == "HasWebhook", alarm_name
    ((_, _, dims),) = _watched(alarm["Properties"])
    assert dims == {
        "EventBusName": rule["Properties"]["EventBusName"],
        "RuleName": rule["Properties"]["Name"],
    }
