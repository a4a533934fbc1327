"""The AWS list prices vidflow's cost estimates use: one table, each price with its source.

``vidflow executions show``, the console and ``bench/cloud_model.py`` all price a job from
here. They are on-demand list prices in us-east-1, without the free tier: an estimate,
not a bill.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str


LAMBDA_GB_SECOND = Price(
    0.0000166667,
    "GB-second of Lambda compute",
    "aws.amazon.com/lambda/pricing: x86, us-east-1, first 6 billion GB-seconds a month",
)
LAMBDA_REQUEST = Price(
    0.0000002,
    "Lambda request",
    "aws.amazon.com/lambda/pricing: $0.20 per million requests",
)
STANDARD_TRANSITION = Price(
    0.000025,
    "Standard workflow state transition",
    "aws.amazon.com/step-functions/pricing: $0.025 per 1,000 state transitions, us-east-1",
)
