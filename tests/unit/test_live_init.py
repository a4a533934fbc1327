"""An fMP4 live segment is read behind the upload of ``init.mp4`` it was made with: an
encoder that restarts with other settings uploads a new init, and its old run's segments
may still come (uploaded late, or tried again by Reconcile)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import boto3
import pytest
from moto import mock_aws

from tests.media import synth
from tests.source_facts import decode_video
from workflow.errors import (
    InitSegmentMismatchError,
    InputTooLargeError,
    MissingInitSegmentError,
    SourceChangedError,
)
from workflow.live import segment as live_segment
from workflow.live.segment import ProbedSegment, _in_trying_order, segment_input
from workflow.media import probe
from workflow.runtime import Clients
from workflow.settings import Limits

BUCKET = "ingest"
STREAM = "live/game"


def fits(init: bytes, segment: bytes, limits: Limits | None = None) -> bool:
    return probe.fits_init(init, segment, limits or Limits())


def _encoder_run(out: Path, pattern: str, size: str, rate: int, *codec: str) -> Path:
    """Three 1 s fMP4 segments and their init, as a venue encoder set this way writes."""
    synth.fmp4_stream(
        out, "-f", "lavfi", "-i", f"{pattern}=size={size}:rate={rate}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3",
        *(codec or ("-c:v", "libx264", "-preset", "ultrafast")),
        "-force_key_frames", "expr:gte(t,n_forced*1)", "-sc_threshold", "0", "-c:a", "aac",
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Encoder runs before and after a restart with other settings: run A (160x90,
    25 fps) then B (320x180, 30 fps); the same with the parameter sets repeated before
    every keyframe (IA, IB), as hardware encoders write; in AV1 (V1, V2); and an x264
    open-GOP run, whose segments start at a recovery point."""
    root = tmp_path_factory.mktemp("encoder")
    inband = ("-c:v", "libx264", "-preset", "ultrafast", "-bsf:v", "dump_extra=freq=keyframe")
    av1 = ("-c:v", "libsvtav1", "-preset", "12")
    open_gop = ("-c:v", "libx264", "-preset", "veryfast", "-bf", "3",
                "-x264-params", "open-gop=1:keyint=25:min-keyint=25:scenecut=0")  # fmt: skip
    return {
        "A": _encoder_run(root / "A", "testsrc", "160x90", 25),
        "B": _encoder_run(root / "B", "testsrc2", "320x180", 30),
        "IA": _encoder_run(root / "IA", "testsrc", "160x90", 25, *inband),
        "IB": _encoder_run(root / "IB", "testsrc2", "320x180", 30, *inband),
        "V1": _encoder_run(root / "V1", "testsrc", "160x96", 25, *av1),
        "V2": _encoder_run(root / "V2", "testsrc2", "320x192", 30, *av1),
        "OG": _encoder_run(root / "OG", "testsrc2", "320x180", 25, *open_gop),
    }


@pytest.fixture
def s3(request: pytest.FixtureRequest) -> Iterator[Any]:
    # moto in this process: its end resets every moto backend, the session stack's too,
    # so this lives with the unit tests, which run after every test of that stack
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        status = getattr(request, "param", "Enabled")
        if status:
            client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": status})
        yield client


def _upload(s3: Any, path: Path, name: str) -> dict[str, Any]:
    """Upload ``path`` as ``live/game/<name>``; the source record its S3 event makes."""
    key = f"{STREAM}/{name}"
    put = s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
    return {
        "bucket": BUCKET,
        "key": key,
        "etag": put["ETag"].strip('"'),
        "uploaded_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def _read(s3: Any, source: dict[str, Any], workdir: Path, **kwargs: Any) -> tuple[bytes, Any]:
    workdir.mkdir(exist_ok=True)
    with segment_input(source, Clients(s3=s3), workdir, **kwargs) as segment:
        return Path(segment.source).read_bytes(), segment.init


def _joined(run: Path, number: int) -> bytes:
    return _init(run) + (run / f"{number}.m4s").read_bytes()


def _init(run: Path) -> bytes:
    return (run / "init.mp4").read_bytes()


def _version(s3: Any, number: int = 0) -> str:
    """The version id of the ``number``-th upload of the stream's init (0: the first)."""
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix=f"{STREAM}/init.mp4")["Versions"]
    return str(list(reversed(listed))[number]["VersionId"])


