"""A laptop with no AWS access set up, for tests of what vidflow says there."""

from __future__ import annotations

from pathlib import Path

import pytest


def without_aws_credentials(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No keys in the environment, no ~/.aws (its files point into ``home``, empty), and
    no instance metadata to ask."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
