"""The records functions log in CloudWatch's embedded metric format, read back and checked
against the format's specification (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
CloudWatch_Embedded_Metric_Format_Specification.html)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema

from workflow.cli.dashboard import emf_record

UNITS = [
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
]  # fmt: skip
_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
SCHEMA = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": {**_NAME, "pattern": r"^[^:].*$"},
                            "Dimensions": {
                                "type": "array",
                                "items": {"type": "array", "items": _NAME, "maxItems": 30},
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {
                                        "Name": {
                                            "type": "string",
                                            "minLength": 1,
                                            "maxLength": 1024,
                                        },
                                        "Unit": {"enum": UNITS},
                                        "StorageResolution": {"enum": [1, 60]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def check(record: dict[str, Any]) -> dict[str, Any]:
    """``record``, once it is valid EMF: the schema, and every dimension and metric it
    names is a member of the record with a value of the right kind."""
    jsonschema.validate(record, SCHEMA)
    for directive in record["_aws"]["CloudWatchMetrics"]:
        for dimensions in directive["Dimensions"]:
            for name in dimensions:
                assert isinstance(record.get(name), str), f"dimension {name} is not a member"
        for metric in directive["Metrics"]:
            value = record.get(metric["Name"])
            values = value if isinstance(value, list) else [value]
            assert 1 <= len(values) <= 100, metric["Name"]
            assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    return record


def records(log_file: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every EMF record in the functions' log: (function's logical id, record)."""
    found = []
    for line in log_file.read_text().splitlines():
        function, _, text = line.partition("] ")
        record = emf_record(text)
        if record is not None:
            found.append((function.lstrip("["), record))
    return found


def total(found: list[tuple[str, dict[str, Any]]], metric: str, **match: Any) -> float:
    """The sum of ``metric`` over the records whose members have every ``match`` value,
    counting only its records without an extra dimension (ErrorName)."""
    summed = 0.0
    for _, record in found:
        if any(record.get(k) != v for k, v in match.items()) or "ErrorName" in record:
            continue
        value = record.get(metric)
        if value is not None:
            summed += sum(value) if isinstance(value, list) else value
    return summed