@pytest.mark.parametrize(("before", "after"), [("A", "B"), ("IA", "IB"), ("V1", "V2")])
def test_a_segment_fits_behind_its_own_runs_init_only(
    runs: dict[str, Path], before: str, after: str
) -> None:
    # H.264 misread behind the other run's parameter sets; H.264 carrying its own, and
    # AV1, decoded at their own size, not the one the other run's init declares
    for run, other in ((runs[before], runs[after]), (runs[after], runs[before])):
        for number in range(3):
            segment = (run / f"{number}.m4s").read_bytes()
            assert fits(_init(run), segment), (run.name, number)
            assert not fits(_init(other), segment), (run.name, number)


def test_an_open_gop_segment_fits_behind_its_own_init(runs: dict[str, Path]) -> None:
    # it starts at a recovery point whose frames refer back to the segment before: the
    # decoder logs that, which says nothing against the init
    run = runs["OG"]
    segments = sorted(run.glob("*.m4s"))
    assert len(segments) >= 3
    assert all(fits(_init(run), segment.read_bytes()) for segment in segments)


def test_an_init_whose_tags_are_not_utf8_fits_its_own_segments(tmp_path: Path) -> None:
    # GIVEN an encoder run whose init names its video track in Latin-1 ("Caméra 1", as
    # an older encoder writes it)
    latin = "Cam\udce9ra 1"  # (the byte 0xe9 passed to ffmpeg as it is)
    run = _encoder_run(
        tmp_path / "L", "testsrc", "160x90", 25,
        "-c:v", "libx264", "-preset", "ultrafast", "-metadata:s:v", f"handler_name={latin}",
    )  # fmt: skip
    assert "Caméra 1".encode("latin-1") in _init(run)
    # WHEN its segments are read behind it, THEN each fits (none is taken for another
    # run's, a restart read into every segment)
    for number in range(3):
        assert fits(_init(run), (run / f"{number}.m4s").read_bytes()), number


def test_a_check_leaves_libavs_logging_as_it_found_it(runs: dict[str, Path]) -> None:
    # it logs errors and every line (not only those unlike the last) while it decodes;
    # the probe after it and the rest of the process log as they did
    level, repeated = av.logging.get_level(), av.logging.get_skip_repeated()
    assert not fits(_init(runs["B"]), (runs["A"] / "2.m4s").read_bytes())
    assert (av.logging.get_level(), av.logging.get_skip_repeated()) == (level, repeated)


def test_what_cannot_be_a_live_segments_init_fits_nothing(runs: dict[str, Path]) -> None:
    a = runs["A"]
    assert not fits(_init(a), b"\x00" * 4096)
    audio_only = _init(a).replace(b"vide", b"soun")  # the track's handler: not a picture
    assert not fits(audio_only, (a / "0.m4s").read_bytes())
    # a picture over the limits is never decoded here: the probe refuses it by name
    assert fits(_init(runs["B"]), (a / "0.m4s").read_bytes(), Limits(max_pixels=160 * 90))


def test_an_old_runs_segment_uploaded_after_the_new_init_is_read_behind_its_own(
    s3: Any, runs: dict[str, Path], tmp_path: Path
) -> None:
    # GIVEN run A's init and segments 0-1, then the encoder restarted as run B
    a, b = runs["A"], runs["B"]
    _upload(s3, a / "init.mp4", "init.mp4")
    _upload(s3, b / "init.mp4", "init.mp4")
    # WHEN run A's last segment is uploaded late, after B's init
    late = _upload(s3, a / "2.m4s", "2.m4s")
    data, init = _read(s3, late, tmp_path, fits=fits)
    # THEN it is joined behind A's init, and decodes as the encoder made it
    assert init["version_id"] == _version(s3, 0)
    assert data == _joined(a, 2)
    joined = tmp_path / "read.mp4"
    joined.write_bytes(data)
    made = tmp_path / "made.mp4"
    made.write_bytes(_joined(a, 2))
    assert decode_video(joined).frames == decode_video(made).frames
    # AND the new run's segment is read behind the new init
    new = _read(s3, _upload(s3, b / "0.m4s", "3.m4s"), tmp_path / "b", fits=fits)
    assert new == (_joined(b, 0), {"version_id": _version(s3, 1), "etag": init_etag(b)})


