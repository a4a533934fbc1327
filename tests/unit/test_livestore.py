"""The live state table: arrivals once, one playlist writer at a time, nothing missed.

The table is built from the template's own properties in moto's in-memory DynamoDB.
"""

from __future__ import annotations

import json
import random
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.unit.tables import create_table
from workflow.errors import StreamEndedError, StreamNotReadyError, TransientError
from workflow.live.rules import Anchor, Arrival, Entry, LivePlaylist, advance, render
from workflow.live.store import (
    CLAIM_SECONDS,
    Saved,
    Stored,
    StreamTable,
    failed_attempt,
    replaces,
    upload_of,
)
from workflow.local.template import Stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def table() -> Iterator[StreamTable]:
    with mock_aws():
        client = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            aws_access_key_id="unit",
            aws_secret_access_key="unit",
        )
        name = create_table(client, Stack(ROOT), "LiveTable")
        yield StreamTable(client, name)


def test_an_arrival_is_recorded_once(table: StreamTable) -> None:
    table.create("game")
    assert table.record_arrival("game", 3, {"duration": 4.0, "at": 1.0, "failed": False})
    # a duplicate delivery (or a retried step) keeps the first arrival
    assert not table.record_arrival("game", 3, {"duration": 9.0, "at": 2.0, "failed": False})
    assert table.arrivals("game") == {3: {"duration": 4.0, "at": 1.0, "failed": False}}
    assert table.arrival("game", 3) == {"duration": 4.0, "at": 1.0, "failed": False}
    assert table.arrival("game", 4) is None


def test_a_change_to_a_stream_no_probe_created_is_said_by_name(table: StreamTable) -> None:
    # GIVEN no record of the stream (LivePublish invoked before LiveProbe, as
    # `vidflow invoke` can) / WHEN a change is counted / THEN the workflow's error, not
    # DynamoDB's ConditionalCheckFailedException
    with pytest.raises(StreamNotReadyError, match="stream game has no record"):
        table.count_change("game")
    assert table.get("game") is None


def test_a_failed_segment_gives_way_to_another_upload_of_it_only(table: StreamTable) -> None:
    # GIVEN a segment whose first upload failed (a gateway that writes 0 bytes first)
    table.create("game")
    empty = {"etag": "d41d8cd98f00b204e9800998ecf8427e"}
    mended = {"etag": "0123456789abcdef0123456789abcdef"}
    failed = {"duration": None, "at": 1.0, "failed": True, "upload": upload_of(empty)}
    assert table.record_arrival("game", 3, failed)
    # THEN a second delivery of that upload's event is a duplicate, a new upload is not
    assert not replaces(table.arrival("game", 3) or {}, empty)
    assert replaces(table.arrival("game", 3) or {}, mended)
    assert not table.record_arrival("game", 3, {**failed, "at": 2.0})
    good = {"duration": 1.0, "at": 3.0, "failed": False, "upload": upload_of(mended)}
    # (the write says which failed arrival it replaced: its failure record is stale)
    assert table.store_arrival("game", 3, good) == Stored(True, failed)
    assert table.arrivals("game") == {3: good}
    assert table.store_arrival("other", 3, good) == Stored(True, None)
    # AND once published, nothing takes its place: not the failed upload's event again
    assert not replaces(good, empty)
    assert not table.record_arrival("game", 3, {**failed, "at": 4.0})
    assert not table.record_arrival("game", 3, {**good, "at": 5.0})
    assert table.arrivals("game") == {3: good}
    # AND the refused write says whether the standing arrival is still to be counted
    assert table.store_arrival("game", 3, good) == Stored(False, uncounted=True)
    assert table.count_published("game", 3, good["upload"])
    assert table.store_arrival("game", 3, good) == Stored(False, uncounted=False)
    # AND it is counted once: a second count (a duplicate that found it uncounted too)
    # counts nothing
    assert not table.count_published("game", 3, good["upload"])
    assert table.published("game") == 1


