"""Settings from the environment: defaults, and a fast failure on bad values."""

from __future__ import annotations

import pytest

from workflow.errors import ConfigurationError, VidflowError
from workflow.settings import Limits, Settings


def test_an_empty_environment_gives_the_defaults() -> None:
    # GIVEN no settings at all
    # WHEN settings are read
    settings = Settings.from_env({})

    # THEN they are the documented defaults
    assert settings == Settings()
    assert settings.chunk_seconds == 12.0 and settings.segment_seconds == 4.0
    assert settings.ladder == "1080:5000,720:2800,480:1400,360:800"
    assert settings.limits == Limits()
    assert settings.limits.max_bytes == 20 * 1024**3
    assert settings.limits.max_seconds == 4 * 3600


def test_empty_strings_mean_the_default() -> None:
    # GIVEN variables that are set but empty (as a blank template parameter gives)
    # WHEN settings are read
    settings = Settings.from_env({"CHUNK_SECONDS": "", "AUDIO_KBPS": "", "MAX_INPUT_FPS": ""})

    # THEN the defaults apply
    assert settings == Settings()


def test_values_are_read_and_typed() -> None:
    # GIVEN every setting in the environment
    env = {
        "OUTPUT_BUCKET": "out",
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:1:stateMachine:vod",
        "LADDER": "720:2800",
        "AUDIO_KBPS": "96",
        "CHUNK_SECONDS": "8",
        "SEGMENT_SECONDS": "2",
        "X264_PRESET": "fast",
        "MAP_MAX_CONCURRENCY": "200",
        "MAX_INPUT_BYTES": "1000",
        "MAX_INPUT_SECONDS": "60.5",
        "MAX_INPUT_PIXELS": "921600",
        "MAX_INPUT_FPS": "60",
        "MAX_INPUT_STREAMS": "4",
    }

    # WHEN settings are read
    settings = Settings.from_env(env)

    # THEN each lands in its field with its type
    assert settings.output_bucket == "out"
    assert settings.state_machine_arn.endswith(":vod")
    assert settings.ladder == "720:2800"
    assert settings.audio_kbps == 96 and isinstance(settings.audio_kbps, int)
    assert settings.chunk_seconds == 8.0 and settings.segment_seconds == 2.0
    assert settings.x264_preset == "fast"
    assert settings.map_max_concurrency == 200
    assert settings.limits == Limits(1000, 60.5, 921600, 60.0, 4)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUDIO_KBPS", "lots"),
        ("AUDIO_KBPS", "128.5"),
        ("AUDIO_KBPS", "0"),
        ("AUDIO_KBPS", "-128"),
        ("MAX_INPUT_BYTES", "20GB"),
        ("MAX_INPUT_BYTES", "1e9"),
        ("MAX_INPUT_SECONDS", "-1"),
        ("MAX_INPUT_PIXELS", "4096x2304"),
        ("MAX_INPUT_FPS", "0"),
        ("MAX_INPUT_STREAMS", "two"),
        ("MAP_MAX_CONCURRENCY", "0"),
        ("SEGMENT_SECONDS", "0"),
        ("SEGMENT_SECONDS", "four"),
        ("CHUNK_SECONDS", "-12"),
    ],
)
def test_a_bad_number_is_a_configuration_error(name: str, value: str) -> None:
    # GIVEN one malformed or non-positive number
    # WHEN / THEN reading settings fails at once, naming the variable
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize(
    ("chunk", "segment"),
    [("10", "4"), ("2", "4"), ("12.5", "4"), ("6", "5")],
)
def test_chunk_seconds_must_be_a_multiple_of_segment_seconds(chunk: str, segment: str) -> None:
    # GIVEN chunks that would not hold a whole number of segments
    # WHEN / THEN reading settings fails
    with pytest.raises(ConfigurationError, match="CHUNK_SECONDS"):
        Settings.from_env({"CHUNK_SECONDS": chunk, "SEGMENT_SECONDS": segment})


@pytest.mark.parametrize(("chunk", "segment"), [("4", "4"), ("12", "2"), ("30", "6"), ("5", "2.5")])
def test_chunk_seconds_that_are_a_multiple_are_accepted(chunk: str, segment: str) -> None:
    # GIVEN chunks that hold a whole number of segments
    # WHEN settings are read
    settings = Settings.from_env({"CHUNK_SECONDS": chunk, "SEGMENT_SECONDS": segment})

    # THEN they are kept
    assert settings.chunk_seconds == float(chunk)
    assert settings.segment_seconds == float(segment)


