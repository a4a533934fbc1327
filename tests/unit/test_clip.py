"""Clip planning: which segments a span of stream time takes, and where each is cut."""

from __future__ import annotations

import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.records import stream_settings
from workflow import events
from workflow.errors import ClipRangeError, ClipRequestError, InputTooLargeError
from workflow.live.clip import MAX_JOINED_BYTES, ClipRequest, _fits_scratch, make_clip, plan_clip
from workflow.live.paths import MAX_RECORD_BYTES, ClipPaths, clip_execution_name, parse_clip_key
from workflow.live.rules import Entry
from workflow.local.template import Stack
from workflow.runtime import Clients
from workflow.settings import Settings


def entries(
    *durations: float, gaps: tuple[int, ...] = (), breaks: tuple[int, ...] = ()
) -> list[Entry]:
    return [Entry(n, d, n in gaps, n in breaks) for n, d in enumerate(durations)]


def test_a_span_inside_the_stream_cuts_only_its_two_ends() -> None:
    # GIVEN five 2 s segments, and 2.5 s to 7.3 s asked for
    cuts = plan_clip(entries(2, 2, 2, 2, 2), 2.5, 7.3)
    # THEN segment 1 is cut from 0.5 s, 2 is whole, 3 is cut at 1.3 s
    assert [(c.sequence, c.cut_in, round(c.cut_out, 6), c.whole) for c in cuts] == [
        (1, 0.5, 2.0, False), (2, 0.0, 2.0, True), (3, 0.0, 1.3, False)
    ]  # fmt: skip
    assert sum(c.length for c in cuts) == pytest.approx(4.8)


def test_bounds_on_segment_edges_take_whole_segments() -> None:
    cuts = plan_clip(entries(2, 2, 2), 2.0, 6.0)
    assert [(c.sequence, c.whole) for c in cuts] == [(1, True), (2, True)]
    # and a span inside one segment cuts it at both ends
    (one,) = plan_clip(entries(4, 4), 4.5, 5.0)
    assert (one.sequence, one.cut_in, one.cut_out, one.whole) == (1, 0.5, 1.0, False)


def test_a_discontinuity_inside_the_clip_is_kept_and_the_first_starts_none() -> None:
    cuts = plan_clip(entries(2, 2, 2, 2, breaks=(1, 3)), 2.5, 7.0)
    assert [(c.sequence, c.discontinuity) for c in cuts] == [(1, False), (2, False), (3, True)]


def test_a_span_past_what_is_published_or_across_a_gap_is_a_named_error() -> None:
    with pytest.raises(ClipRangeError, match=r"6\.000 s of the stream is published"):
        plan_clip(entries(2, 2, 2), 5.0, 6.5)
    with pytest.raises(ClipRangeError, match=r"crosses a gap at 2\.000 s"):
        plan_clip(entries(2, 2, 2, gaps=(1,)), 1.0, 5.0)
    # a span too thin to hold a frame, at the live edge, is one too
    with pytest.raises(ClipRangeError, match="holds no frame"):
        plan_clip(entries(2, 2, 2), 5.9996, 6.0004)
    # a span that ends where the gap starts is fine
    assert [c.sequence for c in plan_clip(entries(2, 2, 2, gaps=(1,)), 1.0, 2.0)] == [0]


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b'{"from": 1}', b'{"from": "a", "to": 2}', b'{"from": 3, "to": 2}',
     b'{"from": -1, "to": 2}', b'{"from": 0, "to": NaN}', b'{"from": 0, "to": 601}',
     b'{"from": 0, "to": 1' + b"0" * 400 + b"}", b"[" * 100_000 + b"]" * 100_000,
     # seconds are JSON numbers: not strings, not booleans
     b'{"from": "1", "to": "5"}', b'{"from": true, "to": 5}', b'{"from": 0, "to": "5 "}',
     # a field it does not know (a typo, an option clips do not have), or one named twice
     # (which of the two would it be?), is not taken as the span it may not be
     b'{"from": 1, "to": 5, "speed": 2}', b'{"from": 1, "to": 5, "form": 2}',
     b'{"from": 1, "to": 5, "to": 500}', b'{"from": 1, "from": 1, "to": 5}'],
)  # fmt: skip
def test_a_request_that_is_not_a_sensible_span_is_a_named_error(body: bytes) -> None:
    with pytest.raises(ClipRequestError):
        ClipRequest.parse(body)