def test_a_segment_failed_for_want_of_time_gives_way_to_the_same_upload(
    table: StreamTable,
) -> None:
    # GIVEN a segment whose upload ran out of time: to be tried again
    table.create("game")
    upload = {"etag": "0123456789abcdef0123456789abcdef"}
    noted = failed_attempt("Sandbox.Timedout", upload_of(upload), None)
    assert noted == {"attempt": 1, "try_again": True}
    failed = {"duration": None, "at": 1.0, "failed": True, "upload": upload_of(upload), **noted}
    assert table.record_arrival("game", 3, failed)
    # THEN that very upload, tried again, may take its place, and publish
    assert replaces(table.arrival("game", 3) or {}, upload)
    good = {"duration": 1.0, "at": 3.0, "failed": False, "upload": upload_of(upload)}
    assert table.record_arrival("game", 3, good)
    assert table.arrivals("game") == {3: good}
    # AND attempts are counted per upload; the last is not tried again, nor is a
    # failure that says something against the bytes
    again = failed_attempt("Sandbox.Timedout", upload_of(upload), failed)
    assert again == {"attempt": 2, "try_again": True}
    last = failed_attempt("Sandbox.Timedout", upload_of(upload), {**failed, "attempt": 2})
    assert last == {"attempt": 3, "try_again": False}
    assert failed_attempt("NotAVideoError", upload_of(upload), None)["try_again"] is False
    assert failed_attempt("Sandbox.Timedout", "/other", failed)["attempt"] == 1


def test_an_upload_is_known_by_its_version_where_there_is_one() -> None:
    assert upload_of({"version_id": "v2", "etag": "e"}) != upload_of(
        {"version_id": "v1", "etag": "e"}
    )
    assert upload_of({"version_id": "null", "etag": "e"}) == upload_of({"etag": "e"})
    assert upload_of(None) == upload_of({})


def test_arrivals_are_read_from_a_sequence_on_and_streams_do_not_mix(table: StreamTable) -> None:
    for stream in ("a", "b"):
        table.create(stream)
    for sequence in (0, 1, 2, 10, 100000):
        table.record_arrival("a", sequence, {"n": sequence})
    table.record_arrival("b", 5, {"n": 5})
    assert sorted(table.arrivals("a", 2)) == [2, 10, 100000]
    assert sorted(table.arrivals("b")) == [5]


def test_settings_are_fixed_by_the_first_segment(table: StreamTable) -> None:
    first = table.configure("game", {"window": 0})
    again = table.configure("game", {"window": 5})
    assert first.config == again.config == {"window": 0}


def test_only_one_writer_holds_the_lease_until_it_expires(table: StreamTable) -> None:
    table.create("game")
    assert table.acquire("game", "w1", now=100.0, lease_seconds=60)
    assert not table.acquire("game", "w2", now=120.0, lease_seconds=60)
    # a writer that died leaves a lease that expires
    assert table.acquire("game", "w2", now=161.0, lease_seconds=60)
    assert table.save("game", "w1", {"ended": False}, seen=0) is Saved.LOST


def test_a_writer_keeps_the_lease_while_arrivals_keep_coming(table: StreamTable) -> None:
    table.create("game")
    assert table.acquire("game", "w1", now=0.0, lease_seconds=60)
    seen = table.get("game")
    assert seen is not None
    # GIVEN an arrival bumps the stream while w1 works
    table.count_change("game")
    # THEN w1 stores its state but must look again, still holding the lease
    assert table.save("game", "w1", {"ended": False, "n": 1}, seen.pending) is Saved.LOOK_AGAIN
    assert not table.acquire("game", "w2", now=1.0, lease_seconds=60)
    current = table.get("game")
    assert current is not None and current.state == {"ended": False, "n": 1}
    # AND once it has seen everything, it lets go
    assert table.save("game", "w1", {"ended": False, "n": 2}, current.pending) is Saved.RELEASED
    assert table.acquire("game", "w2", now=1.0, lease_seconds=60)


