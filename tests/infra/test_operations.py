"""docs/operations.md and the alert rules agree: the telemetry names are the contract the checks
use, every Kusto query (the rules' and the page's) parses and reads only those names, every rule is
documented with its settings, and the guides state what the rules cost and how to set them.

The Kusto syntax check runs in .venv-infra (tests/infra/kql_syntax.py), like checkov; set
JUNCTION_INFRA_PYTHON to use another interpreter that has kusto-query-language-parser.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.infra.bicep import INFRA, ROOT, load_templates
from tests.infra.checks import (
    ALERT_FREQUENCIES,
    ALERT_PARAMS,
    TELEMETRY_METRICS,
    TELEMETRY_SPAN_ATTRIBUTES,
    alert_condition,
    alert_rules,
    assert_query_uses_the_contract,
)
from tests.support.doc_examples import blocks

OPERATIONS = ROOT / "docs" / "operations.md"
DEPLOY = ROOT / "docs" / "deploy.md"

# Log search alert rules, US dollars a month per rule by evaluation frequency (Azure Monitor list
# prices at the time of writing, as docs/deploy.md quotes them).
MONTHLY_PRICE = {"PT1M": 3.00, "PT5M": 1.50, "PT10M": 1.00, "PT15M": 0.50}


@pytest.fixture(scope="module")
def rules() -> list[dict]:
    return alert_rules(load_templates())


def _short(rule: dict) -> str:
    return rule["name"].removeprefix("alert-")


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def doc_queries() -> list[tuple[str, str]]:
    """(where, query) for every fenced block of docs/operations.md: all are Kusto queries, tagged
    ``kusto`` (tests/unit/test_readme_examples.py registers them to the test that parses them),
    each opening with a comment that names the question it answers."""
    found = []
    for block in blocks("docs/operations.md"):
        assert block.lang == "kusto", f"docs/operations.md:{block.line}: only Kusto queries here, tagged kusto"
        assert block.text.startswith("// "), f"docs/operations.md:{block.line}: open the query with // <the question>"
        found.append((f"docs/operations.md:{block.line}", block.text))
    return found


def kql_python() -> str:
    configured = os.environ.get("JUNCTION_INFRA_PYTHON")
    if configured:
        return configured
    default = ROOT / ".venv-infra" / "bin" / "python"
    if not default.is_file():
        pytest.fail("the Kusto grammar is not installed: run `make test` (it creates .venv-infra from requirements-infra.txt)")
    return str(default)


def syntax_errors(queries: list[str]) -> list[list[str]]:
    script = Path(__file__).with_name("kql_syntax.py")
    done = subprocess.run([kql_python(), str(script)], input=json.dumps(queries), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_every_query_parses_as_kusto(rules):
    queries = doc_queries() + [(rule["name"], alert_condition(rule)["query"]) for rule in rules]
    assert len(queries) >= 15
    errors = syntax_errors([query for _, query in queries])
    bad = {where: [e[:160] for e in found] for (where, _), found in zip(queries, errors, strict=True) if found}
    assert not bad, f"Kusto syntax errors: {json.dumps(bad, indent=1)}"


def test_the_kusto_check_finds_errors():
    broken = [
        "requests\n| summarize count() by bin(timestamp, 5m",
        "customMetrics\n| wher name == 'junction.runs.ended'",
        "requests | summarize calls = count() by kind = name",  # a keyword as a column name
    ]
    assert all(syntax_errors(broken)), "the Kusto check accepts broken queries"
    assert syntax_errors(["requests\n| summarize count() by bin(timestamp, 5m)"]) == [[]]


def test_doc_queries_read_only_the_telemetry_contract():
    for where, query in doc_queries():
        assert_query_uses_the_contract(query, where)


def test_the_telemetry_names_section_is_the_contract():
    """The checks' contract (tests/infra/checks.py) and the page's list are the same names."""
    section = _flat(_section(OPERATIONS.read_text(encoding="utf-8"), "Telemetry names"))
    for metric, dimensions in TELEMETRY_METRICS.items():
        found = re.search(rf"`{re.escape(metric)}` \(([^)]*)\)", section)
        assert found, f"docs/operations.md, Telemetry names: no {metric} (kind; dimensions)"
        assert set(re.findall(r"`([a-z_.]+)`", found[1])) == dimensions, f"{metric}: dimensions differ from the checks"
    listed = set(re.findall(r"`((?:junction|http)\.[a-z_.]+)`", section))
    contract = set(TELEMETRY_METRICS) | TELEMETRY_SPAN_ATTRIBUTES | {d for names in TELEMETRY_METRICS.values() for d in names}
    assert listed == contract, f"names only on the page: {sorted(listed - contract)}; only in the checks: {sorted(contract - listed)}"
    for table in ("`requests`", "`dependencies`", "`customMetrics`", "`traces`", "step <type>", "operation_Id", "traceparent"):
        assert table in section, table


def test_every_alert_is_documented_with_its_settings(rules):
    text = OPERATIONS.read_text(encoding="utf-8")
    table = _section(text, "Alerts")
    for rule in rules:
        props, condition = rule["properties"], alert_condition(rule)
        row = re.search(rf"^\| `{_short(rule)}` \|(.*)\|$", table, re.M)
        assert row, f"docs/operations.md, Alerts: no row for {_short(rule)}"
        cells = [cell.strip() for cell in row[1].split("|")]
        assert cells[1].startswith(f"{props['severity']} "), f"{_short(rule)}: severity {props['severity']}"
        every, back = (part.strip() for part in cells[2].split("/"))
        assert every == _duration(props["evaluationFrequency"]) and back == _duration(props["windowSize"]), f"{_short(rule)}: {cells[2]}"
        assert cells[3] == f"${MONTHLY_PRICE[props['evaluationFrequency']]:.2f}", f"{_short(rule)}: {cells[3]}"
        threshold = condition["threshold"]
        for name, value in ALERT_PARAMS.items():
            if threshold == value:  # a parameter: the row names it with its default
                main_param = {"queueAgeMinutes": "alertQueueAgeMinutes", "failedRunPercent": "alertFailedRunPercent"}[name]
                assert f"`{main_param}` (10)" in cells[0], f"{_short(rule)}: name {main_param} and its default"
                break
        else:
            assert threshold == 0 or f"{threshold} %" in cells[0], f"{_short(rule)}: threshold {threshold}"
        assert f"\n### {_short(rule)}: " in text, f"docs/operations.md: no section saying what to do for {_short(rule)}"


def _duration(iso: str) -> str:
    minutes = ALERT_FREQUENCIES.get(iso) or {"PT1H": 60}.get(iso)
    assert minutes, iso
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def test_the_guides_state_what_the_alerts_cost(rules):
    """Billed per rule by evaluation frequency: the total both guides quote is the rules' total."""
    for rule in rules:
        assert rule["properties"]["evaluationFrequency"] in MONTHLY_PRICE, f"{rule['name']}: no known price"
    total = sum(MONTHLY_PRICE[rule["properties"]["evaluationFrequency"]] for rule in rules)
    deploy = _flat(_section(DEPLOY.read_text(encoding="utf-8"), "What it costs at rest"))
    assert f"**${total:.2f} a month**" in deploy, f"docs/deploy.md must quote ${total:.2f} a month for the alert rules"
    for frequency, price in MONTHLY_PRICE.items():
        assert f"${price:.2f}" in deploy, f"docs/deploy.md: the price of a rule every {frequency}"
    assert f"${total:.2f} a month" in _flat(OPERATIONS.read_text(encoding="utf-8"))


