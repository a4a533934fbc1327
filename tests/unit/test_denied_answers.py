"""A call the function's role may not make is answered as AWS answers it: with the
response metadata botocore reads, so botocore's own handling of the refusal goes on."""

from __future__ import annotations

from typing import Any

from botocore.utils import S3RegionRedirectorv2

from workflow.local.bootstrap import _denied


class _Client:
    """A function's S3 client whose role may not HEAD the bucket."""

    def head_bucket(self, **_: Any) -> Any:
        raise _denied("HeadBucket", "not allowed", head=True)


def test_a_denied_head_bucket_leaves_a_bare_400_as_s3_answered_it() -> None:
    # GIVEN a HEAD of an object answered a bare 400 (an SSE-C object read without its
    # key), which botocore takes for a wrong region and looks up with HeadBucket
    client = _Client()
    redirector = S3RegionRedirectorv2(None, client)
    answered = {"Error": {"Code": "400"}, "ResponseMetadata": {"HTTPHeaders": {}}}
    # WHEN the function's role may not make that HeadBucket
    region = redirector.get_bucket_region("vidflow-ingest", (None, answered))
    # THEN botocore finds no other region (and the 400 stands), not a KeyError
    assert region is None
    assert _denied("GetObject", "not allowed").response["ResponseMetadata"]["HTTPHeaders"] == {}