def test_a_closed_stream_leaves_the_open_index(table: StreamTable) -> None:
    for stream in ("a", "b"):
        table.create(stream)
    assert sorted(table.open_streams()) == ["a", "b"]
    assert table.acquire("a", "w", now=0.0, lease_seconds=60)
    assert table.save("a", "w", {"ended": True}, seen=0) is Saved.RELEASED
    assert table.open_streams() == ["b"]
    record = table.get("a")
    assert record is not None and record.closed


def test_the_end_marker_is_kept_once(table: StreamTable) -> None:
    table.create("game")
    assert table.mark_ended("game", {"last_sequence": 9, "at": 1.0})
    assert not table.mark_ended("game", {"last_sequence": 12, "at": 2.0})
    record = table.get("game")
    assert record is not None and record.ending == {"last_sequence": 9, "at": 1.0}


def test_a_stream_ends_at_or_past_every_segment_admitted_for_publishing(
    table: StreamTable,
) -> None:
    # GIVEN segment 4 admitted for publishing (its arrival not stored yet)
    table.create("game")
    table.admit("game", 4)
    table.admit("game", 2)  # (one below it, late: admitted too)
    # WHEN an ending at segment 3 is to be recorded / THEN it is refused, for the caller
    # to look again
    assert not table.mark_ended("game", {"last_sequence": 3, "at": 1.0})
    assert table.require("game").ending is None
    # AND once the stream ended at 4, a segment past it is refused by name; one within
    # it is still admitted
    assert table.mark_ended("game", {"last_sequence": 4, "at": 1.0})
    with pytest.raises(
        StreamEndedError, match="segment 5 came after the stream ended at segment 4:"
    ):
        table.admit("game", 5)
    table.admit("game", 3)
    assert table.require("game").admitted == 4


def test_concurrent_publishers_never_leave_an_arrival_unseen(table: StreamTable) -> None:
    # GIVEN the publish protocol: record, bump, then try to write; the writer looks
    # again while the counter moved. Many publishers race on one stream.
    table.create("game")
    written: list[set[int]] = []
    lock = threading.Lock()

    def publish(sequence: int) -> None:
        table.record_arrival("game", sequence, {"n": sequence})
        table.count_change("game")
        owner = f"w{sequence}"
        while True:
            if not table.acquire("game", owner, now=0.0, lease_seconds=3600):
                return
            record = table.get("game")
            assert record is not None
            arrivals = set(table.arrivals("game"))
            with lock:
                written.append(arrivals)
            if table.save("game", owner, {"ended": False}, record.pending) is not Saved.LOOK_AGAIN:
                return

    # WHEN 40 segments are published by 8 concurrent workers
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(publish, range(40)))
    # THEN the last write saw every arrival, and the lease is free
    assert written[-1] == set(range(40))
    assert table.acquire("game", "after", now=0.0, lease_seconds=60)


def test_a_failed_writer_gives_the_lease_up_at_once(table: StreamTable) -> None:
    table.create("game")
    assert table.acquire("game", "w1", now=0.0, lease_seconds=60)
    table.release("game", "w2")  # not the holder: nothing happens
    assert not table.acquire("game", "w3", now=1.0, lease_seconds=60)
    table.release("game", "w1")
    assert table.acquire("game", "w3", now=1.0, lease_seconds=60)


def test_a_stream_without_a_record_is_named_not_asserted(table: StreamTable) -> None:
    from workflow.errors import StreamNotReadyError

    with pytest.raises(StreamNotReadyError, match="no record"):
        table.require("nobody")
    table.create("game")
    assert table.require("game").config is None


def test_a_day_of_one_second_segments_fits_the_stream_record(table: StreamTable) -> None:
    # GIVEN an EVENT playlist of 24 h of 1 s segments at 29.97 fps (durations as an
    # encoder cuts them), with a gap and a discontinuity now and then
    lengths = (1.001, 1.001, 0.968, 1.034, 1.001)
    arrivals = {
        n: Arrival(lengths[n % 5], 0.0, failed=n % 997 == 0, start=n * 1.001, end=n * 1.001 + 1)
        for n in range(86_400)
    }
    playlist = advance(
        LivePlaylist(), arrivals, now=1.0, gap_after=3.0, window=0, nominal_duration=1.0
    )
    assert len(playlist.entries) == 86_400 and playlist.gaps == 87
    # WHEN its writer stores it (DynamoDB holds at most 400 KB in one item)
    table.create("day")
    assert table.acquire("day", "w", now=0.0, lease_seconds=60)
    assert table.save("day", "w", playlist.to_dict(), seen=0) is Saved.RELEASED
    # THEN it reads back as it was
    record = table.get("day")
    assert record is not None and record.state is not None
    assert LivePlaylist.from_dict(record.state) == playlist


