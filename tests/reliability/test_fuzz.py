"""A bounded fuzz tier: arbitrary values into the pure core, damaged uploads into the stack.

Every refusal must be said in the workflow's own words, a ``VidflowError``; any other
exception reaching a caller (or the state machine) is a crash. A crash found here stays
as an explicit ``@example`` or a fixed mutant until ``workflow/`` is fixed, so the
failure reproduces byte for byte on every run.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.media import synth
from tests.media.registry import REAL_MEDIA
from workflow import errors
from workflow.errors import ConfigurationError, NotAVideoError, UnsafeInputError, VidflowError
from workflow.local.binaries import ffmpeg_binary
from workflow.media.chunks import FrameIndex, plan_chunks
from workflow.media.ladder import MIN_SIDE, build_ladder
from workflow.media.probe import probe
from workflow.media.sniff import DEMUXER_FOR_FAMILY, sniff
from workflow.settings import Limits, Settings

FAST = settings(max_examples=200, deadline=None)


# An edit of an upload; hypothesis draws them, the stack tier draws them from a seeded
# Random, and a crash is pinned as the same few edits.
Op = tuple[Any, ...]


@dataclass(frozen=True)
class Upload:
    """``source`` (a seed file's name, or "" for no file) with ``ops`` applied in order.

    ops: ("set", pos, byte), ("xor", pos, mask), ("cut", at), ("dup", start, length,
    at), ("zero", start, length), ("append", bytes). Positions wrap around the length.
    """

    source: str
    ops: tuple[Op, ...] = ()

    def apply(self, original: bytes) -> bytes:
        data = bytearray(original)
        for op in self.ops:
            kind, args = op[0], op[1:]
            if kind == "append":
                data += args[0]
            elif not data:
                continue
            elif kind == "set":
                data[args[0] % len(data)] = args[1]
            elif kind == "xor":
                data[args[0] % len(data)] ^= args[1]
            elif kind == "cut":
                del data[max(1, args[0] % len(data)) :]
            elif kind == "dup":
                start = args[0] % len(data)
                piece = data[start : start + args[1]]
                at = args[2] % (len(data) + 1)
                data[at:at] = piece
            elif kind == "zero":
                start = args[0] % len(data)
                end = min(len(data), start + args[1])
                data[start:end] = bytes(end - start)
        return bytes(data)


# Small real files (sha256-pinned in tests/media/registry.py) and synthetic clips.
REAL_SEEDS = (
    "vp9_opus_webm",
    "av1_opus_mkv",
    "hevc_main_aac_mp4",
    "hevc_rext_10bit_444_aac_mpegts",
    "mpegts_midstream_pat_pmt_large_pts",
    "flv_audio_only_aac",
    "mpegts_h264_aac",
    "h264_aac_1080p_1s_start_offset",
    "vp8_vorbis_webm",
)
SYNTHETIC_SEEDS = ("half_second", "rotated_90", "mpegts_bframes")

# Crashes found by this file, each the fewest edits that still crash ``probe``.
# UnicodeDecodeError from av.open: PyAV decodes container metadata strictly (major_brand).
UNDECODABLE_BRAND = Upload("hevc_main_aac_mp4", (("set", 8, 0xFF),))
# AttributeError: an unknown video CodecID ("V_VP9" -> "V_QP9") has no codec_context.
UNKNOWN_VIDEO_CODEC = Upload("vp9_opus_webm", (("set", 435, ord("Q")),))
# AttributeError: an unknown audio CodecID ("A_OPUS" -> "A_QPUS") has no codec_context.
UNKNOWN_AUDIO_CODEC = Upload("vp9_opus_webm", (("set", 506, ord("Q")),))
# IndexError from PyAV's demux: one PID bit flipped, the TS demuxer adds a stream mid-scan.
STREAM_APPEARS_MID_SCAN = Upload("mpegts_h264_aac", (("set", 44369, 0x51),))
# av.error.PermissionError (EPERM) from container.seek, which is outside the try.
SEEK_REFUSED = Upload("h264_aac_1080p_1s_start_offset", (("set", 860, 0xE4),))
# ZeroDivisionError in _finish_facts: the only video packet repeated, every delta is 0.
REPEATED_FRAME = Upload("hevc_rext_10bit_444_aac_mpegts", (("dup", 564, 188, 3384),))
PROBE_CRASHES = {
    "undecodable-brand": UNDECODABLE_BRAND,
    "unknown-video-codec": UNKNOWN_VIDEO_CODEC,
    "unknown-audio-codec": UNKNOWN_AUDIO_CODEC,
    "stream-appears-mid-scan": STREAM_APPEARS_MID_SCAN,
    "seek-refused": SEEK_REFUSED,
    "repeated-frame": REPEATED_FRAME,
}


class Seeds(dict[str, bytes]):
    """Seed files by name; short in hypothesis's report of a falsifying example."""

    def __repr__(self) -> str:
        return f"<{len(self)} seed files>"


@pytest.fixture(scope="module")
def seeds(clip: Any, real_media: dict[str, Path]) -> Seeds:
    """The seed files' bytes, read once; "" is the empty seed for arbitrary bytes."""
    files = {name: real_media[name] for name in REAL_SEEDS}
    files |= {name: clip(name) for name in SYNTHETIC_SEEDS}
    return Seeds({"": b""} | {name: path.read_bytes() for name, path in files.items()})


def error_class(name: str | None) -> type | None:
    """The ``workflow.errors`` class an error name stands for, if it is one of ours."""
    found = getattr(errors, name or "", None)
    return found if isinstance(found, type) and issubclass(found, VidflowError) else None


# The container signatures, spelled from the formats' own specifications.
SIGNATURES = (
    b"\x1a\x45\xdf\xa3",
    b"FLV",
    b"\x00\x00\x01\xba",
    b"\x00\x00\x01\xb3",
    b"RIFF\x00\x00\x00\x00AVI ",
    b"\x00\x00\x00\x20ftypisom",
    b"\x00\x00\x00\x08moov",
    b"\x47" + bytes(187) + b"\x47",
)


def starts_like_a_container(data: bytes) -> bool:
    return (
        data[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
        or data[:4] in (b"\x1a\x45\xdf\xa3", b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")
        or data[:3] == b"FLV"
        or (data[:4] == b"RIFF" and data[8:12] == b"AVI ")
        or (len(data) > 188 and data[0] == 0x47 and data[188] == 0x47)
    )


heads = st.one_of(
    st.binary(max_size=600),
    st.builds(lambda sig, rest: sig + rest, st.sampled_from(SIGNATURES), st.binary(max_size=300)),
    st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
)


@FAST
@given(head=heads)
def test_sniff_names_a_family_or_refuses_by_name(head: bytes) -> None:
    # GIVEN any first bytes of an upload
    # WHEN they are sniffed
    try:
        family = sniff(head)
    except (NotAVideoError, UnsafeInputError):
        return
    # THEN a family with exactly one demuxer is named (or a named refusal was raised)
    assert family in DEMUXER_FOR_FAMILY


def any_case(marker: str) -> st.SearchStrategy[bytes]:
    flips = st.lists(st.booleans(), min_size=len(marker), max_size=len(marker))
    return flips.map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(marker, upper, strict=True))
    ).map(str.encode) | st.just(marker.encode())


@FAST
@given(
    prefix=st.binary(max_size=4096 - len("ffconcat")),
    marker=st.sampled_from(["#EXTM3U", "ffconcat"]).flatmap(any_case),
    suffix=st.binary(max_size=400),
)
def test_playlists_and_concat_lists_are_unsafe_wherever_they_sit(
    prefix: bytes, marker: bytes, suffix: bytes
) -> None:
    # GIVEN a marker of indirection inside the first 4 KiB, behind no container signature
    head = prefix + marker + suffix
    if starts_like_a_container(head):
        return
    # WHEN / THEN the upload is refused as unsafe, before ffmpeg could follow it
    with pytest.raises(UnsafeInputError):
        sniff(head)


class _DidNotReturnError(AssertionError):
    pass


@contextlib.contextmanager
def returns_within(seconds: float) -> Iterator[None]:
    """Fail instead of hanging; pytest-timeout's own alarm is put back afterwards."""

    def expire(signum: int, frame: Any) -> None:
        raise _DidNotReturnError(f"did not return within {seconds} s")

    began = time.monotonic()
    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            left = outer_left - (time.monotonic() - began)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


@st.composite
def frame_indexes(draw: st.DrawFn) -> FrameIndex:
    """A span from any offset, with sorted unique keyframes listed in it or none."""
    offset = draw(
        st.one_of(
            st.floats(-1e5, 1e5),
            st.floats(-1e18, 1e18),
            st.sampled_from([0.0, 1.4, 95443.717, -10.0, 2.0**33 / 90_000]),
        )
    )
    gaps = draw(st.lists(st.floats(0.001, 40.0), max_size=60))
    keys = sorted({offset, *(offset + t for t in itertools.accumulate(gaps))})
    end = keys[-1] + draw(st.floats(0.001, 40.0))
    if end <= keys[-1]:
        end = math.nextafter(keys[-1], math.inf)
    listed = keys if draw(st.booleans()) else []
    return FrameIndex(start=offset, end=end, keyframes=listed)


@FAST
# Hang: 1e17 + 4.0 == 1e17, so segment_starts' "t += segment_seconds" never advances.
# This is what probe returns for the far-future upload below, planned with the defaults.
@example(
    index=FrameIndex(1e17, 1e17 + 64, [1e17 + 16 * k for k in range(4)]),
    segment=4.0,
    per_chunk=3,
)
# A last segment starting at the chunk's end: near 2**51 s, stop - 0.25 rounds up to stop.
@example(index=FrameIndex(2251799813685209.0, 2251799813685249.0), segment=1.0, per_chunk=1)
@given(index=frame_indexes(), segment=st.floats(0.5, 10.0), per_chunk=st.integers(1, 6))
def test_chunks_tile_any_frame_index(index: FrameIndex, segment: float, per_chunk: int) -> None:
    # GIVEN any valid frame index and a chunk length that is a multiple of the segment's
    chunk_seconds = segment * per_chunk
    # WHEN it is planned
    with returns_within(1.0):
        chunks = plan_chunks(index, chunk_seconds, segment)
    # THEN the chunks tile [start, end] without a gap
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].start == index.start
    assert chunks[-1].end == index.end
    assert all(c.end > c.start for c in chunks)
    for before, after in pairwise(chunks):
        assert after.start == before.end
        assert after.first_segment == before.first_segment + len(before.segment_starts)
    assert chunks[0].first_segment == 0
    # AND each chunk's segments start at the chunk, increase, and stay inside it
    for c in chunks:
        starts = c.segment_starts
        assert starts[0] == c.start
        assert all(a < b for a, b in pairwise(starts))
        assert all(c.start <= s < c.end for s in starts)


