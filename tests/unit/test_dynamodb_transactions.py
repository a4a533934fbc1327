"""The transactions patch: a transaction in the local stack copies and puts back only the
items it names, never a whole table (the live table holds every stream's arrivals)."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.unit.tables import create_table
from workflow.live.store import StreamTable
from workflow.local import dynamodb_transactions
from workflow.local.template import Stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def table() -> Iterator[StreamTable]:
    dynamodb_transactions.install()
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="u", aws_secret_access_key="u"
        )
        yield StreamTable(client, create_table(client, Stack(ROOT), "LiveTable"))


def test_a_count_copies_the_items_it_writes_not_the_table(
    table: StreamTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stream of 200 arrivals, the last not yet counted
    table.create("game")
    arrival = {"duration": 1.0, "at": 1.0, "failed": False, "upload": "/e"}
    for sequence in range(200):
        table.client.put_item(
            TableName=table.name,
            Item={
                **table._key("game", f"seg#{sequence:012d}"),
                "arrival": {"S": json.dumps(arrival)},
            },
        )
    assert table.store_arrival("game", 200, arrival).new
    copied: list[Any] = []
    deepcopy = copy.deepcopy

    def counted_copy(thing: Any, *args: Any) -> Any:
        copied.append(thing)
        return deepcopy(thing, *args)

    monkeypatch.setattr(copy, "deepcopy", counted_copy)
    # WHEN it is counted, and counted again (a duplicate: cancelled)
    assert table.count_published("game", 200, "/e")
    assert not table.count_published("game", 200, "/e")
    monkeypatch.undo()
    # THEN neither copied the table of 202 items (only items)
    assert copied and not [c for c in copied if type(c).__name__ == "Table"]
    # AND the cancelled one put back what its first action had written (the stream record
    # counted once), leaving every other item as it was
    assert table.published("game") == 1
    assert table.store_arrival("game", 200, arrival).uncounted is False
    assert len(table.arrivals("game")) == 201


def test_a_cancelled_transaction_keeps_what_others_wrote_meanwhile(table: StreamTable) -> None:
    # GIVEN an arrival counted already, and another stored while a duplicate's count runs
    table.create("game")
    arrival = {"duration": 1.0, "at": 1.0, "failed": False, "upload": "/e"}
    assert table.store_arrival("game", 0, arrival).new
    assert table.count_published("game", 0, "/e")
    from moto.dynamodb.models import DynamoDBBackend

    backend_get = DynamoDBBackend.get_item
    stored: list[bool] = []

    def another_writes_meanwhile(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not stored:
            stored.append(False)
            stored[0] = table.store_arrival("game", 1, arrival).new
        return backend_get(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(DynamoDBBackend, "get_item", another_writes_meanwhile)
        # WHEN the duplicate's count is cancelled (it was counted)
        assert not table.count_published("game", 0, "/e")
    # THEN the arrival written meanwhile stands (moto put the whole table back over it)
    assert stored == [True]
    assert sorted(table.arrivals("game")) == [0, 1]
    assert table.published("game") == 1


def test_two_counts_of_one_segment_at_once_count_it_once(table: StreamTable) -> None:
    # GIVEN an arrival not yet counted, and moto's transaction held up after its copies
    # are made (as a request thread of the local stack can be, by another's)
    table.create("game")
    arrival = {"duration": 1.0, "at": 1.0, "failed": False, "upload": "/e"}
    assert table.store_arrival("game", 0, arrival).new
    moto_transaction = dynamodb_transactions._replaced["DynamoDBBackend.transact_write_items"]
    first_inside, second_done = threading.Event(), threading.Event()

    def held_up(backend: Any, items: Any) -> Any:
        if not first_inside.is_set():
            first_inside.set()
            # the other count runs now where nothing serializes them
            second_done.wait(2)
        return moto_transaction(backend, items)

    counted: list[bool] = []

    def count() -> None:
        counted.append(table.count_published("game", 0, "/e"))
        second_done.set()

    with pytest.MonkeyPatch.context() as patched:
        patched.setitem(
            dynamodb_transactions._replaced, "DynamoDBBackend.transact_write_items", held_up
        )
        # WHEN two runs of the upload count it at once
        first = threading.Thread(
            target=lambda: counted.append(table.count_published("game", 0, "/e"))
        )
        first.start()
        assert first_inside.wait(10)
        second = threading.Thread(target=count)
        second.start()
        first.join(10)
        second.join(10)
    # THEN one of them counted it, once, and it stays counted (a cancelled one put back
    # its copies over the other's committed count before)
    assert sorted(counted) == [False, True]
    assert table.published("game") == 1
    assert table.store_arrival("game", 0, arrival).uncounted is False
