"""An fMP4 live segment is read behind the upload of ``init.mp4`` it was made with: an
encoder that restarts with other settings uploads a new init, and its old run's segments
may still come (uploaded late, or tried again by Reconcile)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.media import synth
from tests.source_facts import decode_video
from workflow.errors import InitSegmentMismatchError, MissingInitSegmentError
from workflow.live.segment import _from_upload_time, segment_input
from workflow.media import probe
from workflow.runtime import Clients
from workflow.settings import Limits

BUCKET = "ingest"
STREAM = "live/game"


def decodes_cleanly(data: bytes, limits: Limits | None = None) -> bool:
    return probe.decodes_cleanly(data, limits or Limits())


def _encoder_run(out: Path, pattern: str, size: str, rate: int) -> Path:
    """Three 1 s fMP4 segments and their init, as a venue encoder set this way writes."""
    synth.fmp4_stream(
        out, "-f", "lavfi", "-i", f"{pattern}=size={size}:rate={rate}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3",
        "-c:v", "libx264", "-preset", "ultrafast",
        "-force_key_frames", "expr:gte(t,n_forced*1)", "-sc_threshold", "0", "-c:a", "aac",
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run A (160x90, 25 fps), then the encoder restarted as run B (320x180, 30 fps)."""
    root = tmp_path_factory.mktemp("encoder")
    return {
        "A": _encoder_run(root / "A", "testsrc", "160x90", 25),
        "B": _encoder_run(root / "B", "testsrc2", "320x180", 30),
    }


@pytest.fixture
def s3(request: pytest.FixtureRequest) -> Iterator[Any]:
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
        return Path(segment.source).read_bytes(), segment.init_version


def _joined(run: Path, number: int) -> bytes:
    return (run / "init.mp4").read_bytes() + (run / f"{number}.m4s").read_bytes()


def test_a_segment_decodes_cleanly_behind_its_own_init_only(runs: dict[str, Path]) -> None:
    a, b = runs["A"], runs["B"]
    assert decodes_cleanly(_joined(a, 2)) and decodes_cleanly(_joined(b, 0))
    mixed = (b / "init.mp4").read_bytes() + (a / "2.m4s").read_bytes()
    assert not decodes_cleanly(mixed)
    assert not decodes_cleanly((a / "init.mp4").read_bytes() + b"\x00" * 4096)
    # a picture over the limits is never decoded here: the probe refuses it by name
    assert decodes_cleanly(mixed, Limits(max_pixels=160 * 90))


def test_an_old_runs_segment_uploaded_after_the_new_init_is_read_behind_its_own(
    s3: Any, runs: dict[str, Path], tmp_path: Path
) -> None:
    # GIVEN run A's init and segments 0-1, then the encoder restarted as run B
    a, b = runs["A"], runs["B"]
    _upload(s3, a / "init.mp4", "init.mp4")
    old_init = s3.list_object_versions(Bucket=BUCKET, Prefix=f"{STREAM}/init.mp4")
    _upload(s3, b / "init.mp4", "init.mp4")
    # WHEN run A's last segment is uploaded late, after B's init
    late = _upload(s3, a / "2.m4s", "2.m4s")
    data, version = _read(s3, late, tmp_path, fits=decodes_cleanly)
    # THEN it is joined behind A's init, and decodes as the encoder made it
    assert version == old_init["Versions"][0]["VersionId"]
    assert data == _joined(a, 2)
    joined = tmp_path / "read.mp4"
    joined.write_bytes(data)
    made = tmp_path / "made.mp4"
    made.write_bytes(_joined(a, 2))
    assert decode_video(joined).frames == decode_video(made).frames
    # AND the new run's segment is read behind the new init
    assert _read(s3, _upload(s3, b / "0.m4s", "3.m4s"), tmp_path / "b", fits=decodes_cleanly)[
        0
    ] == _joined(b, 0)