def test_a_decimal_multiple_is_accepted() -> None:
    # GIVEN 6.6 s chunks of 2.2 s segments (three segments each)
    # WHEN / THEN settings are read without error
    assert (
        Settings.from_env({"CHUNK_SECONDS": "6.6", "SEGMENT_SECONDS": "2.2"}).chunk_seconds == 6.6
    )


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_non_finite_chunk_length_is_a_configuration_error(value: str) -> None:
    # GIVEN a non-finite chunk length
    # WHEN / THEN reading settings fails with the workflow's configuration error
    with pytest.raises(ConfigurationError):
        Settings.from_env({"CHUNK_SECONDS": value})


@pytest.mark.parametrize("name", ["MAX_INPUT_FPS", "MAX_INPUT_SECONDS"])
def test_a_nan_limit_is_a_configuration_error(name: str) -> None:
    # GIVEN a limit set to NaN
    # WHEN / THEN reading settings fails rather than disabling the limit
    with pytest.raises(ConfigurationError):
        Settings.from_env({name: "nan"})


def test_configuration_errors_belong_to_the_workflow_vocabulary() -> None:
    # GIVEN the configuration error
    # WHEN / THEN it is a VidflowError that is not retried
    assert issubclass(ConfigurationError, VidflowError)
    assert ConfigurationError("x").name == "ConfigurationError"
    assert not ConfigurationError.transient


def test_live_settings_allow_zero_but_not_less() -> None:
    settings = Settings.from_env({"LIVE_WINDOW": "0", "LIVE_GAP_SECONDS": "0"})
    assert (settings.live_window, settings.live_gap_seconds) == (0, 0.0)
    assert Settings.from_env({"LIVE_WINDOW": "3"}).live_window == 3
    for name in ("LIVE_WINDOW", "LIVE_GAP_SECONDS"):
        with pytest.raises(ConfigurationError, match=f"{name} must be zero or more"):
            Settings.from_env({name: "-1"})
    # a window of one or two segments leaves a player none of the three it stays behind
    for window in ("1", "2"):
        with pytest.raises(ConfigurationError, match=r"LIVE_WINDOW must be 0 .* or 3 or more"):
            Settings.from_env({"LIVE_WINDOW": window})


@pytest.mark.parametrize("value", ["0.5", "0.01", "1e-9", "3601", "1e9"])
def test_thumbnails_closer_than_a_second_or_over_an_hour_apart_are_a_configuration_error(
    value: str,
) -> None:
    # GIVEN thumbnails asked for closer than keyframes usually are (a Map item per 100),
    # or so far apart that each images item decodes for hours padding its span
    # WHEN / THEN reading settings fails, saying what is allowed
    with pytest.raises(
        ConfigurationError, match=r"THUMBNAIL_SECONDS must be 0 \(no images\) or 1 to 3600,"
    ):
        Settings.from_env({"THUMBNAIL_SECONDS": value})


def test_a_grace_period_as_long_as_the_reconcilers_lookback_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="less than the reconciler's lookback"):
        Settings.from_env({"RECONCILE_GRACE_SECONDS": "172800"})
    assert Settings.from_env({"RECONCILE_GRACE_SECONDS": "86400"}).reconcile_grace_seconds


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("1", 1.0), ("2.5", 2.5)])
def test_no_thumbnails_or_one_a_second_or_more_are_accepted(value: str, seconds: float) -> None:
    assert Settings.from_env({"THUMBNAIL_SECONDS": value}).thumbnail_seconds == seconds


@pytest.mark.parametrize(
    "url", ["https://cdn.example.com/?Policy=abc", "https://cdn.example.com/v#x", "https://c/?"]
)
def test_a_playback_url_with_a_query_or_fragment_is_a_configuration_error(url: str) -> None:
    # (every asset's URL is the key added after it: ".../?Policy=abc/outputs/...")
    with pytest.raises(ConfigurationError, match="PLAYBACK_BASE_URL"):
        Settings.from_env({"PLAYBACK_BASE_URL": url})
    assert Settings.from_env({"PLAYBACK_BASE_URL": "https://cdn.example.com/vod/"})
