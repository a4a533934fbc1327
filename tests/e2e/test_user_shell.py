"""``vidflow`` in a user's shell: what the user's environment names must not steer the
local stack, or stop it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.stack import VIDFLOW, free_port

ROOT = Path(__file__).resolve().parents[2]

# The session's stack built the functions first: a build (pip, from the package
# registries) goes through the user's proxy as it should, and these shells name proxies,
# endpoints and profiles that are not there.
pytestmark = pytest.mark.usefixtures("engine")


def _process(clip: Any, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    out = tmp_path / "out"
    return subprocess.run(
        [*VIDFLOW, "process", str(clip("half_second")), "--out", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, **env},
    )  # fmt: skip


def test_a_proxy_the_shell_names_is_not_asked_for_the_local_stack(
    clip: Any, tmp_path: Path
) -> None:
    # GIVEN a shell that sends web traffic through a proxy (here one that is not there)
    # and does not name localhost as an exception
    proxy = f"http://127.0.0.1:{free_port()}"
    env = {name: proxy for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY")}
    env.update(no_proxy="", NO_PROXY="")
    # WHEN a video is processed
    done = _process(clip, tmp_path, **env)
    # THEN the local stack is reached directly
    assert done.returncode == 0, done.stderr


def test_a_service_endpoint_the_shell_names_does_not_steer_the_local_stack(
    clip: Any, tmp_path: Path
) -> None:
    # GIVEN a shell that names endpoints for single services (AWS's own, on a real
    # machine; here ports nothing listens on, so that the test never reaches AWS)
    elsewhere = f"http://127.0.0.1:{free_port()}"
    env = {f"AWS_ENDPOINT_URL_{service}": elsewhere for service in ("S3", "SFN", "DYNAMODB")}
    # WHEN a video is processed
    done = _process(clip, tmp_path, **env)
    # THEN every call goes to the local stack
    assert done.returncode == 0, done.stderr


def test_a_profile_this_machine_lacks_stops_no_local_command(clip: Any, tmp_path: Path) -> None:
    # GIVEN a shell that names an AWS profile that no config file here has
    (tmp_path / "config").write_text("")
    env = {"AWS_PROFILE": "prod", "AWS_CONFIG_FILE": str(tmp_path / "config")}
    # WHEN vidflow is asked its version, and to process a video locally
    version = subprocess.run(
        [*VIDFLOW, "--version"], capture_output=True, text=True, env={**os.environ, **env}
    )
    done = _process(clip, tmp_path, **env)
    # THEN neither needs the profile
    assert version.returncode == 0 and "Traceback" not in version.stderr, version.stderr
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "config",
    [
        "[default]\ns3 =\n  addressing_style = virtual\n",  # a setting for AWS's own S3
        "[default\nregion =\n",  # a file that does not parse
    ],
)
def test_the_users_aws_config_file_does_not_steer_the_local_stack(
    clip: Any, tmp_path: Path, config: str
) -> None:
    # GIVEN the shell's AWS config file
    (tmp_path / "config").write_text(config)
    # WHEN a video is processed
    done = _process(clip, tmp_path, AWS_CONFIG_FILE=str(tmp_path / "config"))
    # THEN the local stack reads none of it
    assert done.returncode == 0, done.stderr


def test_a_temporary_folder_with_a_space_in_its_name_runs_a_job(clip: Any, tmp_path: Path) -> None:
    # GIVEN a TMPDIR whose path has a space and a non-ASCII letter in it
    scratch = tmp_path / "my temp é"
    scratch.mkdir()
    # WHEN a video is processed
    done = _process(clip, tmp_path, TMPDIR=str(scratch))
    # THEN the functions still get a /tmp ffmpeg can name in its filters
    assert done.returncode == 0, done.stderr


def test_a_checkout_whose_path_has_a_space_builds_and_runs_a_job(clip: Any, tmp_path: Path) -> None:
    # GIVEN a checkout in a folder whose name has a space and an accent, not yet built
    checkout = tmp_path / "my project é" / "vidflow"
    checkout.mkdir(parents=True)
    for part in ("sam-template.yaml", "statemachine", "lambdas", "layers", "workflow"):
        source = ROOT / part
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "node_modules")
            shutil.copytree(source, checkout / part, ignore=ignore)
        else:
            shutil.copy2(source, checkout / part)
    # WHEN a video is processed with it
    out = tmp_path / "out"
    done = subprocess.run(
        [*VIDFLOW, "--project", str(checkout), "process", str(clip("half_second")),
         "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    # THEN sam build makes its layers and the job runs on them
    assert done.returncode == 0, done.stderr
    assert (checkout / ".aws-sam" / "build" / "WorkflowLayer" / "python" / "workflow").is_dir()
