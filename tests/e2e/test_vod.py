"""The VOD pipeline through the local engine: the template's ASL, real ffmpeg, a real S3 API."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import botocore.exceptions
import m3u8
import numpy as np
import pytest

from tests.asset import read_asset, read_manifest, strict_parse
from tests.conftest import _wait, upload_and_follow
from tests.media import synth
from tests.source_facts import decode_video
from tests.stack import vidflow_up
from workflow.local.binaries import ffmpeg_binary
from workflow.vod.jobs import JobPaths

ENDPOINT_KEYS = ("ingest_bucket", "output_bucket", "state_machine_arn")
REAL_OK = [
    "h264_aac51_720p_sparse_gop",
    "h264_aac_1080p_gop6s",
    "h264_video_only_640x272",
    "mpegts_h264_aac_captions",
    "mpegts_h264_aac",
    "vp8_vorbis_webm",
    "h264_aac_1080p_1s_start_offset",
    "mpegts_midstream_pat_pmt_large_pts",
    # AVI keeps no presentation times, and PyAV and the ffmpeg that encodes read its frame's
    # differently: a plan from PyAV's cut the frame out (a job that failed in Images)
    "avi_h264_baseline_one_frame",
    # ... and one whose stream declares B-frames (H.264 Main), whose only frame the
    # decoder gives when drained: an internal TranscodeError in Images before
    "avi_h264_main_one_frame",
]


def assert_playable(run: Any, source: Path) -> None:
    """Everything the acceptance list asks of a published asset."""
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.out is not None
    parsed = strict_parse(run.out)
    assert parsed.returncode == 0, parsed.stderr
    # every media playlist played together has one target duration (RFC 8216bis 6.2.4)
    targets = {m3u8.load(str(p)).target_duration for p in run.out.glob("*/index.m3u8")}
    assert len(targets) == 1, targets
    manifest = read_manifest(run.out)
    source_fmt = "mpegts" if source.suffix == ".ts" else None
    truth = decode_video(source, source_fmt)
    tolerance = max(0.35, 0.03 * truth.duration)
    asset = read_asset(run.out)
    assert asset.video, "no video rendition"
    src_w, src_h = manifest["source"]["display_width"], manifest["source"]["display_height"]
    for name, rendition in asset.video.items():
        assert rendition.decode_errors == "", f"{name}: {rendition.decode_errors}"
        assert rendition.codec == "h264" and rendition.pix_fmt == "yuv420p", name
        assert rendition.frames == truth.frames, f"{name}: {rendition.frames} != {truth.frames}"
        assert abs(rendition.duration - truth.duration) <= tolerance, name
        assert rendition.duplicates == 0, f"{name}: duplicate timestamps"
        assert rendition.keyframes_at_segment_starts, f"{name}: segment without keyframe"
        assert rendition.width % 2 == 0 and rendition.height % 2 == 0
        assert rendition.width <= src_w + 1 and rendition.height <= src_h + 1, "upscaled"
        assert abs(rendition.width / rendition.height - src_w / src_h) < 0.03, "aspect changed"
    has_audio = manifest["source_audio"] is not None
    assert (asset.audio is not None) == has_audio
    # the audio's language is the source's, as the BCP 47 tag players match ("eng": "en")
    language = {"eng": "en"}.get(_audio_tag(source)) if has_audio else None
    master = m3u8.load(str(run.out / "master.m3u8"))
    assert [m.language for m in master.media if m.type == "AUDIO"] == [language] * has_audio
    assert (manifest["audio"] or {}).get("language") == language
    if asset.audio is not None:
        frame = 1 / manifest["source"]["frame_rate"]
        first_video = next(iter(asset.video.values())).first_pts
        assert abs(asset.audio.first_pts - first_video) <= frame + 1e-3
        assert asset.audio.decode_errors == ""
        assert abs(asset.audio.duration - truth.duration) <= tolerance


def _audio_tag(source: Path) -> str | None:
    """The language tag of the source's first audio stream, as its container holds it."""
    with av.open(str(source)) as container:
        audio = next((s for s in container.streams if s.type == "audio"), None)
        return None if audio is None else audio.metadata.get("language")


