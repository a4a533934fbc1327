"""The local playback origin: what is not published is a 404, whatever the path holds."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http_status import status_of


@pytest.mark.parametrize(
    "path",
    ["outputs/%00", "outputs/a%0Ab/master.m3u8", "outputs/no-such-job/master.m3u8",
     "outputs/%ff%fe.m3u8", "jobs/x/plan.json", "outputs/../jobs/x"],
)  # fmt: skip
def test_what_is_not_published_is_a_404_and_the_origin_stays_up(engine: Any, path: str) -> None:
    origin = engine.endpoints.playback_url
    assert status_of(f"{origin}{path}") == 404
    # (answered, not dropped: the next request is answered too)
    assert status_of(f"{origin}outputs/no-such-job/index.m3u8") == 404
