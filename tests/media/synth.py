"""Synthetic clips made with ffmpeg's lavfi sources: the edge cases real footage lacks."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from workflow.local.binaries import ffmpeg_binary
from workflow.media.encode import MPEGTS_WRAP


@dataclass(frozen=True)
class Clip:
    """How to make one clip: lavfi inputs plus encoder options."""

    filename: str
    args: tuple[str, ...]
    note: str
    remux_input_options: tuple[str, ...] = ()
    # A second clip's arguments: its MPEG-TS bytes are appended to the first's, as a
    # recorder writes on across an encoder that restarts with other settings.
    appended: tuple[str, ...] = ()


def _av(video: str, seconds: float, *, audio: bool = True) -> tuple[str, ...]:
    inputs = ("-f", "lavfi", "-i", f"{video}:duration={seconds}")
    if audio:
        inputs += ("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}")
    return inputs


def _hdr(transfer: str) -> tuple[str, ...]:
    """Encoder options that carry an SDR picture into BT.2020 and ``transfer``, tagged."""
    to_hdr = (
        "zscale=tin=709:min=709:pin=709:rin=limited:npl=203"
        f":t={transfer}:m=2020_ncl:p=2020:r=limited,format=yuv420p10le"
    )
    x265 = f"colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc:log-level=error"
    return ("-vf", to_hdr, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", x265) + (
        "-tag:v", "hvc1", "-c:a", "aac", "-shortest",
    )  # fmt: skip


CLIPS: dict[str, Clip] = {
    "h264_aac_2gop": Clip(
        "h264_aac_2gop.mp4",
        _av("testsrc2=size=640x360:rate=30", 30)
        + ("-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-bf", "2")
        + ("-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"),
        "30 s, 2 s GOPs with B-frames, stereo AAC: three chunks",
    ),
    # Written for DASH on demand: fragments listed in a segment index (sidx) at the head,
    # which ffmpeg reads lazily, so opening the file lists its first fragment's frames.
    "dash_on_demand": Clip(
        "dash_on_demand.mp4",
        _av("testsrc2=size=320x180:rate=25", 16)
        + ("-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p")
        + ("-c:a", "aac", "-shortest", "-movflags", "dash+global_sidx"),
        "fragmented MP4 indexed by a sidx, 2 s fragments: two chunks",
    ),
    "rotated_90": Clip(
        "rotated_90.mp4",
        _av("testsrc2=size=320x240:rate=25", 3)
        + ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
        + ("-c:a", "aac", "-shortest"),
        "landscape pixels with a 90 degree display matrix: plays as portrait",
        remux_input_options=("-display_rotation:v:0", "90"),
    ),
    "odd_size": Clip(
        "odd_size.mkv",
        _av("testsrc2=size=333x187:rate=24", 3, audio=False)
        + ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p"),
        "odd dimensions, 4:4:4 chroma, no audio",
    ),
    "vfr": Clip(
        "vfr.mkv",
        _av("testsrc2=size=320x240:rate=30", 6)
        + ("-vf", "setpts='N/30/TB+if(gte(N,60),0.5/TB,0)+if(gte(N,120),(N-120)/60/TB,0)'")
        + ("-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30")
        + ("-c:a", "aac", "-shortest"),
        "variable frame rate: a half-second hole and a slow-down",
    ),
    "vfr_long_hole": Clip(
        "vfr_long_hole.mp4",
        _av("testsrc2=size=320x180:rate=25", 4, audio=False)
        + ("-vf", "setpts='(N/25+if(gte(N,50),10,0))/TB'")
        + ("-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
        "variable frame rate: 2 s, a 10 s hole, 2 s, in one GOP (one chunk, whose middle is "
        "the hole)",
    ),
    "vfr_faster": Clip(
        "vfr_faster.mp4",
        _av("testsrc2=size=320x240:rate=60", 9)
        + ("-vf", "select='if(lt(t,3),not(mod(n,2)),if(lt(t,6),not(mod(n,6)),1))'")
        + ("-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30")
        + ("-c:a", "aac", "-shortest"),
        "variable frame rate: 30 fps, 10 fps, then 60 fps: faster than the rate it declares",
    ),
    "avi_bframes": Clip(
        "avi_bframes.avi",
        _av("testsrc2=size=320x180:rate=25", 8)
        + ("-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "100")
        + ("-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"),
        "AVI (no timestamps but the decoding order's) with B-frames and 4 s GOPs: its "
        "first frame reads as later than the container's start",
    ),
    "hevc_10bit": Clip(
        "hevc_10bit.mp4",
        _av("testsrc2=size=320x240:rate=25", 3)
        + ("-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le")
        + ("-x265-params", "log-level=error", "-tag:v", "hvc1", "-c:a", "aac", "-shortest"),
        "10-bit HEVC",
    ),
    "vp9_opus": Clip(
        "vp9_opus.webm",
        _av("testsrc2=size=320x240:rate=25", 3)
        + ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k")
        + ("-c:a", "libopus", "-shortest"),
        "VP9 video, Opus audio, WebM",
    ),
    "h264_aac_flv": Clip(
        "h264_aac_flv.flv",
        _av("testsrc2=size=320x240:rate=30", 4)
        + ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")
        + ("-c:a", "aac", "-shortest"),
        "H.264 with B-frames and AAC in FLV (millisecond times, no keyframe list), one "
        "keyframe: a short clip at x264's default GOP",
    ),
    "interlaced": Clip(
        "interlaced.mp4",
        _av("testsrc2=size=720x480:rate=60000/1001", 4)
        + ("-vf", "interlace=scan=tff", "-c:v", "libx264", "-preset", "veryfast")
        + ("-flags", "+ilme+ildct", "-x264opts", "tff=1", "-pix_fmt", "yuv420p")
        + ("-c:a", "aac", "-shortest"),
        "interlaced, top field first, 29.97 frames a second: a broadcast feed's 480i",
    ),
    "untagged_720p": Clip(
        "untagged_720p.mp4",
        _av("testsrc2=size=1280x720:rate=30", 2)
        + ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")
        + ("-c:a", "aac", "-shortest"),
        "HD that says nothing of its colour (as many screen recorders and ffmpeg runs)",
    ),
    "bt709_tagged": Clip(
        "bt709_tagged.mp4",
        _av("testsrc2=size=640x360:rate=30", 3)
        + ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")
        + ("-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709")
        + ("-color_range", "tv", "-c:a", "aac", "-shortest"),
        "SDR tagged BT.709, limited range, as most cameras and phones tag it",
    ),
    "full_range": Clip(
        "full_range.mp4",
        _av("testsrc2=size=640x360:rate=30", 3)
        + ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuvj420p")
        + ("-color_range", "pc", "-c:a", "aac", "-shortest"),
        "SDR in full range (0-255), as some phones and every MJPEG webcam record",
    ),
    "hdr_hlg": Clip(
        "hdr_hlg.mp4",
        _av("testsrc2=size=640x360:rate=30", 3) + _hdr("arib-std-b67"),
        "HDR: BT.2020 HLG in 10-bit HEVC, as a phone records it (SDR white at 203 nits)",
    ),
    "hdr_pq": Clip(
        "hdr_pq.mp4",
        _av("testsrc2=size=640x360:rate=30", 2) + _hdr("smpte2084"),
        "HDR: BT.2020 PQ (HDR10's transfer) in 10-bit HEVC (SDR white at 203 nits)",
    ),
    "half_second": Clip(
        "half_second.mp4",
        _av("testsrc2=size=320x240:rate=30", 0.5)
        + ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
        + ("-c:a", "aac", "-shortest"),
        "0.5 s",
    ),
    "long_gop": Clip(
        "long_gop.mp4",
        _av("testsrc2=size=320x240:rate=25", 20)
        + ("-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-keyint_min", "250")
        + ("-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"),
        "one keyframe every 10 s",
    ),
    "mpegts_bframes": Clip(
        "mpegts_bframes.ts",
        _av("testsrc2=size=320x240:rate=25", 10)
        + ("-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-bf", "3")
        + ("-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-f", "mpegts"),
        "MPEG-TS with B-frames and the muxer's 1.4 s start offset",
    ),
    "mpegts_at_wrap": Clip(
        "mpegts_at_wrap.ts",
        _av("testsrc2=size=320x180:rate=25", 24)
        + ("-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-bf", "2")
        + ("-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-f", "mpegts")
        + ("-output_ts_offset", f"{MPEGTS_WRAP - 20:.6f}"),
        "MPEG-TS whose clock begins 20 s before its 33-bit wrap: ffmpeg reads it as "
        "starting at -20 s",
    ),
    "mpegts_size_change": Clip(
        "mpegts_size_change.ts",
        _av("testsrc2=size=640x360:rate=25", 10)
        + ("-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-pix_fmt", "yuv420p")
        + ("-c:a", "aac", "-shortest", "-f", "mpegts"),
        "MPEG-TS whose picture changes from 640x360 to 320x240 (4:3) at 10 s, mid-chunk: "
        "an encoder restarted with other settings",
        appended=_av("testsrc=size=320x240:rate=25", 10)
        + ("-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-pix_fmt", "yuv420p")
        + ("-c:a", "aac", "-shortest", "-f", "mpegts", "-output_ts_offset", "10.08"),
    ),
    # A recorder whose microphone came on 10 s in: MPEG-PS and MPEG-TS list no tracks
    # ahead, so the sound's stream is found only past the head a file is opened with.
    "mpegps_late_sound": Clip(
        "mpegps_late_sound.mpg",
        _av("testsrc2=size=320x180:rate=25", 10, audio=False)
        + ("-c:v", "mpeg2video", "-g", "12", "-f", "mpeg"),
        "MPEG-PS whose MP2 sound starts 10 s in (its first pack with the audio stream)",
        appended=_av("testsrc2=size=320x180:rate=25", 6)
        + ("-c:v", "mpeg2video", "-g", "12", "-c:a", "mp2", "-shortest", "-f", "mpeg")
        # (the first part's clock starts at the muxer's 0.54 s; the offset replaces it)
        + ("-output_ts_offset", "10.54"),
    ),
    "mpegts_late_sound": Clip(
        "mpegts_late_sound.ts",
        _av("testsrc2=size=320x180:rate=25", 10, audio=False)
        + ("-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-pix_fmt", "yuv420p")
        + ("-f", "mpegts"),
        "MPEG-TS whose AAC sound starts 10 s in, where its program table first lists it",
        appended=_av("testsrc2=size=320x180:rate=25", 6)
        + ("-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-pix_fmt", "yuv420p")
        + ("-c:a", "aac", "-shortest", "-f", "mpegts", "-output_ts_offset", "10.08"),
    ),
    "bomb_4096": Clip(
        "bomb_4096.mp4",
        ("-f", "lavfi", "-i", "color=c=black:size=4096x4096:rate=1:duration=1")
        + ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
        "a few KB declaring 4096x4096 frames: a decompression bomb for the pixel bound",
    ),
    "ten_hours": Clip(
        "ten_hours.mkv",
        ("-f", "lavfi", "-i", "testsrc2=size=64x64:rate=1:duration=10")
        + ("-vf", "setpts=N*3600/TB", "-fps_mode", "passthrough", "-c:v", "libx264")
        + ("-preset", "ultrafast", "-pix_fmt", "yuv420p"),
        "ten frames an hour apart: a tiny file that declares nine hours",
    ),
    # A per-title ladder's opposites: one detailed picture that never moves, and detail that
    # changes completely every frame (temporal noise over moving shapes).
    "static_detail": Clip(
        "static_detail.mp4",
        _av("smptehdbars=size=854x480:rate=30", 6)
        + ("-vf", "noise=alls=12:allf=u", "-c:v", "libx264", "-crf", "12")
        + ("-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"),
        "6 s of one still, detailed 480p picture",
    ),
    "fast_motion": Clip(
        "fast_motion.mp4",
        _av("testsrc2=size=854x480:rate=30", 6)
        + ("-vf", "noise=alls=40:allf=t+u", "-c:v", "libx264", "-crf", "12")
        + ("-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"),
        "6 s of 480p whose detail changes every frame",
    ),
    "audio_only": Clip(
        "audio_only.m4a",
        ("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2", "-c:a", "aac"),
        "audio without video",
    ),
}


# Every clip that holds a video stream vidflow must turn into HLS (the per-title
# opposites, 480p, are plain H.264 and run in their own tests).
REFUSED = {"audio_only", "bomb_4096", "ten_hours"}
PER_TITLE = {"static_detail", "fast_motion"}
# An AVI keeps no presentation times: ffmpeg puts its first frame two B-frames (80 ms)
# after its audio, which the end-to-end check of audio starting with the video does not
# allow for; tests/functional/test_chunked_transcode.py checks its frames.
FRAMES_ONLY = {"avi_bframes"}
# x264's B-frames across a 10 s hole give frames whose decode timestamps ffmpeg's own
# decoder then reorders, so the decode check reads errors in every rung, as it does of one
# plain `ffmpeg -c:v libx264` of the same source; tests/e2e/test_per_title.py counts its
# frames.
HOLE_ACROSS_B_FRAMES = {"vfr_long_hole"}
VIDEOS = [
    name for name in CLIPS if name not in REFUSED | PER_TITLE | FRAMES_ONLY | HOLE_ACROSS_B_FRAMES
]


def make(name: str, directory: Path) -> Path:
    """Create clip ``name`` in ``directory`` once and return its path."""
    clip = CLIPS[name]
    target = directory / clip.filename
    if not target.exists():
        partial = target.with_name(f".{os.getpid()}.{target.name}")
        base = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y"]
        subprocess.run([*base, *clip.args, str(partial)], check=True)
        if clip.remux_input_options:
            remuxed = partial.with_name(f".remux{partial.name}")
            subprocess.run(
                [*base, *clip.remux_input_options, "-i", str(partial), "-c", "copy", str(remuxed)],
                check=True,
            )
            remuxed.rename(partial)
        if clip.appended:
            second = partial.with_name(f".second{partial.name}")
            subprocess.run([*base, *clip.appended, str(second)], check=True)
            with partial.open("ab") as first:
                first.write(second.read_bytes())
            second.unlink()
        partial.rename(target)
    return target


def fmp4_stream(out: Path, *args: str) -> list[Path]:
    """ffmpeg run with ``args`` (its inputs and codec options) as an fMP4 encoder writes a
    live stream: ``out/init.mp4``, then 1 s segments ``out/0.m4s``, ``1.m4s``, ... in order."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            ffmpeg_binary(), "-nostdin", "-v", "error", *args,
            "-f", "hls", "-hls_time", "1", "-hls_segment_type", "fmp4",
            "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", str(out / "%d.m4s"),
            "-hls_playlist_type", "vod", str(out / "encoder.m3u8"),
        ],
        check=True,
    )  # fmt: skip
    return sorted(out.glob("*.m4s"), key=lambda p: int(p.stem))