def shift_fragments(mp4: bytes, by: int) -> bytes:
    """Add ``by`` to every fragment's 64-bit base decode time (``tfdt``, version 1)."""
    data = bytearray(mp4)
    at = data.find(b"tfdt")
    while at >= 0:
        assert data[at + 4] == 1, "a 32-bit tfdt cannot hold the shift"
        time_at = slice(at + 8, at + 16)
        data[time_at] = (int.from_bytes(data[time_at], "big") + by).to_bytes(8, "big")
        at = data.find(b"tfdt", at + 4)
    return bytes(data)


def test_far_future_upload_is_planned_or_refused_in_bounded_time(tmp_path: Path) -> None:
    # GIVEN a 9 KB fragmented MP4, four 64x48 keyframes 16 s apart at timescale 1, whose
    # fragments say they start at 1e17 s (where consecutive floats are 16 s apart)
    path = tmp_path / "far_future.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "lavfi"]
        + ["-i", "testsrc2=size=64x48:rate=1/16:duration=64", "-c:v", "libx264"]
        + ["-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "1", "-video_track_timescale"]
        + ["1", "-movflags", "frag_keyframe+empty_moov", str(path)],
        check=True,
    )
    data = shift_fragments(path.read_bytes(), 10**17)
    path.write_bytes(data)
    # WHEN the Probe and Plan steps read it with the default settings
    try:
        probed = probe(str(path), head=data[: 64 * 1024], size=len(data), limits=Limits())
    except errors.InputError:
        return  # refused by name: fine
    with returns_within(1.0):
        chunks = plan_chunks(probed.index, Settings.chunk_seconds, Settings.segment_seconds)
    # THEN the plan is finished, not a loop that runs until the function times out
    assert chunks[-1].end == probed.index.end