def test_a_request_past_its_bound_is_a_named_error_before_anything_else() -> None:
    # GIVEN a sensible span padded past what a clip request may hold (one of gigabytes
    # would end the Clip function out of memory)
    body = b'{"from": 0, "to": 1}' + b" " * MAX_RECORD_BYTES
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("ingest", "out"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket="ingest", Key="clips/game/dunk.json", Body=body)
        request = {"bucket": "ingest", "key": "clips/game/dunk.json", "etag": ""}
        event = {"stream": "game", "name": "dunk", "request": request}
        # WHEN it is made / THEN it is refused by name, having looked at nothing more
        with pytest.raises(ClipRequestError, match="more than"):
            make_clip(event, Settings(output_bucket="out"), Clients(s3=s3), lambda: 60.0)


def test_clip_keys_and_execution_names() -> None:
    assert parse_clip_key("clips/game-1/dunk.json") == ClipPaths("game-1", "dunk")
    for key in ("clips/game-1/dunk.txt", "clips/game 1/dunk.json", "clips/g/a/b.json",
                f"clips/g/{'x' * 23}.json", "live/g/dunk.json"):  # fmt: skip
        assert parse_clip_key(key) is None, key
    longest = clip_execution_name(ClipPaths("s" * 48, "c" * 22), '"0123456789abcdef"')
    assert len(longest) <= 80 and re.fullmatch(r"s{48}-c{22}-[0-9a-f]{8}", longest)
    # the same request (a duplicate event) gets the same name; another version another
    etag = '"44340d70aa"'
    dunk = ClipPaths("game-42", "opener")
    assert clip_execution_name(dunk, etag) == clip_execution_name(dunk, etag)
    # (as the event names it, bare, and as the PUT that asked for it answered, quoted)
    assert clip_execution_name(dunk, etag) == clip_execution_name(dunk, etag.strip('"'))
    assert clip_execution_name(dunk, etag) != clip_execution_name(dunk, '"44340d70bb"')
    # a stream and a clip name whose dashes read alike, asked for with the same body
    assert clip_execution_name(dunk, etag) != clip_execution_name(
        ClipPaths("game", "42-opener"), etag
    )


def test_a_span_asked_for_again_after_another_is_a_new_execution() -> None:
    # GIVEN a clip asked for with one body, then another, then the first again: the
    # third request's ETag is the first's (an ETag is the body's MD5)
    dunk, etag = ClipPaths("game-42", "dunk"), '"44340d70aa"'
    first = clip_execution_name(dunk, etag, "v1")
    # THEN where the bucket keeps versions, each version is an execution of its own
    assert clip_execution_name(dunk, etag, "v3") != first
    # (and a duplicate event of one version is the same one)
    assert clip_execution_name(dunk, etag.strip('"'), "v1") == first
    # AND its markers differ too, so the third is announced again
    assert events.request_tag(etag, "v3") != events.request_tag(etag, "v1")
    # (an S3 version id is opaque, "/" and "+" included: the marker names hex digits only)
    assert re.fullmatch(r"44340d70aa-[0-9a-f]{12}", events.request_tag(etag, "3/L4k+q.t_J"))
    # (a bucket without versions names no version: the ETag alone, as before)
    assert clip_execution_name(dunk, etag, "null") == clip_execution_name(dunk, etag)
    assert events.request_tag(etag, "null") == events.request_tag(etag) == "44340d70aa"


def test_a_clip_whose_top_rung_would_not_fit_in_tmp_is_refused_before_any_work() -> None:
    config = stream_settings()
    top = config.renditions[0].name
    cuts = plan_clip(entries(*[2.0] * 300), 0.0, 600.0)
    # GIVEN ten minutes of a stream whose top rung took 25 Mbit/s
    heavy = {n: {"bytes": {top: 25_000_000 // 8 * 2}} for n in range(300)}
    # THEN the clip is refused by name, saying why
    with pytest.raises(InputTooLargeError, match=rf"top rung \({top}\) is 1,788 MB over 600 s"):
        _fits_scratch(cuts, heavy, config)
    # AND at 8 Mbit/s it is made, and the clip function's /tmp holds it with room to spare
    _fits_scratch(cuts, {n: {"bytes": {top: 8_000_000 // 8 * 2}} for n in range(300)}, config)
    (clip,) = [
        f for f in Stack(Path(__file__).parents[2]).functions() if f.logical_id == "ClipFunction"
    ]
    assert clip.ephemeral_storage * 2**20 >= MAX_JOINED_BYTES + 256 * 2**20