@pytest.mark.parametrize("name", synth.VIDEOS)
def test_synthetic_edge_cases_publish_playable_hls(name: str, clip: Any, run_job: Any) -> None:
    # GIVEN a generated clip with one awkward property
    source = clip(name)
    # WHEN it is uploaded to the ingest bucket
    run = run_job(source)
    # THEN the published asset plays, frame for frame
    assert_playable(run, source)


@pytest.mark.real_media
@pytest.mark.parametrize("name", REAL_OK)
def test_real_footage_publishes_playable_hls(
    name: str, real_media: dict[str, Path], run_job: Any
) -> None:
    source = real_media[name]
    run = run_job(source)
    assert_playable(run, source)


def test_an_avi_without_b_frames_publishes_its_first_frame(tmp_path: Path, run_job: Any) -> None:
    # GIVEN 3 s of H.264 Baseline (no B-frames) in AVI, which keeps only the frames'
    # decoding order: PyAV's FFmpeg reads the first frame as a tick after zero, the ffmpeg
    # that encodes it as at zero
    source = tmp_path / "baseline.avi"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=416x240:rate=24000/1001:duration=3",
         "-c:v", "libx264", "-profile:v", "baseline", "-g", "24", "-pix_fmt", "yuv420p",
         str(source)],
        check=True,
    )  # fmt: skip
    # WHEN it is published, THEN every frame is there (the plan started a tick late and
    # the first frame was cut out: 71 of 72)
    assert_playable(run_job(source), source)


def test_a_picture_that_changes_size_mid_chunk_is_scored_frame_for_frame(
    clip: Any, run_job: Any
) -> None:
    # GIVEN a TS whose picture goes from 640x360 to 320x240 at 10 s, inside a chunk
    # WHEN it is published (assert_playable checks its frames in the edge-case test)
    run = run_job(clip("mpegts_size_change"))
    # THEN every scored frame of the quality report was paired with its own source frame:
    # a frame paired with another (or with one of the other size, misread) scores ~0
    rungs = json.loads((run.out / "manifest.json").read_text())["quality"]["rungs"]
    assert rungs and all(r["vmaf_min"] > 80 for r in rungs.values()), rungs


def interlace_counts(path: Path) -> dict[str, int]:
    """ffmpeg's ``idet`` verdict over every frame of ``path``: how many read as TFF, BFF,
    progressive or undetermined, from their pictures (not their flags)."""
    ran = subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v",
         "-vf", "idet", "-f", "null", "-"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    # (the last report: ffmpeg configures the graph once before the first frame)
    line = [x for x in ran.stderr.splitlines() if "Multi frame detection" in x][-1]
    return {key: int(value) for key, value in re.findall(r"(\w+): *(\d+)", line)}


def test_an_interlaced_source_is_published_progressive(clip: Any, run_job: Any) -> None:
    # GIVEN a source whose every picture is two fields (top first), as a 1080i or 480i
    # broadcast feed's are
    source = clip("interlaced")
    assert interlace_counts(source)["TFF"] >= 100
    # WHEN it is published
    run = run_job(source)
    # THEN every rung's pictures are whole frames: no combing at the rung's own size,
    # no fields blended by scaling in the smaller one
    rungs = json.loads((run.out / "manifest.json").read_text())["renditions"]
    assert len(rungs) >= 2
    for rung in rungs:
        counts = interlace_counts(run.out / rung["playlist"])
        assert counts["TFF"] + counts["BFF"] == 0 and counts["Progressive"] >= 100, rung


def _rgb(*args: str, size: tuple[int, int]) -> Any:
    """One frame of what ``args`` open, ``size`` wide and high, as 8-bit RGB."""
    raw = subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", *args, "-vf", f"scale={size[0]}:{size[1]}",
         "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(size[1], size[0], 3).astype(float)


def _saturation(rgb: Any) -> float:
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean())


