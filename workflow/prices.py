"""The AWS list prices vidflow's cost estimates use: one table, each price with its source.

The `Job Published` event, ``vidflow executions show``, the console and
``bench/cloud_model.py`` all price a job from here, and ``bench/live_model.py`` a live
stream-hour. They are on-demand list prices in
us-east-1, without the free tier: an estimate, not a bill.
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
# What the live model (bench/live_model.py) prices besides Lambda.
EXPRESS_REQUEST = Price(
    0.000001,
    "Express workflow request (execution started)",
    "aws.amazon.com/step-functions/pricing: Express, $1.00 per million requests, us-east-1",
)
EXPRESS_GB_SECOND = Price(
    0.00001667,
    "GB-second of Express workflow duration",
    "aws.amazon.com/step-functions/pricing: Express, $0.06 per GB-hour for the first 1,000 "
    "GB-hours a month (memory in 64 MB steps, duration rounded up to 100 ms), us-east-1",
)
DYNAMODB_WRITE_REQUEST = Price(
    0.000000625,
    "DynamoDB on-demand write request unit (1 KB)",
    "aws.amazon.com/dynamodb/pricing/on-demand: $0.625 per million write request units "
    "(since the November 2024 price cut), us-east-1",
)
DYNAMODB_READ_REQUEST = Price(
    0.000000125,
    "DynamoDB on-demand read request unit (4 KB strongly consistent)",
    "aws.amazon.com/dynamodb/pricing/on-demand: $0.125 per million read request units, us-east-1",
)
S3_PUT_REQUEST = Price(
    0.000005,
    "S3 Standard PUT, COPY, POST or LIST request",
    "aws.amazon.com/s3/pricing: $0.005 per 1,000 requests, us-east-1",
)
S3_GET_REQUEST = Price(
    0.0000004,
    "S3 Standard GET, HEAD and other requests",
    "aws.amazon.com/s3/pricing: $0.0004 per 1,000 requests, us-east-1",
)
S3_GB_MONTH = Price(
    0.023,
    "GB-month of S3 Standard storage",
    "aws.amazon.com/s3/pricing: first 50 TB a month, us-east-1",
)
LOGS_INGESTED_GB = Price(
    0.50,
    "GB of CloudWatch Logs ingested (standard class)",
    "aws.amazon.com/cloudwatch/pricing: logs, collect (data ingestion), us-east-1",
)