def test_36_hours_of_one_second_segments_of_any_length_fit_the_stream_record(
    table: StreamTable,
) -> None:
    # GIVEN the longest EVENT playlist promised (36 h of 1 s segments), every length
    # different to the microsecond (a variable frame rate: anything a 1 s target lets
    # through), a gap and an encoder restart now and then, a gap's length as the
    # outage's clock shares it out
    lengths = random.Random(36)
    playlist = LivePlaylist(
        0,
        tuple(
            Entry(
                n,
                1 / 3 if n % 997 == 0 else round(lengths.uniform(0.0, 1.499999), 6),
                gap=n % 997 == 0,
                discontinuity=n % 1009 == 0,
            )
            for n in range(36 * 3600)
        ),
        gaps=131,
        anchor=Anchor(123456.789012, "h264/1280x720", 1 / 3),
    )
    state = playlist.to_dict() | {"active": 1.8e9}
    # WHEN its writer stores it
    table.create("long")
    assert table.acquire("long", "w", now=0.0, lease_seconds=60)
    assert table.fits(state)
    assert table.save("long", "w", state, seen=0) is Saved.RELEASED
    # THEN it reads back with every duration a playlist shows
    record = table.get("long")
    assert record is not None and record.state is not None
    again = LivePlaylist.from_dict(record.state)
    assert again.anchor == playlist.anchor
    assert render(again, target_duration=1, window=0) == render(
        playlist, target_duration=1, window=0
    )


def test_a_state_an_older_deploy_stored_reads_back(table: StreamTable) -> None:
    playlist = LivePlaylist(3, (Entry(3, 1.001), Entry(4, 0.968, gap=True)), gaps=1)
    table.client.put_item(
        TableName=table.name,
        Item={
            "stream": {"S": "old"},
            "item": {"S": "stream"},
            "pending": {"N": "0"},
            "state": {"B": zlib.compress(json.dumps(playlist.to_dict()).encode())},
        },
    )
    record = table.get("old")
    assert record is not None and record.state is not None
    assert LivePlaylist.from_dict(record.state) == playlist


def test_an_uploads_claim_on_a_segment_holds_until_it_ends_or_runs_out(table: StreamTable) -> None:
    table.create("game")
    first, second = upload_of({"etag": "a" * 32}), upload_of({"etag": "b" * 32})
    # GIVEN upload A's claim on segment 3, made at t=100
    assert table.claim("game", 3, first, now=100.0).made
    # THEN A claims it again (a step tried again: the claim runs from then), B is
    # refused and told whose it is
    assert table.claim("game", 3, first, now=110.0).made
    refused = table.claim("game", 3, second, now=110.0 + CLAIM_SECONDS - 1)
    assert (refused.made, refused.holder, refused.arrival) == (False, "a" * 32, None)
    # AND a claim is no arrival: the playlists see none
    assert table.arrival("game", 3) is None and table.arrivals("game") == {}
    # AND once it ran out (its execution is over), B takes it, and A may not publish
    assert table.claim("game", 3, second, now=110.0 + CLAIM_SECONDS + 1).made
    arrival = {"duration": 1.0, "at": 1.0, "failed": False}
    assert not table.record_arrival("game", 3, {**arrival, "upload": first})
    assert table.record_arrival("game", 3, {**arrival, "upload": second})
    # AND the arrival ends the claim: no upload may claim a published segment's files
    for upload in (first, second):
        stood = table.claim("game", 3, upload, now=110.0 + CLAIM_SECONDS + 2)
        assert (stood.made, stood.arrival) == (False, {**arrival, "upload": second})


