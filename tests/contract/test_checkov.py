"""An independent scanner (checkov) finds nothing in the template that is not fixed or
answered: every suppression sits in the resource's ``Metadata`` with a one-line reason."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from workflow.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
# `make setup` installs checkov in a venv of its own: it pins an older boto3 than moto needs.
CHECKOV = ROOT / ".venv" / "checkov" / "bin" / "checkov"


def _checkov(template: Path) -> dict[str, Any]:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make setup`"
    done = subprocess.run(
        [str(CHECKOV), "--file", str(template), "--framework", "cloudformation",
         "--output", "json", "--skip-download"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        # Offline: no guideline lookups from the vendor's platform.
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _findings(checks: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(check["check_id"], check["resource"].split(".")[-1]) for check in checks}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return _checkov(ROOT / "sam-template.yaml")


def _suppressions() -> list[tuple[str, dict[str, Any]]]:
    template = load_template(ROOT / "sam-template.yaml")
    return [
        (lid, skip)
        for lid, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]


def test_checkov_finds_nothing_unanswered(report: dict[str, Any]) -> None:
    failed = report["results"]["failed_checks"]
    lines = [f"{check['check_id']} {check['resource']}: {check['check_name']}" for check in failed]
    assert not failed, "checkov failed checks:\n" + "\n".join(lines)
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0


def test_every_suppression_says_why() -> None:
    suppressions = _suppressions()
    assert suppressions
    for lid, skip in suppressions:
        assert str(skip.get("id", "")).startswith("CKV"), (lid, skip)
        comment = str(skip.get("comment", "")).strip()
        assert comment and "\n" not in comment, f"{lid} skips {skip.get('id')} without a reason"


def test_every_suppression_answers_a_finding(tmp_path: Path) -> None:
    # The same template without its suppressions: what fails is exactly what is suppressed.
    template = load_template(ROOT / "sam-template.yaml")
    for resource in template["Resources"].values():
        resource.get("Metadata", {}).pop("checkov", None)
    bare = tmp_path / "sam-template.json"
    bare.write_text(json.dumps(template))
    found = _findings(_checkov(bare)["results"]["failed_checks"])
    suppressed = {(str(skip["id"]), lid) for lid, skip in _suppressions()}
    assert suppressed == found, (
        f"suppressed but not found: {sorted(suppressed - found)}; "
        f"found but not suppressed: {sorted(found - suppressed)}"
    )