def test_an_hdr_source_is_published_as_bt709_sdr(clip: Any, run_job: Any) -> None:
    # GIVEN an HLG source (a phone's HDR video) made from an SDR test picture, its white
    # at HDR's reference white
    source = clip("hdr_hlg")
    # WHEN it is published
    run = run_job(source)
    manifest = read_manifest(run.out)
    assert manifest["source"]["hdr"] == "hlg"
    picture = "testsrc2=size=640x360:rate=30:duration=3"
    for rung in manifest["renditions"]:
        segment = run.out / Path(rung["playlist"]).parent / "seg_00000.ts"
        # THEN every rung is tagged BT.709 SDR (untouched, x264 tagged it HLG and BT.2020)
        with av.open(str(segment)) as container:
            context = container.streams.video[0].codec_context
            assert (context.color_trc, context.color_primaries, context.colorspace) == (1, 1, 1)
        # AND its colours are the SDR picture's, not washed out: untouched, its first
        # frame kept 0.38 of the picture's saturation and was 80 levels off it on average
        size = (rung["width"], rung["height"])
        reference = _rgb("-f", "lavfi", "-i", picture, size=size)
        published = _rgb("-i", str(segment), size=size)
        assert _saturation(published) / _saturation(reference) > 0.65
        assert np.abs(published - reference).mean() < 45
    # AND so is the poster, made from the same picture
    poster = _rgb("-i", str(run.out / manifest["images"]["poster"]), size=(640, 360))
    reference = _rgb("-f", "lavfi", "-i", picture, size=(640, 360))
    assert _saturation(poster) / _saturation(reference) > 0.65
    assert np.abs(poster - reference).mean() < 45


def test_rotation_is_applied_to_the_ladder(clip: Any, run_job: Any) -> None:
    run = run_job(clip("rotated_90"))
    asset = read_asset(run.out)
    (rendition,) = asset.video.values()
    assert rendition.height > rendition.width  # 320x240 turned a quarter: portrait


def test_master_playlist_describes_every_rung(clip: Any, run_job: Any) -> None:
    run = run_job(clip("h264_aac_2gop"))
    master = (run.out / "master.m3u8").read_text()
    manifest = json.loads((run.out / "manifest.json").read_text())
    assert [r["name"] for r in manifest["renditions"]] == ["360p"]
    for attribute in (
        "BANDWIDTH=",
        "AVERAGE-BANDWIDTH=",
        "RESOLUTION=640x360",
        "CODECS=",
        "FRAME-RATE=30.000",
        'AUDIO="aac"',
    ):
        assert attribute in master
    # 30 s of 2 s GOPs in 12 s chunks would be 12 + 12 + 6 s; the session's Map runs two
    # at once, so 8 + 8 + 8 + 6 s fill both its waves. Segments of 4 s (the last 4 + 2).
    assert manifest["chunks"] == 4
    assert manifest["renditions"][0]["segments"] == 8
    assert set(manifest["timings"]) >= {"probe", "plan", "publish"}


def test_a_variable_rate_source_is_described_by_its_busiest_second(
    run_job: Any, tmp_path: Path
) -> None:
    # GIVEN a screen recording's variable rate: 1 s at 60 fps while the screen moves, then
    # 3 s at 10 fps (18.3 fps on average)
    source = tmp_path / "screen.mp4"
    busy, still = (f"testsrc2=size=640x360:rate={r}:duration={d}" for r, d in ((60, 1), (10, 3)))
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-v", "error", "-f", "lavfi", "-i", busy, "-f", "lavfi",
         "-i", still, "-filter_complex", "[1]setpts=PTS+1/TB[b];[0][b]concat=n=2:v=1:a=0",
         "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", str(source)],
        check=True,
    )  # fmt: skip
    # WHEN it is published
    run = run_job(source)
    master = m3u8.loads((run.out / "master.m3u8").read_text())
    (variant,) = master.playlists
    # THEN its FRAME-RATE is the most any of it reaches (RFC 8216), and its level allows
    # 360p at 60 fps (3.1; the average's 3.0 allows 40,500 macroblocks a second, not 55,200)
    assert variant.stream_info.frame_rate == 60.0
    assert variant.stream_info.codecs == "avc1.64001f"
    segment = run.out / "360p" / "seg_00000.ts"
    with av.open(str(segment)) as container:
        assert container.streams.video[0].codec_context.level == 31


