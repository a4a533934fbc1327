"""The per-title choice (``media.per_title``) and the quality report's arithmetic
(``media.quality``), on curves and scores made up to sit on each side of every rule."""

from __future__ import annotations

import math
from pathlib import Path

import jsonschema
import pytest

from workflow.errors import ConfigurationError
from workflow.formats.manifest import json_schema
from workflow.media import per_title, quality
from workflow.media.ladder import build_ladder, h264_level
from workflow.settings import Settings

FIXED = build_ladder(1920, 1080, 30, "1080:5000,720:2800,480:1400,360:800")


# The made-up curves' points, as shares of each rung's fixed bitrate (the choice reads
# whatever points the analysis measured).
SHARES = (0.3, 0.55, 1.0, 1.6)


def curve(rung_kbps: int, vmafs: tuple[float, ...]) -> list[tuple[float, float]]:
    return [(rung_kbps * share, v) for share, v in zip(SHARES, vmafs, strict=True)]


def curves(vmafs: dict[str, tuple[float, ...]]) -> dict[str, list[tuple[float, float]]]:
    return {r.name: curve(r.kbps, vmafs[r.name]) for r in FIXED}


# VMAF as displayed: a smaller rung, scaled up, tops out lower; at each rung's rates
# its own size scores best.
EASY = {
    "1080p": (88.0, 95.0, 99.0, 99.3),
    "720p": (80.0, 90.0, 94.5, 95.0),
    "480p": (62.0, 85.0, 87.0, 88.0),
    "360p": (70.0, 75.0, 78.0, 79.0),
}
# Static content: a larger size's lowest rates already score what a smaller size needs
# its highest for.
STATIC = {
    "1080p": (97.0, 97.5, 97.7, 97.8),
    "720p": (88.0, 91.5, 92.0, 92.1),
    "480p": (70.0, 80.0, 84.0, 84.2),
    "360p": (60.0, 70.0, 74.5, 74.7),
}
HARD = {
    "1080p": (60.0, 70.0, 80.0, 86.0),
    "720p": (55.0, 65.0, 74.0, 80.0),
    "480p": (45.0, 55.0, 64.0, 70.0),
    "360p": (35.0, 45.0, 54.0, 60.0),
}


def test_targets_parse_as_the_top_rung_s_or_per_rung() -> None:
    assert per_title.parse_targets("93") == {0: 93.0}
    targets = per_title.parse_targets("1080:95,720:92.5")
    assert targets == {1080: 95.0, 720: 92.5}
    assert per_title.target_for(targets, 720, top=False) == 92.5
    assert per_title.target_for(targets, 480, top=False) is None
    assert per_title.target_for({0: 93.0}, 1080, top=True) == 93.0
    assert per_title.target_for({0: 93.0}, 720, top=False) is None
    assert per_title.target_for({720: 90.0}, 1080, top=True) == per_title.DEFAULT_TARGET
    for bad in ("", "high", "1080:", "0", "101", "720:-3", "nan", "720:inf"):
        with pytest.raises(ConfigurationError):
            per_title.parse_targets(bad)
    with pytest.raises(ConfigurationError, match="TARGET_VMAF"):
        Settings.from_env({"TARGET_VMAF": "best"})
    # a rung size the ladder does not have (a typo: 36 for 360) would never apply
    with pytest.raises(ConfigurationError, match="TARGET_VMAF names 36, not a rung"):
        Settings.from_env({"TARGET_VMAF": "36:99", "LADDER": "720:2800,360:800"})
    assert Settings.from_env({"TARGET_VMAF": "360:99,90", "LADDER": "720:2800,360:800"})
    # one rung given twice: neither is taken over the other
    with pytest.raises(ConfigurationError, match="gives the rung 720 twice"):
        per_title.parse_targets("720:95,360:90,720:93")
    with pytest.raises(ConfigurationError, match=r"top rung \(a plain VMAF\) twice"):
        per_title.parse_targets("95,93")
    with pytest.raises(ConfigurationError, match="LADDER_MODE"):
        Settings.from_env({"LADDER_MODE": "auto"})
    with pytest.raises(ConfigurationError, match="QUALITY_REPORT"):
        Settings.from_env({"QUALITY_REPORT": "full"})


def test_the_curve_is_read_in_log_rate_and_never_falls() -> None:
    points = [(100.0, 80.0), (400.0, 90.0), (200.0, 70.0)]  # a measured dip is noise
    assert per_title.curve_at(points, 100) == 80.0
    assert per_title.curve_at(points, 200) == 80.0
    assert per_title.curve_at(points, 400) == 90.0
    assert per_title.curve_at([(100.0, 80.0), (400.0, 90.0)], 200) == pytest.approx(85.0)
    assert per_title.lowest_rate([(100.0, 80.0), (400.0, 90.0)], 85.0) == pytest.approx(200.0)
    assert per_title.lowest_rate([(100.0, 80.0), (400.0, 90.0)], 70.0) == 100.0
    assert per_title.lowest_rate([(100.0, 80.0), (400.0, 90.0)], 95.0) == 400.0


