"""Per-title ladders and the quality report, end to end on the local stack.

Two 480p clips at opposite ends (one still, detailed picture; detail that changes every
frame) are uploaded asking for a per-title ladder with ``x-amz-meta-vidflow-ladder``,
while the stack's own LadderMode is fixed. Each job analyses its spans before the Map,
chooses its ladder, encodes and publishes; the manifest (validated against the schema)
says what was chosen and why, and every chunk's rungs were scored. A job with the
stack's fixed ladder is the reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.asset import read_asset, read_manifest
from tests.conftest import JobRun, upload_and_follow
from workflow.media import per_title
from workflow.media.ladder import build_ladder
from workflow.settings import Settings


def _job(engine: Any, clip: Any, out: Path, name: str, ladder: str | None) -> dict[str, Any]:
    metadata = {"vidflow-ladder": ladder} if ladder else None
    run: JobRun = upload_and_follow(
        engine, clip(name), f"uploads/{name}-{ladder or 'default'}.mp4", out, metadata
    )
    assert run.status == "SUCCEEDED", run.failure
    assert run.out is not None
    return read_manifest(run.out)


@pytest.fixture(scope="module")
def manifests(engine: Any, clip: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("per-title")
    return {
        "static": _job(engine, clip, out, "static_detail", "per-title"),
        "motion": _job(engine, clip, out, "fast_motion", "per-title"),
        "fixed": _job(engine, clip, out, "fast_motion", None),
    }


def test_the_ladder_follows_the_content(manifests: dict[str, Any]) -> None:
    static, motion = manifests["static"], manifests["motion"]
    for manifest in (static, motion):
        assert manifest["ladder"]["mode"] == "per-title"
    static_rates = [r["kbps"] for r in static["renditions"]]
    motion_rates = [r["kbps"] for r in motion["renditions"]]
    assert static_rates != motion_rates
    # The still picture needs far fewer bits for its top rung than detail that changes
    # every frame, and both stay inside the bounds around the fixed ladder's rate.
    assert static_rates[0] < motion_rates[0]
    # (A rung may take a larger size: the bounds are that size's.)
    fixed = {r.name: r for r in build_ladder(854, 480, 30, Settings().ladder)}
    low, high = per_title.SHARES[0], per_title.SHARES[-1]
    for manifest in (static, motion):
        kept = [d for d in manifest["ladder"]["rungs"] if d["kept"]]
        for decision, rung in zip(kept, manifest["renditions"], strict=True):
            size = fixed[decision["size"]]
            assert (rung["width"], rung["height"]) == (size.width, size.height)
            assert low * size.kbps - 10 <= rung["kbps"] <= high * size.kbps + 10
    # What was published is what was chosen: the encoder met each chosen rate.
    assert (
        static["renditions"][0]["average_bandwidth"] < motion["renditions"][0]["average_bandwidth"]
    )


def test_the_manifest_says_what_was_chosen_and_why(manifests: dict[str, Any]) -> None:
    for manifest in (manifests["static"], manifests["motion"]):
        ladder = manifest["ladder"]
        decided = {d["rung"]: d for d in ladder["rungs"]}
        assert [r["name"] for r in ladder["fixed"]] == list(decided)
        kept = [d for d in ladder["rungs"] if d["kept"]]
        assert [(d["name"], d["kbps"]) for d in kept] == [
            (r["name"], r["kbps"]) for r in manifest["renditions"]
        ]
        assert len({r["name"] for r in manifest["renditions"]}) == len(kept)
        for decision in ladder["rungs"]:
            assert len(decision["curve"]) == len(per_title.SHARES)
            assert decision["goal"] in {"fixed rate's VMAF less tolerance", "target", "knee"}
            assert decision["kept"] or decision["reason"]
        # The top rung is never aimed below the fixed ladder's quality less the tolerance.
        top = ladder["rungs"][0]
        assert top["goal_vmaf"] >= top["fixed_vmaf"] - per_title.TOP_TOLERANCE - 0.01
        assert ladder["spans"] and ladder["analysis_seconds"] > 0
        assert ladder["analysis_share"] > 0


def test_every_rung_has_a_quality_report(manifests: dict[str, Any]) -> None:
    for manifest in manifests.values():
        report = manifest["quality"]
        assert report is not None and report["stride"] >= 1
        # A clip of a few seconds is too short to sample by segment: every one is scored.
        assert report["segment_every"] == 1
        assert set(report["rungs"]) == {r["name"] for r in manifest["renditions"]}
        for scores in report["rungs"].values():
            assert scores["vmaf_min"] <= scores["vmaf_p5"] <= scores["vmaf_mean"] <= 100
            assert len(scores["chunks"]) == manifest["chunks"]
            assert (
                scores["frames"]
                >= manifest["duration"] * 30 / report["stride"] - manifest["chunks"]
            )
    # The still picture scores higher at its chosen rate than changing noise at its own.
    static = manifests["static"]["quality"]["rungs"]
    motion = manifests["motion"]["quality"]["rungs"]
    top = manifests["static"]["renditions"][0]["name"]
    assert static[top]["vmaf_mean"] > motion[top]["vmaf_mean"]


def test_the_fixed_ladder_is_unchanged(manifests: dict[str, Any]) -> None:
    fixed = manifests["fixed"]
    assert fixed["ladder"] == {"mode": "fixed"}
    expected = build_ladder(854, 480, 30, Settings().ladder)
    assert [(r["name"], r["kbps"]) for r in fixed["renditions"]] == [
        (r.name, r.kbps) for r in expected
    ]


def test_a_bad_ladder_request_fails_named(engine: Any, clip: Any, tmp_path: Path) -> None:
    run = upload_and_follow(
        engine, clip("static_detail"), "uploads/bad-ladder.mp4", tmp_path,
        {"vidflow-ladder": "best"},
    )  # fmt: skip
    assert run.status == "FAILED"
    assert run.failure is not None and run.failure["error"] == "UploadOptionError"
    assert "vidflow-ladder" in json.dumps(run.failure)


def test_a_span_with_no_frame_measures_nothing(engine: Any, clip: Any, tmp_path: Path) -> None:
    # GIVEN a variable-rate source whose one chunk's middle, the span analysed, is a hole
    run = upload_and_follow(
        engine, clip("vfr_long_hole"), "uploads/vfr-long-hole.mp4", tmp_path,
        {"vidflow-ladder": "per-title"},
    )  # fmt: skip

    # THEN the job succeeds with the fixed ladder, the manifest saying nothing was measured
    assert run.status == "SUCCEEDED", run.failure
    assert run.out is not None
    manifest = read_manifest(run.out)
    assert manifest["ladder"]["spans"] == [] and manifest["ladder"]["rungs"] == []
    fixed = [(r["width"], r["height"]) for r in manifest["ladder"]["fixed"]]
    assert [(r["width"], r["height"]) for r in manifest["renditions"]] == fixed
    # AND every rung has each of the source's 100 frames once, the hole kept
    for name, rendition in read_asset(run.out).video.items():
        assert (rendition.frames, rendition.duplicates) == (100, 0), name
        assert rendition.largest_gap > 9.9, name