BAD_INPUTS = {
    "zero_bytes": (b"", "NotAVideoError"),
    "text": (b"Hello, this is a note, not a video.\n" * 20, "NotAVideoError"),
    "noise": (random.Random(7).randbytes(256 * 1024), "NotAVideoError"),
    "hls_as_mp4": (
        b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
        "UnsafeInputError",
    ),
    "ffconcat": (b"ffconcat version 1.0\nfile '/etc/passwd'\n", "UnsafeInputError"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_bytes_fail_with_a_named_error_and_publish_nothing(
    name: str, tmp_path: Path, run_job: Any
) -> None:
    data, expected = BAD_INPUTS[name]
    source = tmp_path / f"{name}.mp4"
    source.write_bytes(data)
    run = run_job(source)
    assert_rejected(run, expected, f"uploads/{source.name}")


def test_playlist_uploaded_as_m3u8_is_unsafe(tmp_path: Path, run_job: Any) -> None:
    source = tmp_path / "stream.m3u8"
    source.write_bytes(BAD_INPUTS["hls_as_mp4"][0])
    assert_rejected(run_job(source), "UnsafeInputError", "uploads/stream.m3u8")


def test_truncated_mp4_is_named(clip: Any, tmp_path: Path, run_job: Any) -> None:
    whole = clip("h264_aac_2gop").read_bytes()
    source = tmp_path / "cut.mp4"
    source.write_bytes(whole[: len(whole) // 2])  # ffmpeg writes the index at the end
    assert_rejected(run_job(source), "TruncatedInputError", "uploads/cut.mp4")


@pytest.mark.real_media
@pytest.mark.parametrize("name", ["vp8_vorbis_webm", "h264_aac_flv", "avi_bframes"])
def test_a_file_cut_short_of_its_declared_length_is_refused(
    name: str, clip: Any, real_media: dict[str, Path], tmp_path: Path, run_job: Any
) -> None:
    # GIVEN a WebM (real footage), FLV or AVI whose last tenth is missing: its header
    # still declares the whole file, so its demuxer would read on to the cut and the
    # job would publish it under the whole file's duration
    whole = real_media[name] if name in real_media else clip(name)
    data = whole.read_bytes()
    source = tmp_path / f"cut{whole.suffix}"
    source.write_bytes(data[: len(data) * 9 // 10])
    # WHEN it is uploaded, THEN the job fails by name and publishes nothing
    run = run_job(source)
    assert_rejected(run, "TruncatedInputError", f"uploads/{source.name}")
    assert "the file is cut short" in run.cause


def test_audio_only_has_no_video_stream(clip: Any, run_job: Any) -> None:
    assert_rejected(run_job(clip("audio_only")), "NoVideoStreamError", "uploads/audio_only.m4a")


@pytest.mark.real_media
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("broken_mkv_truncated", "TruncatedInputError"),
        ("broken_mp4_no_streams", "NoVideoStreamError"),
        ("broken_mp3_72b", "NotAVideoError"),
        ("mp4_audio_only_two_vorbis_tracks", "NoVideoStreamError"),
        ("flv_audio_only_aac", "NoVideoStreamError"),
        # (a video track without a frame: it was refused as running at 90000 fps)
        ("broken_mp4_init_segment_only", "TruncatedInputError"),
    ],
)
def test_real_broken_files_fail_with_a_named_error(
    name: str, expected: str, real_media: dict[str, Path], run_job: Any
) -> None:
    source = real_media[name]
    assert_rejected(run_job(source), expected, f"uploads/{source.name}")


def assert_rejected(run: Any, expected: str, key: str) -> None:
    assert run.status == "FAILED"
    assert run.error == expected, run.cause
    assert run.cause and "\n" not in run.cause
    assert run.output_keys == [], "a failed job published something"
    assert run.failure["error"] == expected
    assert run.failure["input"]["key"] == key


def test_the_same_upload_twice_makes_one_execution_and_one_asset(
    clip: Any, engine: Any, run_job: Any
) -> None:
    source = clip("half_second")
    first = run_job(source, key="uploads/twice.mp4")
    second = run_job(source, key="uploads/twice.mp4")
    assert first.job_id == second.job_id
    # (the second upload is a new version of the key: its own event, answered here
    # rather than waited for)
    assert _start_job_for(engine, "uploads/twice.mp4") == [
        {"job_id": first.job_id, "key": "uploads/twice.mp4", "started": False}
    ]
    sfn = engine.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=engine.endpoints.state_machine_arn)[
        "executions"
    ]
    assert [e["name"] for e in executions if e["name"].startswith("twice-")] == [first.job_id]
    assert sorted(first.output_keys) == sorted(second.output_keys)


def test_a_job_id_used_again_after_its_asset_is_published_makes_nothing_again(
    clip: Any, engine: Any, run_job: Any
) -> None:
    # GIVEN a published asset
    run = run_job(clip("half_second"), key="uploads/again in 90 days.mp4")
    assert run.status == "SUCCEEDED"
    sfn, s3 = engine.client("stepfunctions"), engine.client("s3")
    output = engine.endpoints.output_bucket
    before = s3.list_objects_v2(Bucket=output, Prefix=JobPaths(run.job_id).output_prefix)
    arn = engine.endpoints.state_machine_arn
    first = sfn.describe_execution(
        executionArn=arn.replace(":stateMachine:", ":execution:") + f":{run.job_id}"
    )
    # WHEN its job runs again with the same input, as Step Functions lets the name be used
    # again 90 days after the execution ended (here under another name: the local stack
    # keeps names for good)
    again = sfn.start_execution(
        stateMachineArn=arn, name=f"{run.job_id}-again", input=first["input"]
    )
    ended = _wait(sfn, again["executionArn"])
    # THEN it ends, succeeded, where Probe found the asset published, and the asset is
    # as it was: not one file written again
    assert ended["status"] == "SUCCEEDED"
    history = sfn.get_execution_history(executionArn=again["executionArn"])["events"]
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]
    assert entered == ["Probe", "AlreadyPublished", "PublishedBefore"]
    after = s3.list_objects_v2(Bucket=output, Prefix=JobPaths(run.job_id).output_prefix)
    assert [(o["Key"], o["ETag"], o["LastModified"]) for o in after["Contents"]] == [
        (o["Key"], o["ETag"], o["LastModified"]) for o in before["Contents"]
    ]


def test_a_duplicate_s3_event_starts_nothing(clip: Any, engine: Any, run_job: Any) -> None:
    run = run_job(clip("half_second"), key="uploads/dup event.MP4")
    # (the same delivery again: the same object, so the same ETag and version)
    assert _start_job_for(engine, "uploads/dup event.MP4", "uploads/dup+event.MP4") == [
        {"job_id": run.job_id, "key": "uploads/dup event.MP4", "started": False}
    ]


def _start_job_for(engine: Any, key: str, as_sent: str | None = None) -> Any:
    """Deliver StartJob an S3 event of the object now at ``key`` (its ETag and version;
    the key ``as_sent``, URL-encoded as S3 sends it) and return the jobs it reports."""
    head = engine.client("s3").head_object(Bucket=engine.endpoints.ingest_bucket, Key=key)
    event = json.loads((Path(__file__).parents[2] / "events" / "s3-put-upload.json").read_text())
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = engine.endpoints.ingest_bucket
    record["s3"]["object"].update(
        {"key": as_sent or key, "eTag": head["ETag"].strip('"'), "versionId": head["VersionId"]}
    )
    result, error = engine.invoke("StartJobFunction", event)
    assert error is None, error
    return result["jobs"]


def test_an_upload_labelled_gzip_is_read_as_the_bytes_it_is(clip: Any, run_job: Any) -> None:
    # GIVEN a video uploaded with Content-Encoding: gzip, which it is not (a client's
    # default, a mislabelled sync): ffmpeg told so inflates it and spins until its limit
    source = clip("h264_aac_2gop")
    run = run_job(source, key="uploads/labelled-gzip.mp4", extra={"ContentEncoding": "gzip"})
    # THEN it publishes as the video it is, every frame
    assert_playable(run, source)


def test_a_camcorder_mts_with_192_byte_packets_publishes(
    clip: Any, run_job: Any, tmp_path: Path
) -> None:
    # GIVEN an AVCHD camcorder's .MTS (Blu-ray's .m2ts): MPEG-TS whose 188-byte packets
    # each follow a 4-byte timecode
    source = tmp_path / "00001.MTS"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(clip("h264_aac_2gop")),
         "-c", "copy", "-f", "mpegts", "-mpegts_m2ts_mode", "1", str(source)],
        check=True,
    )  # fmt: skip
    assert source.read_bytes()[4] == 0x47 and source.read_bytes()[196] == 0x47
    # THEN it is read as the transport stream it is, every frame published
    assert_playable(run_job(source, key="uploads/00001.MTS"), source)


