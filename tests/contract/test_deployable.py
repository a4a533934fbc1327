"""Offline proof that the template deploys: it validates, lints, transforms to least
privilege, and `sam build` produces artefacts that fit Lambda and run."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from samtranslator.translator.arn_generator import ArnGenerator
from samtranslator.translator.transform import transform

from workflow.local.build import find_interpreter
from workflow.local.origin import PUBLISHED_PREFIXES
from workflow.local.template import Stack, load_template

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOOL_ENV = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
LAMBDA_UNZIPPED_LIMIT = 262_144_000  # 250 MB: function code plus all its layers

# Actions AWS does not let a policy scope to a resource (the service defines no resource
# type for them), so "*" is the only possible Resource.
UNSCOPABLE = {
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    "xray:PutTraceSegments", "xray:PutTelemetryRecords",
    "xray:GetSamplingRules", "xray:GetSamplingTargets",
}  # fmt: skip
# AWS-managed policies SAM attaches for logging and tracing.
MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=ROOT, env=TOOL_ENV, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip


def test_sam_validate_lint_passes() -> None:
    done = _tool("sam", "validate", "--lint", "--template", "sam-template.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_cfn_lint_passes() -> None:
    done = _tool("cfn-lint", "sam-template.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


class _NoManagedPolicyLookups:
    def load(self) -> dict[str, str]:
        return {}


def transformed() -> dict[str, Any]:
    """The CloudFormation SAM would deploy (local paths stand in for S3 locations)."""
    template = copy.deepcopy(load_template(ROOT / "sam-template.yaml"))
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in props:
                props[key] = f"s3://artefacts/{props[key]}"
        if "DefinitionUri" in props:
            props["Definition"] = json.loads((ROOT / props.pop("DefinitionUri")).read_text())
    ArnGenerator.BOTO_SESSION_REGION_NAME = "us-east-1"
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": "us-east-1"}):
        return transform(template, {}, _NoManagedPolicyLookups())  # type: ignore[arg-type]


def _statements() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for lid, resource in transformed()["Resources"].items():
        # A policy resource (the optional KMS key's use) is held to the same rules as a role.
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                found.append((lid, statement))
            continue
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for managed in resource["Properties"].get("ManagedPolicyArns", []):
            arn = (
                managed
                if isinstance(managed, str)
                else managed["Fn::Sub"].replace("${AWS::Partition}", "aws")
            )
            assert arn in MANAGED, f"{lid} attaches {arn}"
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                found.append((lid, statement))
    return found


def test_no_wildcard_that_could_be_scoped() -> None:
    statements = _statements()
    assert statements
    for role, statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        for action in actions:
            assert "*" not in action, f"{role}: wildcard action {action}"
        if "*" in resources:
            assert set(actions) <= UNSCOPABLE, f"{role}: {actions} on * could be scoped"


def test_functions_reach_only_their_prefixes() -> None:
    bucket_wide = 's3:::${AWS::StackName}-ingest-${AWS::AccountId}-${AWS::Region}"'
    for role, statement in _statements():
        if bucket_wide in json.dumps(statement):
            # only listing: live/ (a stream's markers and segments) for the live
            # functions, uploads/ for the Plan function (a video's sidecar subtitles) and
            # the readers of uploads and clip requests (to tell one deleted from a denial),
            # all three for the reconciler (uploads, segments and clip requests nothing
            # processed)
            # LiveProbe also lists init.mp4's versions, to read a segment behind its own
            listing = ["s3:ListBucket"]
            if role == "LiveProbeFunctionRole":
                listing.append("s3:ListBucketVersions")
            assert statement["Action"] == listing, role
            prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
            readers = ("Probe", "TranscodeChunk", "TranscodeAudio", "Images", "Subtitles")
            expected = {
                **{f"{reader}FunctionRole": ["uploads/*"] for reader in readers},
                "PlanFunctionRole": ["uploads/*"],
                "ClipFunctionRole": ["clips/*"],
                "ReconcileFunctionRole": ["uploads/*", "live/*", "clips/*"],
            }.get(role, ["live/*"])
            assert prefixes == expected, role
        for resource in (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        ):
            rendered = json.dumps(resource)
            if ":s3:::" in rendered and "/" in rendered.split(":s3:::", 1)[1]:
                assert any(
                    p in rendered
                    for p in (
                        "/uploads/*",
                        "/jobs/*",
                        "/outputs/*",
                        "/failures/*",
                        "/live/*",
                        "/clips/*",
                        "/announced/*",
                    )
                ), (role, rendered)


def test_only_the_announcing_functions_put_events_and_only_on_the_stacks_bus() -> None:
    putting = {
        role: statement
        for role, statement in _statements()
        if "events:PutEvents" in json.dumps(statement["Action"])
    }
    assert set(putting) == {
        "PublishFunctionRole",
        "RecordFailureFunctionRole",
        "LivePublishFunctionRole",
        "LiveSweepFunctionRole",
        "LiveIngestFunctionRole",
        "ClipFunctionRole",
    }
    for role, statement in putting.items():
        assert statement["Action"] == ["events:PutEvents"], role
        assert statement["Resource"] == [{"Fn::GetAtt": ["EventBus", "Arn"]}], role


def test_the_source_readers_may_read_the_version_their_job_started_from() -> None:
    # A GET or HEAD naming a VersionId needs s3:GetObjectVersion, not only s3:GetObject.
    # (StartJob heads two versions of the same bytes: which options each asks for; the
    # reconciler starts jobs through the same check)
    readers = {"ProbeFunctionRole", "TranscodeChunkFunctionRole", "TranscodeAudioFunctionRole",
               "ImagesFunctionRole", "StartJobFunctionRole", "ReconcileFunctionRole"}  # fmt: skip
    granted = {
        role
        for role, statement in _statements()
        if "s3:GetObjectVersion" in statement["Action"]
        and all("/uploads/*" in json.dumps(r) for r in statement["Resource"])
    }
    assert granted == readers
    # (and Clip the version of its request that its execution is for)
    assert any(
        role == "ClipFunctionRole"
        and "s3:GetObjectVersion" in statement["Action"]
        and all(
            "-ingest-" in json.dumps(r) and "/clips/*" in json.dumps(r)
            for r in statement["Resource"]
        )
        for role, statement in _statements()
    )


def test_buckets_are_private_encrypted_and_separate() -> None:
    resources = transformed()["Resources"]
    buckets = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::S3::Bucket"}
    assert set(buckets) == {"IngestBucket", "OutputBucket"}
    for lid, bucket in buckets.items():
        props = bucket["Properties"]
        assert all(props["PublicAccessBlockConfiguration"].values()), lid
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], lid
    policies = {
        r["Properties"]["Bucket"]["Ref"]: r["Properties"]["PolicyDocument"]["Statement"]
        for r in resources.values()
        if r["Type"] == "AWS::S3::BucketPolicy"
    }
    for lid in buckets:
        deny, *others = policies[lid]
        assert (
            deny["Effect"] == "Deny" and deny["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        )
        # The one other statement: the optional CDN reads the output, as its own distribution
        assert [o["Fn::If"][0] for o in others] == (["CreateCdn"] if lid == "OutputBucket" else [])
        for allow in (o["Fn::If"][1] for o in others):
            assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
            assert allow["Action"] == "s3:GetObject"
            # only what the local origin serves: the published prefixes
            readable = [
                r["Fn::Sub"].removeprefix("${OutputBucket.Arn}/") for r in allow["Resource"]
            ]
            assert readable == [f"{prefix}*" for prefix in PUBLISHED_PREFIXES]
            assert "PlaybackDistribution" in json.dumps(allow["Condition"]["StringEquals"])
    notifications = buckets["IngestBucket"]["Properties"]["NotificationConfiguration"]
    assert "NotificationConfiguration" not in buckets["OutputBucket"]["Properties"]
    prefixes = [
        c["Filter"]["S3Key"]["Rules"][0]["Value"] for c in notifications["LambdaConfigurations"]
    ]
    assert sorted(prefixes) == ["clips/", "live/", "uploads/"]


def test_every_log_group_has_a_retention() -> None:
    resources = transformed()["Resources"]
    groups = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert all(g["Properties"].get("RetentionInDays") for g in groups.values())
    for lid, r in resources.items():
        if r["Type"] == "AWS::Lambda::Function":
            assert r["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] in groups, lid


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _layers_of(function: str) -> list[str]:
    template = load_template(ROOT / "sam-template.yaml")
    globals_ = template["Globals"]["Function"].get("Layers", [])
    own = template["Resources"][function]["Properties"].get("Layers", [])
    return [layer["Ref"] for layer in [*globals_, *own]]


FUNCTIONS = [
    lid for lid, r in load_template(ROOT / "sam-template.yaml")["Resources"].items()
    if r["Type"] == "AWS::Serverless::Function"
]  # fmt: skip


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_fits_lambda_unzipped(build_dir: Path, function: str) -> None:
    total = _size(build_dir / function) + sum(
        _size(build_dir / layer) for layer in _layers_of(function)
    )
    assert total < LAMBDA_UNZIPPED_LIMIT, f"{function}: {total / 1e6:.1f} MB"


@pytest.mark.parametrize("name", ["mpegts_bframes", "h264_aac_2gop"])
def test_the_layer_ffmpeg_decodes_mpegts_and_mp4(build_dir: Path, clip: Any, name: str) -> None:
    ffmpeg = build_dir / "FfmpegLayer" / "bin" / "ffmpeg"
    done = subprocess.run(
        [str(ffmpeg), "-nostdin", "-v", "error", "-i", str(clip(name)), "-f", "null", "-"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == ""
    assert (
        (build_dir / "FfmpegLayer" / "LICENSE-ffmpeg")
        .read_text()
        .startswith("ffmpeg from imageio-ffmpeg")
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_handler_imports_from_the_built_artefacts_alone(
    build_dir: Path, function: str, tmp_path: Path
) -> None:
    # The Lambda runtime provides boto3 and nothing else: link just that in.
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    import boto3
    import botocore

    for module in (boto3, botocore):
        (runtime / module.__name__).symlink_to(Path(module.__file__).parent)
    for extra in ("s3transfer", "jmespath", "dateutil", "urllib3", "six"):
        found = __import__(extra)
        target = Path(found.__file__)
        (runtime / (target.name if target.name != "__init__.py" else extra)).symlink_to(
            target if target.name != "__init__.py" else target.parent
        )
    paths = [build_dir / function] + [
        build_dir / layer / "python" for layer in _layers_of(function)
    ]
    paths.append(runtime)
    # The environment the template gives the function: a handler checks it at cold start.
    function_env = Stack(ROOT).find_function(function).environment  # type: ignore[union-attr]
    environment = json.dumps({"AWS_DEFAULT_REGION": "us-east-1", **function_env})
    script = (
        "import json, os, sys, importlib; os.environ.update(json.loads(sys.argv[1]));"
        "sys.path[:0] = sys.argv[2].split(os.pathsep);"
        "m = importlib.import_module('app'); assert callable(m.handler);"
        "print(sorted(n for n in sys.modules if n in ('av', 'workflow', 'ffmpeg')))"
    )
    # The Python the layers are built for (the template's Runtime where the machine has
    # it): compiled wheels in them (cryptography's) load in that version only.
    python = find_interpreter(
        load_template(ROOT / "sam-template.yaml")["Globals"]["Function"]["Runtime"]
    ).path
    done = subprocess.run(
        [str(python), "-I", "-S", "-B", "-c", script, environment,
         os.pathsep.join(map(str, paths))],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "workflow" in done.stdout


def test_build_records_ffmpeg_version(build_dir: Path) -> None:
    version = (build_dir / "FfmpegLayer" / "FFMPEG_VERSION").read_text()
    assert version.startswith("ffmpeg version")
    assert shutil.which("ffmpeg", path=str(build_dir / "FfmpegLayer" / "bin"))


def test_only_the_s3_triggered_functions_reach_the_failed_events_queue() -> None:
    # SAM grants the on-failure destination: sqs:SendMessage on that one queue, nothing more.
    senders = {}
    for role, statement in _statements():
        rendered = json.dumps(statement)
        if "sqs:" in rendered or "FailedEventsQueue" in rendered:
            senders[role] = statement
    assert set(senders) == {"StartJobFunctionRole", "LiveIngestFunctionRole"}
    for statement in senders.values():
        assert statement["Action"] == "sqs:SendMessage"
        assert statement["Resource"] == {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}


def test_the_kms_key_is_used_only_when_given_and_only_that_key() -> None:
    resources = transformed()["Resources"]
    policies = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::IAM::Policy"}
    assert set(policies) == {"KmsKeyUse"}
    policy = policies["KmsKeyUse"]
    assert policy["Condition"] == "HasKmsKey"
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Resource"] == {"Ref": "KmsKeyArn"}
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    # Every function reads its encrypted environment and data; the VOD machine reads Map items.
    roles = {role["Ref"] for role in policy["Properties"]["Roles"]}
    assert roles == {f"{function}Role" for function in FUNCTIONS} | {"VodStateMachineRole"}
