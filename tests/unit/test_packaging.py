"""CMAF splitting, the DASH manifest, packaging choice and the manifest schema: pure code."""

from __future__ import annotations

import copy
import struct
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

import jsonschema
import pytest

from workflow.errors import TranscodeError, UploadOptionError
from workflow.formats import dash, hls
from workflow.formats.hls import SegmentEntry
from workflow.formats.manifest import SCHEMA, build_manifest, json_schema
from workflow.media import cmaf
from workflow.media.ladder import Rendition
from workflow.media.subtitles import SubtitleTrack
from workflow.runtime import Clients
from workflow.settings import PACKAGINGS, Settings
from workflow.vod.probe import put_again, upload_encryption
from workflow.vod.records import Source
from workflow.vod.start import PACKAGING_METADATA, start_jobs, upload_option

MPD = "{urn:mpeg:dash:schema:mpd:2011}"


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def mdhd(timescale: int) -> bytes:
    return box(b"mdhd", bytes(4) + bytes(8) + struct.pack(">I", timescale) + bytes(8))


def edit_list(media_time: int) -> bytes:
    """``edts`` with one edit: the whole track, from ``media_time`` on, at normal rate."""
    return box(b"edts", box(b"elst", bytes(4) + struct.pack(">IIiHH", 1, 0, media_time, 1, 0)))


def init_segment(
    timescale: int = 15360, codec: bytes = b"avc1", edit: bytes = edit_list(1024)
) -> bytes:
    stbl = box(b"stbl", box(b"stsd", bytes(8) + box(codec, bytes(16))))
    trak = box(b"trak", edit + box(b"mdia", mdhd(timescale) + box(b"minf", stbl)))
    return box(b"ftyp", b"iso6" + bytes(4)) + box(b"moov", box(b"mvhd", bytes(100)) + trak)


def whole_segment(init: bytes, payload: bytes = b"frames") -> bytes:
    return init + box(b"moof", box(b"mfhd", bytes(8))) + box(b"mdat", payload)


def test_a_segment_splits_into_its_init_and_its_fragments() -> None:
    init = init_segment()
    split = cmaf.split_segment(whole_segment(init) + box(b"mfra", bytes(8)))
    assert split.init == init
    assert [b.kind for b in cmaf.boxes(split.media)] == [b"moof", b"mdat"]
    assert cmaf.timescale(split.init) == 15360


def test_the_digest_follows_the_sample_description_and_the_edit_list_only() -> None:
    same = cmaf.sample_description_digest(init_segment(15360))
    assert same == cmaf.sample_description_digest(init_segment(90000))
    assert same != cmaf.sample_description_digest(init_segment(codec=b"hvc1"))
    # a chunk whose B-frame delay differs would play shifted behind the first chunk's init
    assert same != cmaf.sample_description_digest(init_segment(edit=edit_list(512)))
    assert same != cmaf.sample_description_digest(init_segment(edit=b""))


def fragment(decode_time: int, offsets: list[int] | None) -> bytes:
    """One fragment of 512-tick samples with these composition offsets (none: no field)."""
    flags, samples = 0x100, b""
    for offset in offsets or [0, 0, 0]:
        samples += struct.pack(">I", 512) + (struct.pack(">I", offset) if offsets else b"")
    if offsets:
        flags |= 0x800
    count = len(offsets or [0, 0, 0])
    trun = box(b"trun", struct.pack(">I", flags) + struct.pack(">I", count) + samples)
    tfdt = box(b"tfdt", b"\x01" + bytes(3) + struct.pack(">Q", decode_time))
    traf = box(b"traf", box(b"tfhd", bytes(8)) + tfdt + trun)
    return box(b"moof", box(b"mfhd", bytes(8)) + traf) + box(b"mdat", b"frames")