H264_LEVELS = {f"{major}.{minor}" for major in range(1, 7) for minor in range(3)} | {"1.3"}
ladders = st.one_of(
    st.just(Settings.ladder),
    # (one rung per size once made even, each smaller rung cheaper: others are refused,
    # test_ladder.py)
    st.lists(
        st.tuples(st.integers(MIN_SIDE, 4320), st.integers(1, 50_000)),
        min_size=1,
        max_size=6,
        unique_by=(lambda rung: round(rung[0] / 2), lambda rung: rung[1]),
    ).map(
        lambda rungs: ",".join(
            f"{side}:{kbps}"
            for side, kbps in zip(
                sorted((side for side, _ in rungs), reverse=True),
                sorted((kbps for _, kbps in rungs), reverse=True),
                strict=True,
            )
        )
    ),
)


@FAST
@given(
    width=st.integers(2, 8192),
    height=st.integers(2, 8192),
    fps=st.floats(1.0, 240.0),
    spec=ladders,
)
def test_ladder_never_upscales_and_keeps_the_shape(
    width: int, height: int, fps: float, spec: str
) -> None:
    # GIVEN any display size and frame rate
    # WHEN its ladder is built
    renditions = build_ladder(width, height, fps, spec)
    # THEN every rung is even, no larger than the source, the source's shape within
    # 2 px, at a real H.264 level
    assert renditions
    assert len({r.name for r in renditions}) == len(renditions)  # each its own folder
    short, long_ = sorted((width, height))
    for r in renditions:
        assert r.width % 2 == 0 and r.height % 2 == 0 and r.width >= 2 and r.height >= 2
        assert r.width <= width and r.height <= height
        r_short, r_long = sorted((r.width, r.height))
        assert (r.width >= r.height) == (width >= height) or r.width == r.height
        assert abs(r_long - r_short * long_ / short) <= 2, (r, width, height)
        assert r.level in H264_LEVELS
        assert r.codecs.startswith("avc1.6400") and len(r.codecs) == 11