def init_etag(run: Path) -> str:
    return hashlib.md5(_init(run)).hexdigest()


def test_the_encode_reads_the_init_the_probe_chose_even_after_another_is_uploaded(
    s3: Any, runs: dict[str, Path], tmp_path: Path
) -> None:
    a, b = runs["A"], runs["B"]
    _upload(s3, a / "init.mp4", "init.mp4")
    segment = _upload(s3, a / "1.m4s", "1.m4s")
    chosen = _read(s3, segment, tmp_path / "probe", fits=fits)[1]
    _upload(s3, b / "init.mp4", "init.mp4")  # between LiveProbe and LiveTranscode
    assert _read(s3, segment, tmp_path / "encode", init=chosen) == (_joined(a, 1), chosen)


def test_a_segment_that_overtook_its_init_fails_by_name_until_the_init_lands(
    s3: Any, runs: dict[str, Path], tmp_path: Path
) -> None:
    a, b = runs["A"], runs["B"]
    first = _upload(s3, a / "0.m4s", "0.m4s")
    with pytest.raises(MissingInitSegmentError, match=r"needs live/game/init\.mp4"):
        _read(s3, first, tmp_path / "0", fits=fits)
    _upload(s3, a / "init.mp4", "init.mp4")
    restarted = _upload(s3, b / "0.m4s", "3.m4s")  # run B's first segment, before its init
    with pytest.raises(InitSegmentMismatchError, match=r"3\.m4s fits behind none"):
        _read(s3, restarted, tmp_path / "3", fits=fits)
    _upload(s3, b / "init.mp4", "init.mp4")
    assert _read(s3, restarted, tmp_path / "3b", fits=fits)[0] == _joined(b, 0)


@pytest.mark.parametrize("part", ["segment", "init"])
def test_an_fmp4_upload_too_large_to_join_in_memory_is_named_unread(
    s3: Any, runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: str
) -> None:
    # GIVEN a venue's segment (or init.mp4) a byte over what is read whole to be joined
    a = runs["A"]
    init = _upload(s3, a / "init.mp4", "init.mp4")
    segment = _upload(s3, a / "1.m4s", "1.m4s")
    size = (a / ("1.m4s" if part == "segment" else "init.mp4")).stat().st_size
    bound = "MAX_FMP4_SEGMENT_BYTES" if part == "segment" else "MAX_INIT_BYTES"
    monkeypatch.setattr(live_segment, bound, size - 1)
    # THEN LiveProbe and LiveTranscode both fail naming the bound (Bucket.get_small reads
    # no body past it: tests/unit/test_bucket.py)
    for kwargs in ({"fits": fits}, {"init": {"etag": init["etag"]}}, {}):
        with pytest.raises(InputTooLargeError, match=f"is over {size - 1} bytes"):
            _read(s3, segment, tmp_path, **kwargs)
    # AND at the bound it is read as before
    monkeypatch.setattr(live_segment, bound, size)
    assert _read(s3, segment, tmp_path, fits=fits)[0] == _joined(a, 1)


def test_an_init_uploaded_again_and_again_does_not_hide_the_one_after_it(
    s3: Any, runs: dict[str, Path], tmp_path: Path
) -> None:
    # GIVEN an encoder that reconnected ten times with run A's settings, uploading its
    # init each time, then restarted as run B, whose first segment came before its init
    a, b = runs["A"], runs["B"]
    for _ in range(10):
        _upload(s3, a / "init.mp4", "init.mp4")
    restarted = _upload(s3, b / "0.m4s", "0.m4s")
    _upload(s3, b / "init.mp4", "init.mp4")
    # WHEN it is tried again (by Reconcile) / THEN B's init, after all of A's, is found
    assert _read(s3, restarted, tmp_path, fits=fits)[0] == _joined(b, 0)


