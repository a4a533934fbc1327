"""``vidflow invoke`` and ``redrive``: call one function of a running stack (local or AWS)
with an event, or again with each event that failed every attempt."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from workflow.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    engine_options,
    engine_parameters,
    local_stack,
    project_root,
    reachable,
    target_options,
)
from workflow.media.subtitles import SIDECAR_FORMATS

if TYPE_CHECKING:
    from workflow.cli.common import Commands


def add_invoke(commands: Commands) -> None:
    invoke = commands.add_parser(
        "invoke", help="run one function with an event, like sam local invoke (no Docker)"
    )
    invoke.add_argument("function", help="logical id (ProbeFunction) or code folder (probe)")
    invoke.add_argument("--event", type=Path, required=True, help="a JSON event file")
    invoke.add_argument(
        "--upload",
        type=Path,
        action="append",
        metavar="FILE",
        help="first put FILE in the ingest bucket where the event's source (or S3 record) "
        "says (unless the same bytes are there), and point the event at that upload (its "
        "ETag, version and size); a .srt or .vtt file goes where a subtitles event's "
        "sidecar says (repeat for both)",
    )
    target_options(invoke)
    engine_options(invoke)
    invoke.set_defaults(run=invoke_function)


def add_redrive(commands: Commands) -> None:
    replay = commands.add_parser(
        "redrive", help="run again the upload and live events that failed every attempt"
    )
    target_options(replay)
    engine_options(replay)
    replay.set_defaults(run=redrive)


def invoke_function(args: argparse.Namespace) -> int:
    """``vidflow invoke``: one handler, its template environment, one event, no Docker.

    Against a running ``vidflow up`` by default, or real AWS with ``--profile`` (the
    template is resolved for the deployed stack's name, account and region). Prints
    the function's result, or its error payload, as JSON on stdout.
    """
    from workflow.local.engine import built_runtime

    try:
        event = json.loads(args.event.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        print(f"error: cannot read event {args.event}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not isinstance(event, dict):
        # Every event Lambda hands a handler here (S3's, a state's, a schedule's, a
        # function URL's) is an object; a handler given another fails on its first look.
        print(
            f"error: {args.event} holds {_json_kind(event)}; an event is a JSON "
            "object (the samples in events/ show each function's)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    for upload in args.upload or []:
        # As `vidflow process` says it, before any stack is asked: not an internal error.
        if not upload.is_file():
            what = "a folder" if upload.is_dir() else "no such file"
            print(f"error: --upload {upload}: {what}; give a file to upload", file=sys.stderr)
            return EXIT_USAGE
    target = _target(args)
    if isinstance(target, int):
        return target
    stack, aws_env, session = target
    if stack.find_function(args.function) is None:
        known = ", ".join(sorted(f.logical_id for f in stack.functions()))
        print(f"error: no function {args.function!r} in the template ({known})", file=sys.stderr)
        return EXIT_USAGE
    for upload in args.upload or []:
        uploaded = _with_upload(event, upload, stack, _s3(args, session))
        if uploaded is None:
            print(f"error: {args.event} names no place for {upload.name}: "
                  f"{_places(event)}", file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        event = uploaded
    lambdas = built_runtime(stack, aws_env)
    try:
        result, error = lambdas.invoke(args.function, event)
    finally:
        lambdas.stop()
    if error is not None:
        print(json.dumps({k: v for k, v in error.items() if k != "stackTrace"}, indent=2))
        print(f"error: {error['errorType']}: {error['errorMessage']}", file=sys.stderr)
        if error["errorType"] in ("EventError", "KeyError", "TypeError", "ValueError"):
            # What Lambda answers too; here the likely cause is the hand-made event.
            print(
                f"hint: {args.event} may lack a field {args.function} reads, or hold one of "
                "another type: events/ has a sample event for each function",
                file=sys.stderr,
            )
        return EXIT_FAILED
    print(json.dumps(result, indent=2))
    return 0


def _json_kind(value: Any) -> str:
    """What JSON calls ``value``'s kind: "an array", "null", ..."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "null" if value is None else "a number"


def _s3(args: argparse.Namespace, session: Any) -> Any:
    endpoint = None if args.profile else args.endpoint_url
    return session.client("s3", endpoint_url=endpoint)


def _sidecar(event: Any) -> dict[str, Any] | None:
    """A subtitles event's sidecar (its key and format), if it is one."""
    item = event.get("item") if isinstance(event, dict) else None
    sidecar = item.get("sidecar") if isinstance(item, dict) else None
    return sidecar if isinstance(sidecar, dict) and _a_key(sidecar.get("key")) else None


def _source(event: Any) -> dict[str, Any] | None:
    """A step's event's source (the upload it reads), if it names one by its key."""
    source = event.get("source") if isinstance(event, dict) else None
    return source if isinstance(source, dict) and _a_key(source.get("key")) else None


def _a_key(key: Any) -> bool:
    """Whether ``key`` can name an S3 object (an empty one was sent to S3, which refused
    it as a ParamValidationError, an internal error)."""
    return isinstance(key, str) and 0 < len(key.encode()) <= 1024


def _names_objects(event: Any) -> bool:
    """Whether ``event`` is an S3 event each of whose records names a bucket and a key."""
    records = event.get("Records") if isinstance(event, dict) else None
    return isinstance(records, list) and bool(records) and all(_names_object(r) for r in records)


def _names_object(record: Any) -> bool:
    s3 = record.get("s3") if isinstance(record, dict) else None
    uploaded = s3.get("object") if isinstance(s3, dict) else None
    return (
        isinstance(s3, dict)
        and isinstance(s3.get("bucket"), dict)
        and isinstance(uploaded, dict)
        and isinstance(uploaded.get("key"), str)
    )


def _places(event: Any) -> str:
    """What an event lets ``--upload`` put where, for the error that says it fits nowhere."""
    places = []
    if _source(event) is not None or _names_objects(event):
        places.append("a video for its source")
    if _sidecar(event) is not None:
        places.append(f"a {' or '.join(SIDECAR_FORMATS)} file for its subtitles")
    return "it takes " + " and ".join(places) if places else "no source, no S3 record"


def _with_upload(event: Any, path: Path, stack: Any, s3: Any) -> Any:
    """``event`` pointing at ``path``, uploaded to the stack's ingest bucket under the key
    the event names (a subtitle file: its sidecar's); None if it names none."""
    bucket = stack.outputs()["IngestBucketName"]

    def upload(key: str) -> dict[str, Any]:
        # The same bytes there already are that upload: each step of a walk-through then
        # reads one upload of a file, as one execution's steps do.
        with contextlib.suppress(ClientError):
            there: dict[str, Any] = s3.head_object(Bucket=bucket, Key=key)
            if there["ETag"].strip('"') == _md5(path):
                return there
        s3.upload_file(str(path), bucket, key)
        described: dict[str, Any] = s3.head_object(Bucket=bucket, Key=key)
        return described

    sidecar = _sidecar(event)
    if path.suffix.lower().lstrip(".") in SIDECAR_FORMATS:
        if sidecar is None:
            return None
        described = upload(sidecar["key"])
        return {**event, "item": {**event["item"], "etag": described["ETag"].strip('"')}}
    if _source(event) is not None:
        described = upload(event["source"]["key"])
        # Its own upload time too: Probe takes a Last-Modified past the event's time for
        # the same bytes PUT again (vod/probe.py put_again).
        source = {**event["source"], "bucket": bucket, "etag": described["ETag"].strip('"'),
                  "size": described["ContentLength"],
                  "uploaded_at": described["LastModified"].isoformat()}  # fmt: skip
        if "version_id" in source or described.get("VersionId"):
            source["version_id"] = described.get("VersionId")
        return {**event, "source": source}
    if _names_objects(event):
        records = []
        for record in event["Records"]:
            key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
            described = upload(key)
            # This upload's own ETag, size, version (none in a bucket without versions)
            # and time; not the sample's sequencer, which tells another PUT of the key
            # (HEAD gives none: a record without one is this upload's, whatever its event).
            uploaded = {k: v for k, v in record["s3"]["object"].items()
                        if k not in ("versionId", "sequencer")}  # fmt: skip
            uploaded |= {"eTag": described["ETag"].strip('"'), "size": described["ContentLength"]}
            if described.get("VersionId") not in (None, "null"):
                uploaded["versionId"] = described["VersionId"]
            s3_part = {**record["s3"], "bucket": {**record["s3"]["bucket"], "name": bucket},
                       "object": uploaded}  # fmt: skip
            when = described["LastModified"].isoformat(timespec="milliseconds")
            records.append({**record, "eventTime": when, "s3": s3_part})
        return {**event, "Records": records}
    return None


def _md5(path: Path) -> str:
    """The file's MD5, as S3 gives a single-part upload's ETag."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


def _target(args: argparse.Namespace) -> tuple[Any, dict[str, str], Any] | int:
    """The stack ``--profile`` names on AWS, or the local one at ``--endpoint-url``: its
    template resolved, the environment its functions run with, and a boto3 session for
    this process; or the exit status of saying why there is none."""
    import boto3

    from workflow.local.engine import (
        LOCAL_ACCESS_KEY_ID,
        LOCAL_SECRET_ACCESS_KEY,
        local_function_env,
    )
    from workflow.local.template import Stack

    if args.profile:
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        account = session.client("sts").get_caller_identity()["Account"]
        stack = Stack(
            project_root(),
            name=args.stack_name,
            region=session.region_name,
            account=account,
            overrides=engine_parameters(args),
        )
        # The profile lives in the user's ~/.aws, found through HOME.
        return stack, {"AWS_PROFILE": args.profile, "HOME": str(Path.home())}, session
    if not reachable(args.endpoint_url):
        print(
            f"error: no local stack at {args.endpoint_url}; start one with vidflow up",
            file=sys.stderr,
        )
        return EXIT_USAGE
    stack = local_stack(args)
    session = boto3.Session(
        aws_access_key_id=LOCAL_ACCESS_KEY_ID,
        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
        region_name=stack.region,
    )
    return stack, local_function_env(args.endpoint_url), session


def redrive(args: argparse.Namespace) -> int:
    """``vidflow redrive``: run again each event that failed every asynchronous attempt.

    Reads the template's on-failure queues (``FailedEventsQueue``); each message names the
    function and the event. An event that succeeds now is deleted from the queue; one that
    fails again stays there, for the next run. Job and segment starts are
    idempotent, so an event that had in fact gone through starts nothing twice.
    """
    from workflow.local.engine import built_runtime

    target = _target(args)
    if isinstance(target, int):
        return target
    stack, aws_env, session = target
    endpoint = None if args.profile else args.endpoint_url
    sqs = session.client("sqs", endpoint_url=endpoint)
    lambdas = built_runtime(stack, aws_env)
    replayed = failed = 0
    try:
        for queue in stack.queues().values():
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            done, again = redrive_queue(sqs, url, lambdas)
            replayed, failed = replayed + done, failed + again
    finally:
        lambdas.stop()
    print(f"{replayed} redriven, {failed} failed again")
    return 0 if failed == 0 else EXIT_FAILED


def redrive_queue(sqs: Any, url: str, lambdas: Any) -> tuple[int, int]:
    """Run again each event in one queue: how many succeeded (deleted) and failed again.

    One that fails again is visible again once the run is over, so a run right after its
    cause is fixed finds it (it stays hidden only while this run reads the queue).
    """
    replayed = failed = 0
    held: list[str] = []  # received, so hidden for 15 minutes, and not deleted
    try:
        for batch in _batches(sqs, url):
            held += [message["ReceiptHandle"] for message in batch]
            for message in batch:
                record = _failure_record(message["Body"])
                if record is None:
                    # (a message put by hand, or by another sender: the others go on)
                    failed += 1
                    print(f"failed again: {message['MessageId']}: not an on-failure record "
                          "of a function's event", flush=True)  # fmt: skip
                    continue
                name, error = _redrive_one(lambdas, record)
                if error is None:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    held.remove(message["ReceiptHandle"])
                    replayed += 1
                    print(f"redriven: {name}", flush=True)
                else:
                    failed += 1
                    print(f"failed again: {name}: {error}", flush=True)
    finally:
        # Those that failed again, and those an interrupted run received but never ran:
        # the next run finds them, rather than find the queue empty for 15 minutes.
        for handle in held:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return replayed, failed


def _batches(sqs: Any, url: str) -> Iterator[list[dict[str, Any]]]:
    """Every message in the queue, in the batches received, each hidden for 15 minutes
    once received."""
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=900
        ).get("Messages", [])
        if not messages:
            return
        yield messages


def _failure_record(body: str) -> dict[str, Any] | None:
    """A queue message's on-failure record (the function's ARN and the event it failed
    on, as Lambda writes it), or None for anything else."""
    try:
        record = json.loads(body)
        arn = record["requestContext"]["functionArn"]
        payload = record["requestPayload"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return record if isinstance(arn, str) and isinstance(payload, dict) else None


def _redrive_one(lambdas: Any, record: dict[str, Any]) -> tuple[str, str | None]:
    """Invoke again the function of one on-failure record with its event, under the
    failed invocation's request id (a retry of it, as Lambda's were: StartJob's starts are
    named after it): the function's name, and its error (``Type: message``) if it failed
    again."""
    context = record["requestContext"]
    function = context["functionArn"].rsplit(":", 1)[0]
    _, error = lambdas.invoke(function, record["requestPayload"], context.get("requestId"))
    failure = None if error is None else f"{error['errorType']}: {error['errorMessage']}"
    return function.rsplit(":", 1)[-1], failure
