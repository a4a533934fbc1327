"""The live soak's playlist checker: each rule a player relies on, broken one at a time."""

from __future__ import annotations

import pytest

from workflow.cli.playlist_watch import PlaylistWatch, Reading


def _text(
    media_sequence: int, sequences: list[int], *, gaps: tuple[int, ...] = (), end: bool = False
) -> str:
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:1", f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}"]
    for sequence in sequences:
        lines += ["#EXTINF:1.000000,"] + (["#EXT-X-GAP"] if sequence in gaps else [])
        lines.append(f"seg_{sequence:05d}.ts")
    return "\n".join(lines + (["#EXT-X-ENDLIST"] if end else [])) + "\n"


def test_a_playlist_that_grows_and_slides_breaks_nothing() -> None:
    watch = PlaylistWatch("s/360p")
    for text in (
        _text(0, []),
        _text(0, [0]),
        _text(0, [0, 1, 2]),
        _text(0, [0, 1, 2]),
        _text(1, [1, 2, 3]),  # the window dropped 0 from the head
        _text(3, [3, 4, 5, 6]),
        _text(3, [3, 4, 5, 6], end=True),
        _text(3, [3, 4, 5, 6], end=True),
    ):
        assert watch.observe(text) == []
    assert watch.readings == 8 and watch.violations == []
    assert Reading.parse(_text(3, [3, 4], gaps=(4,))).gaps == {4}


@pytest.mark.parametrize(
    ("before", "after", "broken"),
    [
        (_text(0, [0, 1]), _text(0, [0, 2]), "a hole"),
        (_text(0, [0, 1]), _text(0, [0, 2, 1]), "out of order"),
        (_text(0, [0, 1]), _text(0, [0, 1, 1]), "a segment twice"),
        (_text(0, [0, 1]), _text(1, [0, 1]), "not starting at the media sequence"),
        (_text(2, [2, 3]), _text(1, [1, 2, 3]), "media sequence went back"),
        (_text(0, [0, 1, 2]), _text(0, [0, 1]), "shrank: [2]"),
        (_text(0, [0, 1]), _text(0, [0, 1, 2], gaps=(1,)), "shows gaps at [1]"),
        (_text(0, [0, 1], end=True), _text(0, [0, 1, 2], end=True), "changed after"),
    ],
)
def test_each_broken_rule_is_reported(before: str, after: str, broken: str) -> None:
    watch = PlaylistWatch("s/360p")
    assert watch.observe(before) == []
    found = watch.observe(after)
    assert any(broken in f for f in found), found
    assert all(v.startswith("s/360p: ") for v in watch.violations) and watch.violations