def test_every_main_parameter_is_in_the_deploy_guide_with_its_azd_variable():
    declared = re.findall(r"^param (\w+)", (INFRA / "main.bicep").read_text(encoding="utf-8"), re.M)
    azd = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    table = _section(DEPLOY.read_text(encoding="utf-8"), "Parameters")
    for name in declared:
        variable = re.match(r"\$\{(\w+)", azd[name]["value"])[1]  # type: ignore[index]
        assert re.search(rf"^\| `{name}` \| `{variable}`", table, re.M), f"docs/deploy.md, Parameters: no row `{name}` | `{variable}`"


def test_the_app_exports_the_contracts_names():
    """The names core/kernel/telemetry.py writes are the contract's (what the alert rules and the
    queries read): a metric or attribute renamed in the app fails here, not in a silent alert."""
    from core.kernel import telemetry

    exported = {value for name, value in vars(telemetry).items() if name.isupper() and isinstance(value, str) and value.startswith("junction.") and value.count(".") >= 2}
    metrics = {value for value in exported if value not in telemetry.ATTRIBUTES}
    assert metrics == set(TELEMETRY_METRICS)
    assert telemetry.SPAN_ATTRIBUTES == TELEMETRY_SPAN_ATTRIBUTES
    dimensions = {d for names in TELEMETRY_METRICS.values() for d in names}
    assert dimensions <= telemetry.ATTRIBUTES
