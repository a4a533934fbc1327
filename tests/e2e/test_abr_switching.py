"""Real players switching rungs at every segment, and seeking, on a counted source.

Every frame of the source carries its own number in ten black-or-white blocks across its
top third, big enough to read back from the smallest rung. The players (hls.js, dash.js
and shaka-player in Chromium) are made to change rung at every segment, up and down the
ladder, and the page reads the number of each frame the browser presents against its
media time: a switch must neither show a wrong frame nor stall.
"""

from __future__ import annotations

import collections
import itertools
import math
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_packaging import player_site
from tests.stack import VIDFLOW
from workflow.local.binaries import ffmpeg_binary

LADDER = "360:800,240:400,144:200"
SECONDS = 12
RATE = 30
BITS = 10
# The frame number in binary, bit k in the k-th tenth of the width, over the top third;
# below it a pattern that moves, so the encoder has a picture to spend bits on.
COUNTER = (
    f"geq=lum='if(lt(Y,H/3),255*mod(floor(N/pow(2,floor(X*{BITS}/W))),2),"
    "mod(X+Y+N*4,256))':cb=128:cr=128"
)

# Reads the number off every presented frame: [mediaTime, number, height].
READER = """
(() => {
  const video = document.getElementById("video");
  const canvas = document.createElement("canvas");
  canvas.width = 160; canvas.height = 90;
  const context = canvas.getContext("2d", {willReadFrequently: true});
  window.shown = [];
  window.waits = [];
  video.addEventListener("waiting", () => window.waits.push(video.currentTime));
  const read = (_, frame) => {
    context.drawImage(video, 0, 0, 160, 90);
    const row = context.getImageData(0, 10, 160, 1).data;
    let number = 0;
    for (let bit = 0; bit < BITS; bit++) {
      const x = Math.floor((bit + 0.5) * 160 / BITS);
      if (row[x * 4] > 128) number += 1 << bit;
    }
    window.shown.push([frame.mediaTime, number, frame.height]);
    video.requestVideoFrameCallback(read);
  };
  video.requestVideoFrameCallback(read);
})();
""".replace("BITS", str(BITS))

# Whether the frame callback has read the last frame (its media time one frame or less
# short of the end).
LAST_SHOWN = f"""
window.shown.length > 0 &&
  window.shown.at(-1)[0] >= document.getElementById("video").duration - {1.5 / RATE}
"""