def test_unicode_and_shell_characters_in_keys_are_safe(clip: Any, run_job: Any) -> None:
    key = "uploads/../é $(touch x); `id` 'q'.mp4"
    run = run_job(clip("half_second"), key=key)
    assert run.status == "SUCCEEDED", run.cause
    assert not Path("x").exists()
    assert os.sep not in run.job_id


def test_audio_in_pieces_publishes_one_continuous_audio_playlist(clip: Any, tmp_path: Path) -> None:
    # GIVEN a stack that cuts the audio into 4 s pieces, and a 30 s upload with audio
    source = clip("h264_aac_2gop")
    with vidflow_up(
        "--parameter", "AudioPieceSeconds=4", "--parameter", "ChunkSeconds=8",
        "--parameter", "SegmentSeconds=2", "--parameter", "Ladder=144:200",
        "--parameter", "ThumbnailSeconds=0",
    ) as stack:  # fmt: skip
        # WHEN it is processed
        ready = stack.ready
        endpoints = SimpleNamespace(**{k: ready[k] for k in ENDPOINT_KEYS})
        engine = SimpleNamespace(client=stack.client, endpoints=endpoints)
        run = upload_and_follow(engine, source, "uploads/pieces.mp4", tmp_path)
    # THEN the job encoded the audio in several pieces and published one audio playlist,
    # its segments numbered on across the pieces, playing gap-free for the whole video
    assert_playable(run, source)
    manifest = read_manifest(run.out)
    assert manifest["timings"]["audio_pieces"] >= 7
    playlist = (run.out / "audio" / "index.m3u8").read_text()
    uris = [line for line in playlist.splitlines() if line.endswith(".ts")]
    assert uris == [f"seg_{n:05d}.ts" for n in range(len(uris))]
    asset = read_asset(run.out)
    assert asset.audio is not None and asset.audio.duplicates == 0
    assert asset.audio.largest_gap <= 1024 / 48000 + 1e-3
    # AND its 15 segments were enough to sample the quality report by segment: one of
    # each chunk's (second of four), every 11th frame or sparser, each chunk scored
    report = manifest["quality"]
    assert report["segment_every"] == 3 and report["stride"] >= 11
    scores = report["rungs"]["144p"]
    assert len(scores["chunks"]) == manifest["chunks"] >= 4
    assert manifest["chunks"] <= scores["frames"] <= 30 * 30 / 3 / 11 + manifest["chunks"]
    assert 0 < scores["vmaf_min"] <= scores["vmaf_mean"] <= 100