NUMERIC_VARS = (
    "MAX_INPUT_BYTES",
    "MAX_INPUT_SECONDS",
    "MAX_INPUT_PIXELS",
    "MAX_INPUT_FPS",
    "MAX_INPUT_STREAMS",
    "AUDIO_KBPS",
    "CHUNK_SECONDS",
    "SEGMENT_SECONDS",
    "MAP_MAX_CONCURRENCY",
)
env_values = st.one_of(
    st.text(max_size=12),
    st.integers(-(10**20), 10**20).map(str),
    st.floats().map(repr),
    st.sampled_from(["1e-320", "5e-324", "1e308", "4", "12", "0x10", "1_000", " 7 ", "١٢"]),
)


@FAST
# OverflowError: 12 / 1e-320 is inf and round(inf) raises in the multiple-of check.
@example(env={"SEGMENT_SECONDS": "1e-320"})
@given(env=st.dictionaries(st.sampled_from(NUMERIC_VARS), env_values, max_size=len(NUMERIC_VARS)))
def test_settings_accept_or_name_any_environment(env: dict[str, str]) -> None:
    # GIVEN any strings in the numeric settings
    # WHEN the function starts and reads them
    try:
        loaded = Settings.from_env(env)
    except ConfigurationError:
        return
    # THEN they were read as positive finite numbers (or refused by name above)
    assert loaded.chunk_seconds > 0 and loaded.segment_seconds > 0
    assert math.isfinite(loaded.limits.max_seconds) and loaded.limits.max_bytes > 0