@pytest.mark.parametrize("s3", [None, "Suspended"], indirect=True)
def test_a_bucket_without_versions_reads_behind_the_one_init_it_keeps(
    s3: Any, runs: dict[str, Path], tmp_path: Path
) -> None:
    a, b = runs["A"], runs["B"]
    _upload(s3, a / "init.mp4", "init.mp4")
    first = _upload(s3, a / "0.m4s", "0.m4s")
    data, chosen = _read(s3, first, tmp_path / "0", fits=fits)
    assert (data, chosen) == (_joined(a, 0), {"version_id": "null", "etag": init_etag(a)})
    # the encode reads the init the probe checked, pinned by its ETag (no listing of
    # versions, which LiveTranscode's role may not make) ...
    calls: list[str] = []
    s3.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    assert _read(s3, first, tmp_path / "0e", init=chosen) == (_joined(a, 0), chosen)
    assert "ListObjectVersions" not in calls and "GetObject" in calls
    # ... so another init uploaded between the two steps ends the encode by name
    _upload(s3, b / "init.mp4", "init.mp4")
    with pytest.raises(SourceChangedError):
        _read(s3, first, tmp_path / "0f", init=chosen)
    with pytest.raises(InitSegmentMismatchError):
        _read(s3, _upload(s3, a / "1.m4s", "1.m4s"), tmp_path / "1", fits=fits)


def test_the_inits_are_tried_from_the_one_current_at_the_segments_upload() -> None:
    at = datetime(2026, 12, 4, 20, 0, 0, tzinfo=UTC)
    uploads = [
        {"VersionId": name, "ETag": name, "LastModified": at + timedelta(seconds=offset)}
        for name, offset in [("v4", 30), ("v3", 20), ("v2", 10), ("v1", 0)]
    ]

    def order(uploaded_at: str | None, listed: list[dict[str, Any]] = uploads) -> list[str]:
        return [u["VersionId"] for u in _in_trying_order(listed, uploaded_at)]

    assert order("2026-12-04T20:00:15.500Z") == ["v2", "v1", "v3", "v4"]
    # S3 keeps a version's time to the second: one made in the segment's second counts
    assert order("2026-12-04T20:00:20.900Z") == ["v3", "v2", "v1", "v4"]
    assert order("2026-12-04T19:59:59.000Z") == ["v1", "v2", "v3", "v4"]
    assert order(None) == ["v4", "v3", "v2", "v1"]
    # the same bytes uploaded again are tried once; at most four each side
    again = [{**u, "ETag": "v1"} if u["VersionId"] in ("v2", "v3") else u for u in uploads]
    assert order("2026-12-04T20:00:25Z", again) == ["v3", "v4"]
    many = [
        {"VersionId": f"v{n}", "ETag": f"v{n}", "LastModified": at + timedelta(seconds=n)}
        for n in range(20, 0, -1)
    ]
    assert order("2026-12-04T20:00:10Z", many) == [
        "v10",
        "v9",
        "v8",
        "v7",
        "v11",
        "v12",
        "v13",
        "v14",
    ]


def test_a_probed_segment_from_a_newer_probe_is_read_by_an_older_encode() -> None:
    # functions are updated one by one: a field LiveTranscode does not know is left alone
    probed = ProbedSegment("mp4", 0.0, 0.0, 1.0, True).to_dict()
    assert ProbedSegment.from_dict({**probed, "added_later": 1}) == ProbedSegment.from_dict(probed)


REAL_ENCODERS = (
    "h264_aac51_720p_sparse_gop",
    "h264_video_only_640x272",
    "h264_aac_1080p_gop6s",
    "h264_aac_1080p_1s_start_offset",
    "hevc_main_aac_mp4",
)


def test_real_encoders_segments_fit_behind_their_own_init_only(
    real_media: dict[str, Path], tmp_path: Path
) -> None:
    # GIVEN real footage from five encoders nobody here set up, remuxed as they encoded it
    # (no re-encode) into fMP4 segments and an init each
    runs = {}
    for name in REAL_ENCODERS:
        runs[name] = tmp_path / name
        synth.fmp4_stream(
            runs[name], "-i", str(real_media[name]), "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy"
        )
    # THEN every segment fits behind its own encoder's init, none behind another's
    for init_of, run in runs.items():
        for segments_of, other in runs.items():
            for segment in sorted(other.glob("*.m4s")):
                fitting = fits(_init(run), segment.read_bytes())
                assert fitting == (init_of == segments_of), (init_of, segment)
