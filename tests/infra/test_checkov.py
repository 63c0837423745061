"""checkov over infra/: no failed checks, and every accepted exception is written down.

checkov lives in its own virtual environment (.venv-infra, from requirements-infra.txt, made by
`make test`) because its pinned dependencies clash with the app's. It runs once for this module.
Set JUNCTION_CHECKOV to use another checkov executable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra.bicep import INFRA, ROOT

# Each accepted exception: the check, the resource it is on, and why (the same reason is in an
# inline `// checkov:skip=` comment beside the resource, and in docs/deploy.md).
ACCEPTED = {
    (
        "CKV_AZURE_35",
        "Microsoft.Storage/storageAccounts.storage",
    ): "no fixed outbound addresses without VNet integration",
    (
        "CKV_AZURE_59",
        "Microsoft.Storage/storageAccounts.storage",
    ): "the Functions host reaches storage over its public endpoint",
    ("CKV_AZURE_206", "Microsoft.Storage/storageAccounts.storage"): "ZRS/GRS is not offered in every Flex region",
    ("CKV_AZURE_225", "Microsoft.Web/serverfarms.plan"): "zone redundancy exists only in regions with zones",
    ("CKV_AZURE_222", "Microsoft.Web/sites.functionApp"): "the trigger URLs are public by design",
    ("CKV_AZURE_17", "Microsoft.Web/sites.functionApp"): "client certificates are opt-in",
    ("CKV_AZURE_67", "Microsoft.Web/sites.functionApp"): "HTTP/2 is off only while exclusion paths force TLS renegotiation",
    ("CKV_AZURE_18", "Microsoft.Web/sites.functionApp"): "HTTP/2 is off only while exclusion paths force TLS renegotiation",
    ("CKV_AZURE_78", "Microsoft.Web/sites.functionApp"): "Flex Consumption rejects ftpsState; the ftp publishing policy is off",
    ("CKV_AZURE_212", "Microsoft.Web/sites.functionApp"): "always-ready instances bill around the clock",
    ("CKV_AZURE_213", "Microsoft.Web/sites.functionApp"): "scale to zero: no idle instances to probe; GET /health is for availability tests",
    ("CKV_AZURE_109", "Microsoft.KeyVault/vaults.vault"): "no fixed outbound addresses without VNet integration",
    ("CKV_AZURE_189", "Microsoft.KeyVault/vaults.vault"): "Key Vault references resolve over the public endpoint",
}


def checkov_executable() -> str:
    configured = os.environ.get("JUNCTION_CHECKOV")
    if configured:
        found = shutil.which(configured) or (configured if Path(configured).is_file() else None)
        if not found:
            pytest.fail(f"JUNCTION_CHECKOV={configured!r} is not an executable")
        return found
    default = ROOT / ".venv-infra" / "bin" / "checkov"
    if not default.is_file():
        pytest.fail(
            "checkov is not installed: run `make test` (it creates .venv-infra from requirements-infra.txt), "
            "or `python3 -m venv .venv-infra && .venv-infra/bin/pip install -r requirements-infra.txt`, "
            "or point JUNCTION_CHECKOV at a checkov executable"
        )
    return str(default)


@pytest.fixture(scope="module")
def checkov_report() -> list[dict]:
    command = [checkov_executable(), "--directory", str(INFRA), "--output", "json", "--compact", "--skip-download"]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    # checkov exits 1 when a check fails; anything else but 0 is a crash.
    assert done.returncode in (0, 1), f"checkov crashed ({done.returncode}):\n{done.stderr[-3000:]}"
    start = done.stdout.find("{") if done.stdout.lstrip().startswith("{") else done.stdout.find("[")
    report = json.loads(done.stdout[start:])
    return report if isinstance(report, list) else [report]


def _results(report: list[dict], key: str) -> list[dict]:
    return [check for framework in report for check in framework.get("results", {}).get(key, [])]


def test_checkov_scanned_the_templates(checkov_report):
    bicep = [r for r in checkov_report if r.get("check_type") == "bicep"]
    assert bicep, "checkov found no Bicep templates"
    summary = bicep[0]["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= 15, summary


def test_checkov_reports_no_failed_checks(checkov_report):
    failed = [
        f"{c['check_id']} {c['check_name']} on {c['resource']} ({c['file_path']})"
        for c in _results(checkov_report, "failed_checks")
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)


def test_every_skipped_check_is_an_accepted_exception_with_a_reason(checkov_report):
    skipped = {}
    for check in _results(checkov_report, "skipped_checks"):
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        assert reason and reason != "No comment provided", (
            f"{check['check_id']} on {check['resource']} is skipped without a reason"
        )
        skipped[(check["check_id"], check["resource"])] = reason
    assert set(skipped) == set(ACCEPTED), (
        f"skips not in ACCEPTED: {sorted(set(skipped) - set(ACCEPTED))}; "
        f"ACCEPTED but no longer skipped: {sorted(set(ACCEPTED) - set(skipped))}"
    )


def test_accepted_exceptions_are_documented():
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for check_id, _ in ACCEPTED:
        assert check_id in text, f"docs/deploy.md must explain the accepted checkov exception {check_id}"
