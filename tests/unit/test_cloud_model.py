"""The VOD cloud model (bench/cloud_model.py): its Map is the template's, in which every
kind of work item shares MapMaxConcurrency. No timing, no AWS."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from workflow.cli.billing import VodBilling
from workflow.local.template import Stack
from workflow.media.chunks import FrameIndex, plan_chunks

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cm() -> Iterator[ModuleType]:
    saved = sys.modules.get("cloud_model")
    spec = importlib.util.spec_from_file_location("cloud_model", ROOT / "bench/cloud_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cloud_model"] = module
    spec.loader.exec_module(module)
    yield module
    if saved is None:
        sys.modules.pop("cloud_model", None)
    else:
        sys.modules["cloud_model"] = saved


def measured(cm: ModuleType) -> object:
    probe = {"any": [(1.0, 0.0), (10.0, 0.0), (1.0, 0.0)]}
    return cm.Measured(3.9, 1.0, 0.014, "test", probe)


def test_images_and_audio_take_map_slots_from_the_chunks(cm: ModuleType) -> None:
    # An hour in 12 s chunks is 300 chunks, one full wave of the default 300 slots; but
    # the Map also runs the images' 8 pieces (listed first) and the audio's 30 pieces, so
    # 8 chunks wait for a slot: the video ends a second chunk's time later, not one.
    slots = int(Stack(ROOT).parameters["MapMaxConcurrency"])
    chunks = plan_chunks(FrameIndex(0.0, 3600.0), 12.0, 4.0, slots=slots)
    assert len(chunks) == slots == 300
    billing = VodBilling.from_stack(Stack(ROOT))
    r = cm.model(3600, 12, 10240, slots, measured(cm), billing)
    assert r["video_s"] >= 2 * r["chunk_wall_s"]
    # With room for every item, one wave.
    roomy = cm.model(3600, 12, 10240, slots + 40, measured(cm), billing)
    assert roomy["video_s"] < 2 * roomy["chunk_wall_s"]


def test_the_map_starts_items_in_order_as_slots_free(cm: ModuleType) -> None:
    step = cm.a("map_child_start_s")
    ends = cm.map_ends([10.0, 10.0, 1.0, 1.0], 2)
    assert ends[:2] == pytest.approx([step + 10, 2 * step + 10])
    # The third waits for the first slot, the fourth for the second.
    assert ends[2:] == pytest.approx([step + 11, 2 * step + 11])


def test_x264_presets_prices_at_the_templates_map_concurrency(cm: ModuleType) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import x264_presets
    finally:
        sys.path.remove(str(ROOT / "bench"))
        sys.modules.pop("vod_local", None)
    sys.modules.pop("x264_presets", None)
    assert int(Stack(ROOT).parameters["MapMaxConcurrency"]) == x264_presets.MAP_CONCURRENCY