def test_the_published_audio_is_the_track_the_source_flags_default(
    run_job: Any, tmp_path: Path
) -> None:
    # GIVEN Matroska whose first audio track (English, 440 Hz) is not flagged default and
    # whose second (Spanish, 880 Hz) is: the track a player, and ffmpeg, would play
    source = tmp_path / "two_audio.mkv"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2",
         "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000:duration=2",
         "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=spa",
         "-disposition:a:0", "0", "-disposition:a:1", "default", str(source)],
        check=True,
    )  # fmt: skip
    # WHEN it is published
    run = run_job(source)
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    # THEN the audio is that second track: its language, and its tone
    manifest = read_manifest(run.out)
    assert manifest["audio"]["language"] == "es"
    # AND the manifest names the English track as left out
    assert manifest["source"]["audio_left_out"] == ["en (aac)"]
    pcm = subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-i", str(run.out / "audio" / "index.m3u8"),
         "-ac", "1", "-ar", "48000", "-f", "s16le", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    second = np.frombuffer(pcm, np.int16).astype(float)[24000:72000]
    assert np.argmax(np.abs(np.fft.rfft(second))) * 48000 / len(second) == pytest.approx(880)


@pytest.mark.parametrize("name", ["mpegps_late_sound", "mpegts_late_sound"])
def test_sound_that_starts_late_is_published_where_it_starts(
    name: str, clip: Any, run_job: Any
) -> None:
    # GIVEN MPEG-PS or MPEG-TS whose 440 Hz tone starts 10 s in, its audio stream listed
    # only past the head a file is opened with
    # WHEN it is published
    run = run_job(clip(name))
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    # THEN its audio rendition is the file's sound: silence for the first 10 s, then the
    # tone to the end (this asset was published without a sound, its track left out)
    assert read_manifest(run.out)["source"].get("audio_left_out", []) == []
    pcm = subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-i", str(run.out / "audio" / "index.m3u8"),
         "-ac", "1", "-ar", "48000", "-f", "s16le", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    samples = np.frombuffer(pcm, np.int16).astype(float) / 32768
    level = [float(np.sqrt(np.mean(samples[s * 48000 : (s + 1) * 48000] ** 2))) for s in range(16)]
    assert max(level[:9]) < 1e-3, level
    assert min(level[11:15]) > 0.05, level
    tone = samples[11 * 48000 : 15 * 48000]
    assert np.argmax(np.abs(np.fft.rfft(tone))) * 48000 / len(tone) == pytest.approx(440)