def test_where_the_curve_has_flattened_every_rung_gets_fewer_bits() -> None:
    chosen, decisions = per_title.choose_ladder(FIXED, curves(EASY), {0: 95.0})
    assert [r.name for r in chosen] == [r.name for r in FIXED]
    for rung, fixed, decision in zip(chosen, FIXED, decisions, strict=True):
        assert rung.kbps < fixed.kbps
        assert (rung.width, rung.height, rung.level) == (fixed.width, fixed.height, fixed.level)
        assert decision["goal"] == "fixed rate's VMAF less tolerance"
    # The top rung within half a point of the fixed ladder's; the others within a point.
    assert decisions[0]["predicted_vmaf"] >= decisions[0]["fixed_vmaf"] - 0.5
    assert decisions[0]["predicted_vmaf"] < decisions[0]["fixed_vmaf"]
    assert all(d["predicted_vmaf"] >= d["fixed_vmaf"] - 1.0 for d in decisions[1:])


@pytest.mark.parametrize("targets", [{0: 95.0}, {720: 77.0}, {1080: 99.0, 360: 60.0}])
def test_every_decision_is_what_the_manifest_schema_allows(targets: dict[int, float]) -> None:
    rung_schema = json_schema()["properties"]["ladder"]["properties"]["rungs"]["items"]
    for vmafs in (EASY, HARD, STATIC):
        _, decisions = per_title.choose_ladder(FIXED, curves(vmafs), targets)
        for decision in decisions:
            jsonschema.validate(decision, rung_schema)
        # A rung without a target of its own says so (null), never a made-up number.
        assert any(d["target_vmaf"] is None for d in decisions)


def test_a_rung_lifted_past_its_level_s_bitrate_is_signalled_at_the_level_it_needs() -> None:
    # GIVEN a 1080p rung whose fixed rate just fits level 4.0 (its 30 Mb VBV buffer)
    fixed = build_ladder(1920, 1080, 30, "1080:15000")
    assert fixed[0].level == "4.0"
    # WHEN hard content lifts it by half as much again
    hard = {fixed[0].name: curve(fixed[0].kbps, HARD["1080p"])}
    chosen, _ = per_title.choose_ladder(fixed, hard, {0: 95.0})
    # THEN its level (the SPS's and the CODECS string's) allows the buffer it now has
    assert chosen[0].kbps > 15625
    assert chosen[0].level == h264_level(1920, 1080, 30, chosen[0].kbps) == "4.1"
    # AND a rung lowered keeps what its frame rate needs (1080p at 60 fps: 4.2)
    fast = build_ladder(1920, 1080, 60, "1080:5000")
    easy = {fast[0].name: curve(fast[0].kbps, EASY["1080p"])}
    lowered, _ = per_title.choose_ladder(fast, easy, {0: 95.0})
    assert lowered[0].kbps < 5000 and lowered[0].level == "4.2"


def test_hard_content_lifts_the_top_rung_toward_its_target() -> None:
    chosen, decisions = per_title.choose_ladder(FIXED, curves(HARD), {0: 95.0})
    top = decisions[0]
    assert top["goal"] == "knee"  # 95 is out of reach: half a point below the best
    assert FIXED[0].kbps < chosen[0].kbps <= FIXED[0].kbps * SHARES[-1]
    assert 86.0 - per_title.KNEE <= top["predicted_vmaf"] <= 86.0 - per_title.KNEE + 0.1
    # Rungs without a target of their own are not lifted.
    assert all(d["kbps"] < d["fixed_kbps"] for d in decisions[1:])
    # A per-rung target lifts that rung too, to the target where the curve reaches it.
    _, lifted = per_title.choose_ladder(FIXED, curves(HARD), {720: 77.0})
    assert lifted[1]["goal"] == "target" and lifted[1]["kbps"] > FIXED[1].kbps
    assert 77.0 <= lifted[1]["predicted_vmaf"] <= 77.1


def test_a_rung_that_brings_too_little_or_saves_too_little_is_dropped() -> None:
    vmafs = dict(EASY)
    # 720p, scaled up, is as good as 1080p: 1080p brings nothing for its extra bits.
    vmafs["720p"] = (96.5, 98.5, 99.3, 99.5)
    chosen, decisions = per_title.choose_ladder(FIXED, curves(vmafs), {0: 95.0})
    assert chosen[0].name == "720p" and "1080p" not in [r.name for r in chosen]
    assert decisions[0]["kept"] is False and "720p" in decisions[0]["reason"]
    # 360p's target needs 1.5x its fixed rate: more than 75 % of 480p's.
    vmafs = dict(EASY)
    vmafs["480p"] = (62.0, 70.0, 90.0, 91.0)
    vmafs["360p"] = (50.0, 60.0, 70.0, 90.0)
    chosen, decisions = per_title.choose_ladder(FIXED, curves(vmafs), {360: 87.0})
    assert "360p" not in [r.name for r in chosen]
    assert "480p" in next(d for d in decisions if d["rung"] == "360p")["reason"]
    rates = [r.kbps for r in chosen]
    assert rates == sorted(rates, reverse=True)