def presented(split: cmaf.SplitSegment) -> list[int]:
    """Each sample's presentation time: decode time plus offset, less the edit."""
    media, init = split.media, split.init
    elst = next(b for b in cmaf._find(init, b"elst"))
    edit = struct.unpack_from(">i", init, elst.body.start + 12)[0]
    tfdt = next(b for b in cmaf._find(media, b"tfdt", inside=cmaf.FRAGMENT))
    decoded = struct.unpack_from(">Q", media, tfdt.body.start + 4)[0]
    trun = next(b for b in cmaf._find(media, b"trun", inside=cmaf.FRAGMENT))
    count = struct.unpack_from(">I", media, trun.body.start + 4)[0]
    times = []
    for i in range(count):
        offset = struct.unpack_from(">I", media, trun.body.start + 12 + 8 * i)[0]
        times.append(decoded + 512 * i + offset - edit)
    return times


@pytest.mark.parametrize(
    ("own", "offsets", "earlier"),
    [
        (1024, [1024, 2560, 1024, 0], 0),  # the muxer measured 2 frames: moved to 3
        (1300, [1300, 2800, 1300, 0], 0),  # frames that came a little late: still fits
        (2560, [2560, 4096, 512, 0], 1024),  # slower frames than 3 at the rung's rate
    ],
)
def test_a_segment_gets_the_rungs_one_edit_and_keeps_its_frames_times(
    own: int, offsets: list[int], earlier: int
) -> None:
    # GIVEN a segment whose muxer put its own B-frame delay in the edit list
    split = cmaf.split_segment(init_segment(edit=edit_list(own)) + fragment(10_000, offsets))
    # WHEN it is rewritten to the rung's edit, 3 frames of 512 ticks
    common = cmaf.with_common_edit(split, cmaf.common_edit(15360, 30.0))
    # THEN its init is the one every segment of the rung gets
    assert common.init == init_segment(edit=edit_list(1536))
    # AND every frame is presented when it was, no composition offset below zero
    assert presented(common) == presented(split)
    # AND the decode time stays the first frame's presentation time, unless the frames
    # before the keyframe came slower than the edit allows
    tfdt = next(b for b in cmaf._find(common.media, b"tfdt", inside=cmaf.FRAGMENT))
    assert struct.unpack_from(">Q", common.media, tfdt.body.start + 4)[0] == 10_000 - earlier


def test_a_segment_without_b_frames_is_left_as_it_is() -> None:
    split = cmaf.split_segment(init_segment(edit=edit_list(0)) + fragment(10_000, None))
    assert cmaf.with_common_edit(split, 1536) == split


@pytest.mark.parametrize(
    "damaged",
    [
        b"\x00\x00\x00\x10ftyp",  # claims more bytes than there are
        box(b"moov", b"") + box(b"moof", b""),  # no ftyp first
        init_segment(),  # no fragment at all
        b"\x00\x00\x00",  # a box header cut short
    ],
)
def test_a_damaged_segment_is_a_transcode_error(damaged: bytes) -> None:
    with pytest.raises(TranscodeError):
        cmaf.split_segment(damaged)


def segments(*durations: float) -> list[SegmentEntry]:
    return [SegmentEntry(f"seg_{i:05d}.m4s", d, 1000) for i, d in enumerate(durations)]


def test_the_timeline_merges_equal_durations_and_never_drifts() -> None:
    track = dash.Track(10.0, segments(4.0, 4.0, 4.0, 2.966667), 15360)
    assert dash.timeline(track) == [
        {"t": 153600, "d": 61440, "r": 2},
        {"t": 337920, "d": 45568, "r": 0},
    ]
    # 1001/30000 s frames: a third of a tick lost per segment would add up; it does not
    thirds = dash.Track(0.0, segments(*[1.001] * 3000), 30000)
    entries = dash.timeline(thirds)
    total = sum(e["d"] * (1 + e["r"]) for e in entries)
    assert total == round(3000 * 1.001 * 30000)