@pytest.mark.parametrize("rate", [48000, 44100])
def test_a_loud_5_1_source_is_published_as_stereo_at_its_level_within_full_scale(
    rate: int, run_job: Any, tmp_path: Path
) -> None:
    # GIVEN 5.1 PCM in MOV whose left front, centre and left surround carry one tone at
    # -3 dBFS and whose right front and surround another, each faded in over half a second
    # (AAC overshoots a tone that starts at once): ffmpeg's own downmix sums the left
    # three to 1.7 times full scale, which its AAC encoder let past full scale or turned
    # down by frames of its own choosing
    source = tmp_path / "loud_51.mov"
    left, right = (f"0.7*min(2*t\\,1)*sin(2*PI*{f}*t)" for f in (440, 660))
    tones = f"{left}|{right}|{left}|0|{left}|{right}"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=3",
         "-f", "lavfi", "-i", f"aevalsrc=exprs='{tones}':c=5.1:s={rate}:d=3",
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le", str(source)],
        check=True,
    )  # fmt: skip
    # WHEN it is published
    run = run_job(source)
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    # THEN the audio is the stereo the master playlist names, the left tone on the left
    # (and, as the centre's, on the right), no sample past full scale, and the left tone
    # at the level the stated downmix gives it: its three channels' gains scaled to sum to 1
    assert 'CHANNELS="2"' in (run.out / "master.m3u8").read_text()
    with av.open(str(run.out / "audio" / "index.m3u8")) as published:
        stream = published.streams.audio[0]
        assert stream.codec_context.channels == 2
        samples = np.concatenate([f.to_ndarray() for f in published.decode(stream)], axis=1)
    spectra = np.abs(np.fft.rfft(samples[:, 48000:96000], axis=1))
    assert [int(np.argmax(s)) for s in spectra] == [440, 660]
    assert spectra[0, 440] * 2 / 48000 == pytest.approx(0.7, rel=0.06)
    assert float(np.abs(samples).max()) <= 1.0


