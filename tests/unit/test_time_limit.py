"""ffmpeg's wall-clock limit follows its work and the function's remaining time."""

from workflow.media.runner import REPORTING_RESERVE, time_limit


def test_limit_grows_with_work_and_leaves_time_to_report() -> None:
    short, long = time_limit(900, 12), time_limit(900, 48)
    assert short < long < 900 - REPORTING_RESERVE + 1e-9
    assert time_limit(900, 10_000) == 900 - REPORTING_RESERVE


def test_limit_never_exceeds_what_the_function_has_left() -> None:
    assert time_limit(40, 48) == 40 - REPORTING_RESERVE
    assert time_limit(5, 48) == 1.0  # still a positive timeout: fail fast, report
