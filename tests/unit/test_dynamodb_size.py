"""The item size patch: moto refuses an item past DynamoDB's limit as AWS does, counting
an attribute that an update replaces once (by its new value)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from workflow.local import dynamodb_size


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    dynamodb_size.install()
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="u", aws_secret_access_key="u"
        )
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def replace_state(client: Any, size: int) -> None:
    client.update_item(
        TableName="t",
        Key={"k": {"S": "stream"}},
        UpdateExpression="SET #s = :s, pending = :p",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":s": {"B": os.urandom(size)}, ":p": {"N": "7"}},
    )


def test_an_attribute_replaced_again_and_again_counts_once(dynamodb: Any) -> None:
    # GIVEN an item whose state of 390 KB (the live stream record's, near its bound)
    # is replaced by another on every segment, THEN each update is taken, as on AWS
    for _ in range(3):
        replace_state(dynamodb, 390_000)
    item = dynamodb.get_item(TableName="t", Key={"k": {"S": "stream"}})["Item"]
    assert len(item["state"]["B"]) == 390_000


def test_an_item_past_the_limit_is_still_refused(dynamodb: Any) -> None:
    replace_state(dynamodb, 200_000)
    # an update that makes the item itself too large
    with pytest.raises(ClientError, match=r"ValidationException.*Item size to update"):
        replace_state(dynamodb, 405_000)
    # a new attribute beside one that stays
    with pytest.raises(ClientError, match="ValidationException"):
        dynamodb.update_item(
            TableName="t",
            Key={"k": {"S": "stream"}},
            UpdateExpression="SET other = :o",
            ExpressionAttributeValues={":o": {"B": os.urandom(210_000)}},
        )
    with pytest.raises(ClientError, match=r"ValidationException.*Item size has exceeded"):
        dynamodb.put_item(TableName="t", Item={"k": {"S": "big"}, "b": {"B": os.urandom(405_000)}})