def test_a_failed_uploads_claim_stands_until_it_runs_out(table: StreamTable) -> None:
    table.create("game")
    first, second = upload_of({"etag": "a" * 32}), upload_of({"etag": "b" * 32})
    # GIVEN upload A's claim, made twice (its event delivered twice: two executions)
    assert table.claim("game", 3, first, now=100.0).made
    assert table.claim("game", 3, first, now=100.5).made
    # WHEN one execution's attempt fails, recorded as a failed arrival
    failed = {"duration": None, "at": 1.0, "failed": True, "upload": first}
    assert table.record_arrival("game", 3, failed)
    # THEN the claim stands (the other may still be writing A's files): B is refused
    assert table.claim("game", 3, second, now=101.0).holder == "a" * 32
    # AND once it ran out, B, a mended upload, takes the segment and replaces the failure
    assert table.claim("game", 3, second, now=100.5 + CLAIM_SECONDS + 1).made
    assert table.record_arrival("game", 3, {**failed, "failed": False, "upload": second})
    assert (table.arrival("game", 3) or {})["upload"] == second


def test_the_same_bytes_uploaded_again_share_their_claim(table: StreamTable) -> None:
    # GIVEN segment 3's bytes claimed as upload version v1, then sent again as v2
    table.create("game")
    first = upload_of({"etag": "a" * 32, "version_id": "v1"})
    again = upload_of({"etag": "a" * 32, "version_id": "v2"})
    other = upload_of({"etag": "b" * 32})
    assert table.claim("game", 3, first, now=100.0).made
    # THEN the second shares the claim (both write the same files)
    assert table.claim("game", 3, again, now=101.0).made
    # AND a failure of either ends nothing: other bytes still may not write over them
    assert table.record_arrival("game", 3, {"failed": True, "upload": first})
    assert table.claim("game", 3, other, now=102.0).holder == "a" * 32
    # AND the other one's arrival takes the failed one's place, and ends the claim
    assert table.record_arrival("game", 3, {"failed": False, "upload": again})
    stood = table.claim("game", 3, other, now=103.0)
    assert (stood.made, stood.arrival) == (False, {"failed": False, "upload": again})


def test_a_claim_that_keeps_changing_under_it_is_tried_again_later(
    table: StreamTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a claim refused each time, and gone each time it is looked at (others' claims
    # made and ended between the two)
    refused = table.client.exceptions.ConditionalCheckFailedException(
        {"Error": {"Code": "ConditionalCheckFailedException"}}, "UpdateItem"
    )

    def update_item(**_: object) -> None:
        raise refused

    monkeypatch.setattr(table.client, "update_item", update_item)
    # THEN the encode is told to try again (its state retries it), not refused
    with pytest.raises(TransientError, match="its claim kept changing"):
        table.claim("game", 3, upload_of({"etag": "a" * 32}), now=100.0)


def test_a_count_cancelled_by_another_write_at_once_counts_nothing_and_is_tried_again(
    table: StreamTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stored arrival, not yet counted
    table.create("game")
    good = {"duration": 1.0, "at": 1.0, "failed": False, "upload": "/e"}
    assert table.store_arrival("game", 3, good).new
    # WHEN its count is cancelled because another write of the stream record ran at once
    # (DynamoDB's TransactionConflict)
    cancelled = table.client.exceptions.TransactionCanceledException(
        {"Error": {"Code": "TransactionCanceledException"},
         "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}]},
        "TransactWriteItems",
    )  # fmt: skip

    def transact_write_items(**_: object) -> None:
        raise cancelled

    with monkeypatch.context() as patched:
        patched.setattr(table.client, "transact_write_items", transact_write_items)
        # THEN the publish is told to try again (its retry counts it), not that another
        # run counted it
        with pytest.raises(TransientError, match="TransactionConflict"):
            table.count_published("game", 3, "/e")
    assert table.published("game") == 0
    assert table.store_arrival("game", 3, good) == Stored(False, uncounted=True)
    assert table.count_published("game", 3, "/e")
    assert table.published("game") == 1