@pytest.mark.parametrize(
    ("rate", "written"),
    [(25.0, "25"), (29.97, "30000/1001"), (23.976, "24000/1001"), (59.94, "60000/1001"),
     (12.5, "25/2"), (7.5, "15/2"), (14.985, "15000/1001"), (30.12, "753/25")],
)  # fmt: skip
def test_the_mpd_frame_rate_is_the_rate_itself(rate: float, written: str) -> None:
    # GIVEN a source's frame rate as the probe gives it (to three decimals)
    document = dash.mpd(
        duration=4.0,
        segment_seconds=4.0,
        video=dash.Track(0.0, segments(4.0), 12800),
        representations=[dash.VideoRepresentation("360p", 900_000, 640, 360, "avc1.64001e")],
        frame_rate=rate,
    )
    # THEN @frameRate names that rate, not the nearest multiple of 1/1001 (12512/1001)
    (video,) = ET.fromstring(document).findall(f"{MPD}Period/{MPD}AdaptationSet")
    assert video.get("frameRate") == written


def test_the_mpd_lists_every_rung_audio_and_subtitles() -> None:
    # GIVEN two rungs, audio and one subtitle language
    document = dash.mpd(
        duration=10.0,
        segment_seconds=4.0,
        video=dash.Track(10.0, segments(4.0, 4.0, 2.0), 15360),
        representations=[
            dash.VideoRepresentation("720p", 3_000_000, 1280, 720, "avc1.64001f"),
            dash.VideoRepresentation("360p", 900_000, 640, 360, "avc1.64001e"),
        ],
        frame_rate=29.97,
        audio=dash.Track(10.0, segments(3.989, 4.011, 2.0), 48000),
        audio_bandwidth=130_000,
        audio_language="en",
        text=[dash.TextTrack("pt-BR", "subtitles/pt-BR.vtt")],
    )
    root = ET.fromstring(document)
    # THEN it is a static MPD of three adaptation sets
    assert root.get("type") == "static" and root.get("mediaPresentationDuration") == "PT10.000S"
    video, audio, text = root.findall(f"{MPD}Period/{MPD}AdaptationSet")
    assert video.get("frameRate") == "30000/1001" and video.get("maxWidth") == "1280"
    assert video.get("par") == "16:9"
    assert [r.get("id") for r in video.findall(f"{MPD}Representation")] == ["720p", "360p"]
    template = video.find(f"{MPD}SegmentTemplate")
    assert template is not None
    assert template.get("media") == "$RepresentationID$/seg_$Number%05d$.m4s"
    assert template.get("presentationTimeOffset") == "153600"
    audio_template = audio.find(f"{MPD}SegmentTemplate")
    assert audio_template is not None and audio_template.get("timescale") == "48000"
    assert audio.get("lang") == "en"
    assert text.get("lang") == "pt-BR"
    assert text.findtext(f"{MPD}Representation/{MPD}BaseURL") == "subtitles/pt-BR.vtt"


@pytest.mark.parametrize("captions", [True, False])
def test_the_mpd_declares_the_captions_the_video_carries(captions: bool) -> None:
    # GIVEN one rung whose video carries CEA-608 captions, or none
    document = dash.mpd(
        duration=4.0,
        segment_seconds=4.0,
        video=dash.Track(10.0, segments(4.0), 15360),
        representations=[dash.VideoRepresentation("360p", 900_000, 640, 360, "avc1.64001e")],
        frame_rate=25.0,
        captions=captions,
    )
    # THEN the video set says so as dash.js and shaka-player read it (SCTE 214-1's
    # scheme, channel CC1), in the schema's place: before the segment template
    (video,) = ET.fromstring(document).findall(f"{MPD}Period/{MPD}AdaptationSet")
    declared = [
        (a.get("schemeIdUri"), a.get("value")) for a in video.findall(f"{MPD}Accessibility")
    ]
    assert declared == ([("urn:scte:dash:cc:cea-608:2015", "CC1")] if captions else [])
    tags = [child.tag.removeprefix(MPD) for child in video]
    if captions:
        assert tags.index("Accessibility") < tags.index("SegmentTemplate")