def test_a_rung_takes_a_larger_size_where_that_reaches_its_goal_on_fewer_bits() -> None:
    chosen, decisions = per_title.choose_ladder(FIXED, curves(STATIC), {0: 95.0})
    by_slot = {d["rung"]: d for d in decisions}
    # 480p's goal (its fixed rate's 84, less a point) costs it 1210 kbps; 720p's lowest
    # measured rate, 840, already scores 88. 360p's goal is cheaper at 480p's size.
    assert by_slot["480p"]["size"] == "720p" and by_slot["480p"]["kbps"] == 840
    assert by_slot["360p"]["size"] == "480p" and by_slot["360p"]["kbps"] < 0.9 * 700
    assert by_slot["1080p"]["size"] == "1080p" and by_slot["720p"]["size"] == "720p"
    # The first rung of a size keeps its name; the second says its rate.
    assert [(r.name, r.height, r.kbps) for r in chosen] == [
        ("1080p", 1080, by_slot["1080p"]["kbps"]),
        ("720p", 720, by_slot["720p"]["kbps"]),
        ("720p-840k", 720, 840),
        ("480p", 480, by_slot["360p"]["kbps"]),
    ]
    assert [d["name"] for d in decisions] == [r.name for r in chosen]
    for rung in chosen:  # a size's own level, whatever the slot it fills
        assert rung.level == next(f.level for f in FIXED if f.height == rung.height)
    for decision in decisions:
        assert decision["predicted_vmaf"] >= decision["goal_vmaf"] - 0.01
    # Never below a size's lowest measured rate: where no larger size was measured low
    # enough, the rung keeps its own.
    _, easy = per_title.choose_ladder(FIXED, curves(EASY), {0: 95.0})
    assert [d["size"] for d in easy] == [d["rung"] for d in easy]


def test_the_analysis_is_a_bounded_share_of_the_source() -> None:
    chunks = [(float(s), float(s + 12)) for s in range(0, 3600, 12)]
    spans = per_title.spans(chunks, 3600.0)
    assert len(spans) == per_title.MOST_SPANS
    assert sum(e - s for s, e in spans) <= 3600 * per_title.ANALYSED_SHARE
    assert len({s for s, _ in spans}) == len(spans)
    assert spans[0][0] > 0 and spans[-1][0] < 3588  # spread, not bunched at one end
    # From the middle of its chunk: a title's first seconds are often black or a card.
    assert per_title.spans([(0.0, 6.0)], 6.0) == [(1.0, 5.0)]
    assert per_title.spans([(0.0, 3.0)], 3.0) == [(0.0, 3.0)]
    assert all(12 * (s // 12) + 4 == s for s, _ in spans)


@pytest.mark.parametrize(("frames", "stride"), [(10, 1), (300, 1), (1800, 11), (10**6, 37)])
def test_a_report_samples_enough_frames_at_a_prime_stride(frames: int, stride: int) -> None:
    assert quality.report_stride(frames) == stride
    assert frames // stride >= min(frames, quality.FEWEST_SAMPLES)


def test_the_summary_is_over_every_scored_frame() -> None:
    parts = [quality.Scores([90.0, 80.0], [40.0, 38.0]), quality.Scores([70.0], [30.0])]
    summary = quality.summary(parts)
    assert summary["vmaf_mean"] == 80.0 and summary["vmaf_min"] == 70.0
    assert summary["vmaf_p5"] == pytest.approx(71.0)
    assert summary["psnr_mean"] == pytest.approx(36.0)
    assert summary["frames"] == 3
    assert quality.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert math.isnan(quality.Scores([], []).mean)


def test_scoring_reads_each_rung_s_encoder_back(tmp_path: Path) -> None:
    args = quality.scoring_args(FIXED[:2], 1, {"start": "1.000000"}, 7, tmp_path)
    assert args[:8] == ["-threads", "1", "-dec", "1:0", "-threads", "1", "-dec", "2:0"]
    graphs = [args[i + 1] for i, a in enumerate(args) if a == "-filter_complex"]
    assert len(graphs) == 2
    assert "[dec:1]" in graphs[1] and "scale=1280:720" in graphs[1]
    # Every 7th frame with the one before it (libvmaf's motion feature compares the two),
    # and libvmaf scores every other frame it gets: the 7th ones.
    assert all(r"not(mod(n\,7))+eq(mod(n\,7)\,6)" in g for g in graphs)
    assert all("n_subsample=2" in g and "trim=start=1.000000" in g for g in graphs)
    with pytest.raises(ValueError, match="unsafe"):
        quality.scoring_args(FIXED[:1], 1, {}, 1, Path("/tmp/a:b"))
