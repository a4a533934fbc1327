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


def test_every_state_machine_has_an_alarm_on_its_failed_executions() -> None:
    # docs/deploy.md: an alarm fires on any failed execution (a clip's too: a clip that
    # failed, or one published whose event the bus never took, is seen nowhere else)
    machines = {
        name for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::StateMachine"
    }
    watched = {
        dimension["Value"]["Ref"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("Namespace") == "AWS/States"
        and r["Properties"].get("MetricName") == "ExecutionsFailed"
        for dimension in r["Properties"]["Dimensions"]
        if dimension["Name"] == "StateMachineArn"
    }
    assert machines and machines == watched
