"""The Step Functions SDK attaches to the local stack through the same API as to AWS."""

from __future__ import annotations

import json
from typing import Any

from tests.aws_env import without_aws_credentials
from workflow.cli.notebook import attach


def test_sdk_lists_and_reads_executions(engine: Any, clip: Any, run_job: Any) -> None:
    # GIVEN a finished job on the local stack
    run = run_job(clip("half_second"), key="uploads/notebook.mp4")
    # WHEN a notebook attaches to the state machine by its template name
    vod = attach(endpoint_url=engine.endpoints.endpoint_url)
    # THEN it finds the execution, its output and its history
    assert vod.state_machine_arn == engine.endpoints.state_machine_arn
    executions = {e.execution_arn.rsplit(":", 1)[-1]: e for e in vod.list_executions()}
    execution = executions[run.job_id]
    assert execution.describe()["status"] == "SUCCEEDED"
    assert json.loads(json.dumps(execution.get_output()))["published"]["master_key"].endswith(
        "/master.m3u8"
    )
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in execution.list_events()
        if "stateEnteredEventDetails" in e
    ]
    assert entered[:3] == ["Probe", "AlreadyPublished", "Plan"] and entered[-1] == "Published"


def test_a_laptop_without_aws_credentials_attaches_to_the_local_stack(
    engine: Any, monkeypatch: Any, tmp_path: Any
) -> None:
    # GIVEN a fresh laptop: no AWS keys in the environment and no ~/.aws (the local stack
    # takes any credentials, and the docs' attach() names none)
    without_aws_credentials(monkeypatch, tmp_path)
    # WHEN a notebook attaches to it as docs/local.md shows
    vod = attach(endpoint_url=engine.endpoints.endpoint_url)
    # THEN it reads the stack, not NoCredentialsError
    assert vod.state_machine_arn == engine.endpoints.state_machine_arn
    assert isinstance(vod.list_executions(), list)