def test_a_key_too_long_for_ffmpeg_to_read_fails_in_probe_by_name(clip: Any, run_job: Any) -> None:
    # GIVEN a key S3 takes (1,020 bytes), mostly outside ASCII: its presigned URL, with the
    # session token every function's carries (on AWS, and so locally), is longer than
    # ffmpeg sends
    key = "uploads/" + "\u65e5" * 336 + ".mp4"
    # WHEN it is uploaded
    run = run_job(clip("half_second"), key=key)
    # THEN its job fails in Probe, by name, saying what to do, and publishes nothing
    assert run.status == "FAILED" and run.error == "UnsupportedInputError", run.cause
    assert "shorter key" in (run.cause or "") and run.output_keys == []
    assert run.failure is not None and run.failure["input"]["key"] == key


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("j" * 81, "ValidationException"),  # past 80 characters
        ("game 42", "InvalidName"),
        ("game:42", "InvalidName"),
        ("uploads/game", "InvalidName"),
        ("game#42", "InvalidName"),
        ("game\n42", "InvalidName"),
    ],
)
def test_the_local_stack_refuses_an_execution_name_aws_refuses(
    name: str, code: str, engine: Any
) -> None:
    # GIVEN the local stack's VOD state machine
    sfn = engine.client("stepfunctions")
    # WHEN an execution is started under a name Step Functions refuses
    # THEN it is refused as AWS refuses it: a name vidflow made wrong would otherwise
    # run locally and start nothing deployed
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sfn.start_execution(
            stateMachineArn=engine.endpoints.state_machine_arn, name=name, input="{}"
        )
    assert refused.value.response["Error"]["Code"] == code


@pytest.mark.parametrize(
    ("job_id", "bucket", "recorded"),
    [
        # a source in a bucket the stack does not own: Probe refuses it by the bucket's
        # name, and RecordFailure records the job's failure
        ("elsewhere-0123456789abcdef", "someone-elses", True),
        # a job id naming another job's rung: Probe and RecordFailure both refuse it, and
        # RecordFailure's refusal is not retried into an unrecorded end in RecordFailure
        ("x/360p", None, False),
    ],
    ids=["foreign-bucket", "folder-id"],
)
def test_an_execution_started_by_hand_with_a_refused_event_ends_in_job_failed(
    job_id: str, bucket: str | None, recorded: bool, engine: Any
) -> None:
    # GIVEN an execution started by hand on the VOD state machine
    sfn = engine.client("stepfunctions")
    s3 = engine.client("s3")
    ingest = engine.endpoints.ingest_bucket
    if bucket is not None:
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="uploads/a.mp4", Body=b"not ours")
    source = {"bucket": bucket or ingest, "key": "uploads/a.mp4", "etag": "x"}
    started = sfn.start_execution(
        stateMachineArn=engine.endpoints.state_machine_arn,
        name=f"by-hand-{random.getrandbits(32):08x}",
        input=json.dumps({"job_id": job_id, "source": source}),
    )
    # WHEN it runs
    ended = _wait(sfn, started["executionArn"])
    # THEN it fails in JobFailed, by the name of the refusal, which names what it wanted
    assert ended["status"] == "FAILED"
    assert ended["error"] == "EventError"
    history = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]
    assert entered[-1] == "JobFailed"
    if bucket is not None:
        assert repr(ingest) in ended["cause"]
    # AND the failure is recorded where the job's is (never under another job's folder)
    output = engine.endpoints.output_bucket
    failures = [
        o["Key"] for o in s3.list_objects_v2(Bucket=output, Prefix="failures/").get("Contents", [])
    ]
    assert (f"failures/{job_id}.json" in failures) is recorded
    assert not any("360p" in key for key in failures)
