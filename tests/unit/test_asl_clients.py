"""The local Step Functions interpreter keeps its Lambda clients, as the service does,
rather than making one for each task it runs."""

from __future__ import annotations

from typing import Any

import pytest

from workflow.local.asl_clients import one_client_each


def test_the_interpreter_keeps_one_lambda_client_per_region_and_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[tuple[str, str]] = []

    def make(region: str, service: str, state_credentials: Any = None) -> object:
        made.append((region, service))
        return object()

    client = one_client_each(make)
    monkeypatch.setenv("MOTO_PORT", "5001")
    first = client(region="us-east-1", service="lambda")
    # The same region and endpoint: the client made first, whatever the state assumes.
    assert client(region="us-east-1", service="lambda", state_credentials={"RoleArn": "r"}) is first
    assert client(region="eu-west-1", service="lambda") is not first
    monkeypatch.setenv("MOTO_PORT", "5002")  # another server: another client
    assert client(region="us-east-1", service="lambda") is not first
    assert made == [("us-east-1", "lambda"), ("eu-west-1", "lambda"), ("us-east-1", "lambda")]


def test_installed_the_interpreters_lambda_calls_share_one_client() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    from workflow.local import asl_clients

    asl_clients.install()
    asl_clients.install()  # once per process, however often asked
    first = lambda_eval_utils.boto_client_for(region="us-east-1", service="lambda")  # type: ignore[attr-defined]
    again = lambda_eval_utils.boto_client_for(region="us-east-1", service="lambda")  # type: ignore[attr-defined]
    assert first is again
    assert first.meta.service_model.service_name == "lambda"
