"""No presigned URL or credential ever reaches a log, a history, a record or a manifest."""

from __future__ import annotations

import os
import re
from typing import Any

from tests.readable import readable_texts

SECRET_SHAPES = re.compile(
    r"Signature=|X-Amz-Signature|X-Amz-Credential|AWSAccessKeyId=|Expires=\d"
)


def test_logs_histories_and_records_carry_no_presigned_urls(
    engine: Any, clip: Any, run_job: Any, tmp_path: Any
) -> None:
    # GIVEN a job that succeeds and one that fails, after presigned URLs were handed to
    # ffmpeg and PyAV for both
    assert run_job(clip("half_second"), key="uploads/secrets-ok.mp4").status == "SUCCEEDED"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clip("h264_aac_2gop").read_bytes()[:100_000])
    assert run_job(broken, key="uploads/secrets-bad.mp4").status == "FAILED"
    # WHEN everything a person could read afterwards is gathered
    texts = readable_texts(engine, suffixes=(".json", ".m3u8"))
    # THEN there is plenty to read, and no signed URL or secret key in any of it
    assert len(texts) > 5 and "uploads seen" in texts["functions.log"]
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    for name, text in texts.items():
        assert not SECRET_SHAPES.search(text), name
        assert secret not in text, name