# Force a rung change at every segment, walking up and down the ladder.
SWITCH = {
    "hls": """
      const hls = window.player;
      let step = 0;
      window.levels = [];
      hls.on(Hls.Events.FRAG_LOADED, (_, data) => {
        if (data.frag.type !== "main") return;
        const n = hls.levels.length;
        const walk = [...Array(n).keys(), ...[...Array(n).keys()].reverse().slice(1, -1)];
        step += 1;
        hls.config.maxBufferLength = 1;
        hls.config.maxMaxBufferLength = 2;
        hls.nextLoadLevel = walk[step % walk.length];
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => window.levels.push(data.level));
      // (what was appended, fragment by fragment: [sn, level])
      window.appended = [];
      hls.on(Hls.Events.FRAG_BUFFERED, (_, data) => {
        if (data.frag.type === "main") window.appended.push([data.frag.sn, data.frag.level]);
      });
    """,
    "dash": """
      const player = window.player;
      const buffer = {bufferTimeDefault: 1, bufferTimeAtTopQuality: 1, stableBufferTime: 1,
                      bufferTimeAtTopQualityLongForm: 1};
      const abr = {autoSwitchBitrate: {video: false}};
      player.updateSettings({streaming: {abr, buffer}});
      let step = 0;
      window.levels = [];
      setInterval(() => {
        const n = player.getRepresentationsByType("video").length;
        if (!n) return;
        step += 1;
        const level = step % n;
        player.setRepresentationForTypeByIndex("video", level, false);
        window.levels.push(level);
      }, EVERY);
    """,
    "shaka": """
      const player = window.player;
      player.configure({abr: {enabled: false}});
      player.configure({streaming: {bufferingGoal: 1, rebufferingGoal: 0.5}});
      let step = 0;
      window.levels = [];
      setInterval(() => {
        const tracks = player.getVariantTracks();
        if (!tracks.length) return;
        step += 1;
        const track = tracks[step % tracks.length];
        // (not clearing the buffer: shaka-player then drops what it holds, stalls and
        // resumes a frame or two back, its own doing at a forced flush)
        player.selectVariantTrack(track, false);
        window.levels.push(track.height);
      }, EVERY);
    """,
}


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("counted") / "counted.mp4"
    subprocess.run(
        [ffmpeg_binary(), "-v", "error", "-f", "lavfi", "-i",
         f"color=black:size=640x360:rate={RATE}:duration={SECONDS}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}",
         "-vf", COUNTER, "-c:v", "libx264", "-preset", "ultrafast", "-g", "60",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
        check=True, timeout=120,
    )  # fmt: skip
    return path


def _publish(source: Path, out: Path, packaging: str) -> None:
    """``source`` published by a stack of its own (in its own process: moto's backends
    are the process's, which the session's stack holds), with 1 s segments and three
    rungs, so that a 12 s source has a dozen segment boundaries to switch rung at."""
    parameters = {
        "SegmentSeconds": "1",
        "ChunkSeconds": "4",
        "Ladder": LADDER,
        "Packaging": packaging,
    }
    overrides = [
        arg for name, value in parameters.items() for arg in ("--parameter", f"{name}={value}")
    ]
    done = subprocess.run(
        [*VIDFLOW, "process", str(source), "--out", str(out), *overrides],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def site(counted: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("abr-site")
    for packaging in ("cmaf", "hls-ts"):
        _publish(counted, root / packaging, packaging)
    with player_site(root) as url:
        yield url


def _watch(browser: Any, url: str, setup: str, until: float = 60) -> dict[str, Any]:
    page = browser.new_page()
    try:
        # (``setup`` runs before the player loads anything: run once the page has made its
        # player, it raced the player's first requests, and dash.js has buffered the whole
        # 12 s at its first rung 0.5 s after it starts, every switch then too late to show)
        page.add_init_script(f"window.beforeLoad = () => {{ {setup} }};")
        page.goto(url)
        page.evaluate(READER)
        deadline = time.monotonic() + until
        report: dict[str, Any] = {}
        while time.monotonic() < deadline:
            report = page.evaluate("window.report")
            if report["ended"] or report["error"]:
                break
            time.sleep(0.25)
        # The last frame's callback can run after "ended" (a loaded machine paints late):
        # the page is read once it has, or 10 s on (a last frame never presented).
        settle = time.monotonic() + 10
        while time.monotonic() < settle and not page.evaluate(LAST_SHOWN):
            time.sleep(0.1)
        report = dict(page.evaluate("window.report"))
        report["shown"] = page.evaluate("window.shown")
        report["waits"] = page.evaluate("window.waits")
        report["levels"] = page.evaluate("window.levels || []")
        report["appended"] = page.evaluate("window.appended || []")
        report["quality"] = page.evaluate(
            "(() => { const q = document.getElementById('video').getVideoPlaybackQuality();"
            " return [q.totalVideoFrames, q.droppedVideoFrames]; })()"
        )
        return report
    finally:
        page.close()


def _origin(shown: list[list[float]]) -> float:
    """Where frame 0 sits on the player's timeline, by most frames' say: 0, 1 ms for CMAF
    through shaka-player, the B-frame delay (2 frames) for MPEG-TS through hls.js and
    shaka-player, which start their timeline at the first decode time."""
    return float(statistics.median(t - n / RATE for t, n, _ in shown))


def _misplaced_runs(shown: list[list[float]]) -> list[list[tuple[float, int]]]:
    """Runs of three or more frames in a row whose number is not the one their media time
    puts there. (One alone is the page's own race: under load the canvas can copy the
    frame after the one the callback was for.)"""
    origin = _origin(shown)
    runs: list[list[tuple[float, int]]] = [[]]
    for t, n, _ in shown:
        if n != round((t - origin) * RATE):
            runs[-1].append((round(t, 4), int(n)))
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if len(run) >= 3]


@pytest.mark.parametrize(
    ("lib", "asset", "manifest"),
    [
        ("hls", "cmaf", "master.m3u8"),
        ("hls", "hls-ts", "master.m3u8"),
        ("dash", "cmaf", "manifest.mpd"),
        ("shaka", "cmaf", "master.m3u8"),
        ("shaka", "cmaf", "manifest.mpd"),
        ("shaka", "hls-ts", "master.m3u8"),
    ],
)
def test_a_rung_switch_at_every_segment_shows_every_frame_in_order(
    site: str, browser: Any, lib: str, asset: str, manifest: str
) -> None:
    # WHEN a player is made to change rung at every segment, up and down the ladder
    setup = SWITCH[lib].replace("EVERY", "1000")
    report = _watch(browser, f"{site}/player.html?lib={lib}&src=/{asset}/{manifest}", setup)
    shown = report["shown"]
    summary = {k: v for k, v in report.items() if k not in ("shown", "tracks")}
    assert report["error"] is None, summary
    # THEN every frame it presents is the one its media time says, in order, to the
    # last frame and the end of the timeline (a loaded machine may skip presenting some:
    # Chromium's compositor, not the stream)
    assert shown and -1e-3 <= _origin(shown) <= 2.5 / RATE, (_origin(shown), summary)
    assert _misplaced_runs(shown) == [], (_misplaced_runs(shown)[:3], summary)
    # AND the player took every rung, and the picture came from every rung: hls.js, whose
    # every appended fragment the page lists, can load a fragment it has buffered but not
    # yet played again at the next rung over it when a loaded machine plays late (seen:
    # sn 8 at 144p, then at 240p), so with it one rung may only have been appended.
    heights = collections.Counter(height for _, _, height in shown)
    failed = (heights, report["levels"], report["appended"])
    if lib == "hls":
        assert {level for _, level in report["appended"]} == {0, 1, 2}, failed
        assert len(heights) >= 2, failed
    else:
        assert set(heights) == {360, 240, 144}, failed
    # AND no number comes twice or goes back. The same frame at the same media time twice
    # in a row is one frame presented again (shaka-player can re-present the frame it holds
    # when it resumes from a stall); a number read one frame early before its own frame is
    # the page's race that _misplaced_runs allows.
    frames = [frame for frame, _ in itertools.groupby((t, n) for t, n, _ in shown)]
    origin = _origin(shown)
    back = [
        (a, b)
        for a, b in itertools.pairwise(frames)
        if a[1] > b[1] or (a[1] == b[1] and a[1] != round((a[0] - origin) * RATE) + 1)
    ]
    assert back == [], (back[:5], summary)
    numbers = [n for _, n in frames]
    assert numbers[-1] == SECONDS * RATE - 1, (numbers[-5:], summary)
    assert report["maxTime"] >= report["duration"] - 1 / RATE, summary


# Whether the video has every frame buffered, in one range, to the end.
WHOLE = """
(rate) => {
  const video = document.getElementById("video");
  const buffered = video.buffered;
  return buffered.length === 1 && buffered.start(0) <= window.report.firstFrame + 1e-3 &&
    buffered.end(0) >= video.duration - 1 / rate;
}
"""

# Seeks to the segment boundaries (1 s segments), between them, and into the last 0.1 s.
SEEKS = [0.5, 1.0, 2.9999, 3.0, 7.0, 11.0, 11.9, 11.95, 11.99, 5.5, 0.0, 4.0, 8.0]
SEEK = """
async ([targets, first]) => {
  const video = document.getElementById("video");
  const canvas = document.createElement("canvas");
  canvas.width = 160; canvas.height = 90;
  const context = canvas.getContext("2d", {willReadFrequently: true});
  const number = () => {
    context.drawImage(video, 0, 0, 160, 90);
    const row = context.getImageData(0, 10, 160, 1).data;
    let n = 0;
    for (let bit = 0; bit < BITS; bit++) {
      if (row[Math.floor((bit + 0.5) * 160 / BITS) * 4] > 128) n += 1 << bit;
    }
    return n;
  };
  const out = [];
  video.pause();
  for (const t of targets) {
    const frame = new Promise((resolve) => video.requestVideoFrameCallback(resolve));
    const seeked = new Promise((resolve) => {
      video.addEventListener("seeked", resolve, {once: true});
    });
    video.currentTime = t;
    // (bounded: a seek that never lands fails the test on its frame, not by hanging it)
    await Promise.race([seeked, new Promise((resolve) => setTimeout(resolve, 10000))]);
    await Promise.race([frame, new Promise((resolve) => setTimeout(resolve, 3000))]);
    // A loaded machine may paint the frame after both: look again for up to 15 s until it
    // is the one the test expects (what it shows then is what the test judges; the wait
    // ends at once where it is, so only a wrong frame costs the 15 s).
    const expected = () => Math.max(0, Math.floor((video.currentTime - first) * RATE + 1e-3));
    for (let waited = 0; waited < 15000 && number() !== expected(); waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    out.push([t, video.currentTime, number()]);
  }
  return out;
}
""".replace("BITS", str(BITS)).replace("RATE", str(RATE))


def _shown_at(elapsed: float) -> set[int]:
    """The frame a player shows ``elapsed`` seconds after its first frame's time: the one
    whose span holds it; within 1.5 ms of a frame's start but not on it, either frame.

    shaka-player presents every frame 1 ms after its time (its first at 0.001 s, hls.js's
    and dash.js's at 0), so its seek to a frame's time lands a millisecond before that
    frame starts, where Chrome showed the frame before in three runs and the frame itself
    in one. Where a player's times are the stream's, a seek to a frame's time is on it,
    and one 0.1 ms before it is still in the frame before.
    """
    at = elapsed * RATE
    start = round(at)
    if 0.5e-3 < abs(at - start) / RATE <= 1.5e-3:
        return {max(0, start - 1), max(0, start)}
    return {max(0, math.floor(at + 1e-3))}


@pytest.mark.parametrize(
    ("lib", "asset", "manifest"),
    [
        ("hls", "cmaf", "master.m3u8"),
        ("hls", "hls-ts", "master.m3u8"),
        ("dash", "cmaf", "manifest.mpd"),
        ("shaka", "cmaf", "manifest.mpd"),
        ("shaka", "hls-ts", "master.m3u8"),
    ],
)
def test_a_seek_shows_the_frame_at_its_time(
    site: str, browser: Any, lib: str, asset: str, manifest: str
) -> None:
    page = browser.new_page()
    try:
        # (shaka-player holds 10 s ahead by default: it is to hold the whole 12 s like the
        # others, below)
        page.add_init_script(
            "window.beforeLoad = (p) => p.configure?.({streaming: {bufferingGoal: 30}});"
        )
        # (paused at its first frame: a playing video's first frame callback can report a
        # later frame on a loaded machine, and every expected number would be off by it)
        page.goto(f"{site}/player.html?lib={lib}&src=/{asset}/{manifest}&autoplay=0")
        page.wait_for_function("window.report.firstFrame !== undefined", timeout=30_000)
        first = page.evaluate("window.report.firstFrame")
        # (and seeking once the whole stream is buffered: the last two frames come out of
        # the decoder, which holds frames back to reorder B-frames, only once the player
        # has ended the stream, and hls.js seeking while it loads ends it, then reopens it
        # with another append and ends it again later (seen: ended at the seek to 11, an
        # audio append reopening it at the seek to 4). On a loaded machine it was open at
        # 11.95 and 11.99, which showed 357 for 28 s each; endOfStream() made a no-op gives
        # that to the frame and the second.)
        page.wait_for_function(WHOLE, arg=RATE, timeout=60_000)
        # WHEN the paused player seeks on segment boundaries, between them and near the end
        seeks = page.evaluate(SEEK, [SEEKS, first])
        assert page.evaluate("window.report.error") is None
        # (whether the player had ended the stream: without it the last frames never come)
        ended = page.evaluate("window.report.sourceEnded")
    finally:
        page.close()
    # THEN it shows the frame whose span holds the time it landed on
    wrong = [
        (target, landed, number)
        for target, landed, number in seeks
        if number not in _shown_at(landed - first)
    ]
    assert wrong == [], (first, wrong, {"sourceEnded": ended})