def test_the_mpd_names_a_picture_aspect_only_where_every_rung_shows_it() -> None:
    # GIVEN rungs of a 720x480 32:27 source, rounded to even sizes: 852x480 is 71:40
    document = dash.mpd(
        duration=4.0,
        segment_seconds=4.0,
        video=dash.Track(4.0, segments(4.0), 15360),
        representations=[
            dash.VideoRepresentation("480p", 1_500_000, 852, 480, "avc1.64001f"),
            dash.VideoRepresentation("360p", 900_000, 640, 360, "avc1.64001e"),
        ],
        frame_rate=25.0,
    )
    video = ET.fromstring(document).find(f"{MPD}Period/{MPD}AdaptationSet")
    assert video is not None
    # THEN the set says no @par, which would contradict one of its representations
    assert video.get("par") is None
    assert {r.get("sar") for r in video.findall(f"{MPD}Representation")} == {"1:1"}


def test_fmp4_media_playlists_are_version_7_with_their_init() -> None:
    ts = hls.media_playlist(segments(4.0))
    fmp4 = hls.media_playlist(segments(4.0), init="init.mp4")
    assert "#EXT-X-VERSION:3" in ts and "EXT-X-MAP" not in ts
    assert "#EXT-X-VERSION:7" in fmp4 and '#EXT-X-MAP:URI="init.mp4"' in fmp4


@pytest.mark.parametrize(
    ("metadata", "chosen"),
    [
        ({}, "hls-ts"),
        ({"vidflow-packaging": "cmaf"}, "cmaf"),
        ({"Vidflow-Packaging": " CMAF "}, "cmaf"),
        ({"other": "cmaf"}, "hls-ts"),
    ],
)
def test_an_upload_may_choose_its_packaging(metadata: dict[str, str], chosen: str) -> None:
    assert upload_option(metadata, PACKAGING_METADATA, PACKAGINGS, "hls-ts") == chosen


def test_an_unknown_packaging_is_a_named_input_error() -> None:
    with pytest.raises(UploadOptionError, match="hls-ts, cmaf"):
        upload_option({"vidflow-packaging": "webm"}, PACKAGING_METADATA, PACKAGINGS, "hls-ts")


@pytest.mark.parametrize(
    ("metadata", "packaging", "stack", "chosen"),
    [
        ({}, "hls-ts", "none", "none"),
        ({}, "hls-ts", "aes-128", "aes-128"),
        ({"vidflow-encryption": "aes-128"}, "hls-ts", "none", "aes-128"),
        ({"vidflow-encryption": "cbcs"}, "cmaf", "aes-128", "cbcs"),
        # an upload may not turn off what the stack protects
        ({"vidflow-encryption": "none"}, "hls-ts", "aes-128", "not none"),
        ({"Vidflow-Encryption": " None "}, "cmaf", "cbcs", "not none"),
        # nor ask for a method its packaging does not take
        ({"vidflow-encryption": "aes-128"}, "cmaf", "none", "protects hls-ts packaging"),
    ],
)
def test_an_upload_may_ask_for_protection_never_for_less_than_the_stack(
    metadata: dict[str, str], packaging: str, stack: str, chosen: str
) -> None:
    if " " not in chosen:
        assert upload_encryption(metadata, packaging, stack) == chosen
    else:
        with pytest.raises(UploadOptionError, match=chosen):
            upload_encryption(metadata, packaging, stack)


def test_the_packaging_setting_is_checked_at_cold_start() -> None:
    assert Settings.from_env({"PACKAGING": "cmaf"}).packaging == "cmaf"
    with pytest.raises(Exception, match="PACKAGING must be one of"):
        Settings.from_env({"PACKAGING": "mp4"})


class _RecordingStepFunctions:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start_execution(self, **kwargs: Any) -> dict[str, str]:
        self.started.append(kwargs["name"])
        return {"executionArn": kwargs["name"]}