def test_the_encode_reads_the_init_the_probe_chose_even_after_another_is_uploaded(
    s3: Any, runs: dict[str, Path], tmp_path: Path
) -> None:
    a, b = runs["A"], runs["B"]
    _upload(s3, a / "init.mp4", "init.mp4")
    segment = _upload(s3, a / "1.m4s", "1.m4s")
    chosen = _read(s3, segment, tmp_path / "probe", fits=decodes_cleanly)[1]
    _upload(s3, b / "init.mp4", "init.mp4")  # between LiveProbe and LiveTranscode
    data, version = _read(s3, segment, tmp_path / "encode", init_version=chosen)
    assert (version, data) == (chosen, _joined(a, 1))


def test_a_segment_that_overtook_its_init_fails_by_name_until_the_init_lands(
    s3: Any, runs: dict[str, Path], tmp_path: Path
) -> None:
    a, b = runs["A"], runs["B"]
    first = _upload(s3, a / "0.m4s", "0.m4s")
    with pytest.raises(MissingInitSegmentError, match=r"needs live/game/init\.mp4"):
        _read(s3, first, tmp_path / "0", fits=decodes_cleanly)
    _upload(s3, a / "init.mp4", "init.mp4")
    restarted = _upload(s3, b / "0.m4s", "3.m4s")  # run B's first segment, before its init
    with pytest.raises(InitSegmentMismatchError, match=r"3\.m4s decodes behind none"):
        _read(s3, restarted, tmp_path / "3", fits=decodes_cleanly)
    _upload(s3, b / "init.mp4", "init.mp4")
    assert _read(s3, restarted, tmp_path / "3b", fits=decodes_cleanly)[0] == _joined(b, 0)


@pytest.mark.parametrize("s3", [None, "Suspended"], indirect=True)
def test_a_bucket_without_versions_reads_behind_the_one_init_it_keeps(
    s3: Any, runs: dict[str, Path], tmp_path: Path
) -> None:
    a, b = runs["A"], runs["B"]
    _upload(s3, a / "init.mp4", "init.mp4")
    first = _upload(s3, a / "0.m4s", "0.m4s")
    assert _read(s3, first, tmp_path / "0", fits=decodes_cleanly) == (_joined(a, 0), None)
    # the encode, given no version to read, reads the one init there is (no listing of
    # versions, which LiveTranscode's role may not make)
    calls: list[str] = []
    s3.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    assert _read(s3, first, tmp_path / "0e") == (_joined(a, 0), None)
    assert "ListObjectVersions" not in calls and "GetObject" in calls
    _upload(s3, b / "init.mp4", "init.mp4")
    with pytest.raises(InitSegmentMismatchError):
        _read(s3, _upload(s3, a / "1.m4s", "1.m4s"), tmp_path / "1", fits=decodes_cleanly)


def test_the_inits_are_tried_from_the_one_current_at_the_segments_upload() -> None:
    at = datetime(2026, 12, 4, 20, 0, 0, tzinfo=UTC)
    uploads = [
        {"VersionId": name, "LastModified": at + timedelta(seconds=offset)}
        for name, offset in [("v4", 30), ("v3", 20), ("v2", 10), ("v1", 0)]
    ]

    def order(uploaded_at: str | None) -> list[str]:
        return [u["VersionId"] for u in _from_upload_time(uploads, uploaded_at)]

    assert order("2026-12-04T20:00:15.500Z") == ["v2", "v1", "v3", "v4"]
    # S3 keeps a version's time to the second: one made in the segment's second counts
    assert order("2026-12-04T20:00:20.900Z") == ["v3", "v2", "v1", "v4"]
    assert order("2026-12-04T19:59:59.000Z") == ["v1", "v2", "v3", "v4"]
    assert order(None) == ["v4", "v3", "v2", "v1"]


REAL_ENCODERS = (
    "h264_aac51_720p_sparse_gop",
    "h264_video_only_640x272",
    "h264_aac_1080p_gop6s",
    "h264_aac_1080p_1s_start_offset",
    "hevc_main_aac_mp4",
)


def test_real_encoders_segments_decode_cleanly_behind_their_own_init_only(
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
    # THEN every segment decodes cleanly behind its own encoder's init, none behind another's
    for init_of, run in runs.items():
        init = (run / "init.mp4").read_bytes()
        for segments_of, other in runs.items():
            for segment in sorted(other.glob("*.m4s")):
                fits = decodes_cleanly(init + segment.read_bytes())
                assert fits == (init_of == segments_of), (init_of, segment)