positions = st.one_of(st.integers(0, 1023), st.integers(0, 2**20))
ops = st.one_of(
    st.tuples(st.just("set"), positions, st.integers(0, 255)),
    st.tuples(st.just("cut"), positions),
    st.tuples(st.just("dup"), positions, st.integers(1, 4096), positions),
    st.tuples(st.just("zero"), positions, st.integers(1, 4096)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=512)),
)
uploads = st.builds(
    Upload,
    st.sampled_from(["", *REAL_SEEDS, *SYNTHETIC_SEEDS]),
    st.lists(ops, max_size=6).map(tuple),
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.real_media
@settings(max_examples=60, deadline=None)
@example(upload=UNDECODABLE_BRAND)
@example(upload=UNKNOWN_VIDEO_CODEC)
@example(upload=UNKNOWN_AUDIO_CODEC)
@example(upload=STREAM_APPEARS_MID_SCAN)
@example(upload=SEEK_REFUSED)
@example(upload=REPEATED_FRAME)
@given(upload=uploads)
def test_probe_refuses_damaged_bytes_by_name(upload: Upload, seeds: Seeds, scratch: Path) -> None:
    # GIVEN a seed file, damaged (or arbitrary bytes), uploaded whole
    data = upload.apply(seeds[upload.source])
    path = scratch / "upload.bin"
    path.write_bytes(data)
    # WHEN it is probed the way the Probe step does (64 KiB head, real size)
    try:
        probe(str(path), head=data[: 64 * 1024], size=len(data), limits=Limits(), timeout=20)
    except VidflowError as exc:
        # THEN any refusal is one of the workflow's own, an input error
        assert isinstance(exc, errors.InputError), exc


ENGINE_SOURCES = (
    "half_second",
    "rotated_90",
    "mpegts_bframes",
    "mpegts_h264_aac",
    "vp8_vorbis_webm",
)
KINDS = ("flip", "header", "truncate", "splice", "zero")
SEED = 20240611


def mutant(source: str, kind: str, rng: random.Random, size: int) -> Upload:
    """One damaged copy of ``source`` (``size`` bytes), drawn from ``rng``."""
    body = range(min(1024, size - 1), size)
    if kind == "flip":
        flips = [rng.choice(body) for _ in range(rng.randint(1, 24))]
        return Upload(source, tuple(("xor", p, 1 << rng.randrange(8)) for p in flips))
    if kind == "header":
        return Upload(
            source,
            tuple(("set", rng.randrange(min(1024, size)), rng.randrange(256)) for _ in range(4)),
        )
    if kind == "truncate":
        return Upload(source, (("cut", rng.randrange(size // 8, size)),))
    if kind == "splice":
        start = rng.randrange(size)
        return Upload(source, (("dup", start, rng.randint(188, 16 * 1024), rng.randrange(size)),))
    return Upload(source, (("zero", rng.randrange(size), rng.randint(64, 8 * 1024)),))


MUTATIONS = random.Random(SEED).sample(list(itertools.product(ENGINE_SOURCES, KINDS)), 16)
MUTANTS = [
    pytest.param(i, source, kind, id=f"{i:02d}-{source}-{kind}")
    for i, (source, kind) in enumerate(MUTATIONS)
]


@pytest.fixture(scope="module")
def outcomes() -> Iterator[Counter[str]]:
    """How the mutants ended, printed once the module is done (``pytest -s`` shows it)."""
    tally: Counter[str] = Counter()
    yield tally
    lines = [f"  {outcome}: {n}" for outcome, n in sorted(tally.items())]
    print(f"\nfuzz mutants: {sum(tally.values())} tried", *lines, sep="\n")


def suffix(name: str) -> str:
    filename = REAL_MEDIA[name].filename if name in REAL_MEDIA else synth.CLIPS[name].filename
    return Path(filename).suffix


def run_damaged(upload: Upload, name: str, original: bytes, run_job: Any, tmp_path: Path) -> Any:
    """Upload ``upload`` applied to ``original`` as ``uploads/fuzz/<name>`` and follow its job."""
    path = tmp_path / f"{name}{suffix(upload.source)}"
    path.write_bytes(upload.apply(original))
    return run_job(path, key=f"uploads/fuzz/{path.name}")


def assert_published_or_refused(run: Any, upload: Upload, outcomes: Counter[str]) -> None:
    """The job published a whole asset, or failed with one of the workflow's own errors."""
    named = error_class(run.error) is not None
    ended = "published" if run.status == "SUCCEEDED" else "refused" if named else "CRASH"
    outcomes[ended if run.status == "SUCCEEDED" else f"{ended}: {run.error}"] += 1
    assert run.status in ("SUCCEEDED", "FAILED"), (run.status, upload)
    if run.status == "SUCCEEDED":
        assert run.out is not None and (run.out / "master.m3u8").is_file()
        return
    assert named, f"{run.error} reached the state machine: {run.cause!r} from {upload}"
    assert run.cause and "\n" not in run.cause
    assert run.failure is not None and run.failure["error"] == run.error
    assert run.output_keys == [], "a refused upload left output behind"


@pytest.mark.real_media
@pytest.mark.parametrize(("number", "source", "kind"), MUTANTS)
def test_damaged_upload_is_published_or_refused_by_name(
    number: int,
    source: str,
    kind: str,
    seeds: Seeds,
    run_job: Any,
    outcomes: Counter[str],
    tmp_path: Path,
) -> None:
    # GIVEN a small real or synthetic video, damaged reproducibly
    upload = mutant(source, kind, random.Random(SEED + number), len(seeds[source]))
    # WHEN it is uploaded and its job runs to the end
    run = run_damaged(upload, f"{number:02d}-{source}-{kind}", seeds[source], run_job, tmp_path)
    # THEN it is published whole, or refused with one of the workflow's own errors
    assert_published_or_refused(run, upload, outcomes)


@pytest.mark.real_media
@pytest.mark.parametrize("name", PROBE_CRASHES)
def test_pinned_probe_crash_is_published_or_refused_by_name(
    name: str, seeds: Seeds, run_job: Any, outcomes: Counter[str], tmp_path: Path
) -> None:
    # GIVEN an upload that once crashed the probe
    upload = PROBE_CRASHES[name]
    # WHEN it runs through the whole stack
    run = run_damaged(upload, f"pinned-{name}", seeds[upload.source], run_job, tmp_path)
    # THEN the state machine sees a workflow error, not the crash's exception class
    assert_published_or_refused(run, upload, outcomes)