def test_sidecar_uploads_start_no_job() -> None:
    sfn = _RecordingStepFunctions()
    records = [
        {"s3": {"bucket": {"name": "in"}, "object": {"key": key, "eTag": "e", "size": 1}}}
        for key in ("uploads/game.en.srt", "uploads/game.vtt", "uploads/game.mp4")
    ]
    settings = Settings(state_machine_arn="arn:aws:states:eu-west-1:1:stateMachine:vod")
    start_jobs(records, settings, Clients(s3=None, sfn=sfn))
    assert len(sfn.started) == 1 and sfn.started[0].startswith("game-")


def manifest(**changes: Any) -> dict[str, Any]:
    rung = Rendition("360p", 640, 360, 800, "3.0")
    variant = hls.VariantEntry("360p/index.m3u8", 900_000, 850_000, 640, 360, 30.0, "avc1.64001e")
    built = build_manifest(
        job_id="game-0123456789abcdef",
        source={"bucket": "in", "key": "uploads/game.mp4", "duration": 8.0, "audio": None},
        segment_seconds=4.0,
        chunks=1,
        audio_kbps=128,
        renditions=[(rung, variant)],
        playlists={"360p": segments(4.0, 4.0)},
        audio=None,
        timings={"probe": 0.5},
        packaging="cmaf",
        images={
            "poster": "images/poster.jpg",
            "poster_time": 5.0,
            "thumbnails": {
                "count": 2, "interval": 5.0, "width": 320, "height": 180,
                "first": "images/thumbnails/00000.jpg",
            },
            "sprites": {"count": 1, "columns": 2, "rows": 1, "vtt": "images/thumbnails.vtt"},
            "wall_seconds": 1.5,
        },
        subtitles=[SubtitleTrack("en")],
    )  # fmt: skip
    built.update(changes)
    return built


def test_a_built_manifest_conforms_to_the_published_schema() -> None:
    built = manifest()
    jsonschema.validate(built, json_schema())
    assert built["schema"] == SCHEMA and built["dash"] == "manifest.mpd"
    assert built["subtitles"][0] == {
        "language": "en",
        "name": "English",
        "playlist": "subtitles/en.m3u8",
        "webvtt": "subtitles/en.vtt",
    }


@pytest.mark.parametrize(
    "broken",
    [
        {"schema": "vidflow.manifest/1"},
        {"packaging": "webm"},
        {"renditions": []},
        {"extra": True},
    ],
)
def test_the_schema_rejects_what_a_reader_could_not_use(broken: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(manifest(**broken), json_schema())


def test_the_schema_requires_every_rendition_field() -> None:
    built = manifest()
    missing = copy.deepcopy(built)
    del missing["renditions"][0]["bytes"]
    with pytest.raises(jsonschema.ValidationError, match="bytes"):
        jsonschema.validate(missing, json_schema())


@pytest.mark.parametrize(
    ("version", "uploaded_at", "modified", "again"),
    [
        # without versions: a Last-Modified past the event's time (and S3's whole second)
        (None, "2026-11-27T12:00:00.400Z", "2026-11-27T12:00:03+00:00", True),
        (None, "2026-11-27T12:00:00.400+00:00", "2026-11-27T12:00:00+00:00", False),
        (None, "2026-11-27T12:00:00.400Z", "2026-11-27T12:00:01+00:00", False),
        # a version pins the metadata too; an event without a time says nothing
        ("3HL4kqtJlcpXroDTDmJ", "2026-11-27T12:00:00.400Z", "2026-11-27T12:00:03+00:00", False),
        (None, None, "2026-11-27T12:00:03+00:00", False),
        (None, "not a time", "2026-11-27T12:00:03+00:00", False),
        (None, "2026-11-27T12:00:00", "2026-11-27T12:00:03+00:00", True),
    ],
)
def test_the_same_bytes_put_again_before_probe_reads_their_options_are_seen(
    version: str | None, uploaded_at: str | None, modified: str, again: bool
) -> None:
    # GIVEN a job's upload, whose ETag still matches, and the head's Last-Modified
    source = Source("in", "uploads/a.mp4", "9e107d9d", version, uploaded_at=uploaded_at)
    # THEN a later PUT of the same bytes (other options) is told from the job's own
    assert put_again(source, datetime.fromisoformat(modified)) is again
