"""The examples of the README and docs/ are valid and do what their text says.

Every fenced ``json``, ``sh`` and ``kusto`` block of README.md and docs/*.md must be run by a test:
``RUN_BY`` names it, and ``test_every_example_is_run_by_a_test`` fails for an example nobody runs
(or a rule that no longer matches an example). JSON examples are checked here: scenarios and steps
are validated as a save would validate them and, where the text claims a behaviour, run through
the engine. Shell examples run in ``tests/e2e/test_doc_examples.py`` against the app on devhost;
Kusto queries are parsed with the Kusto grammar and held to the telemetry contract in
``tests/infra/test_operations.py``.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from core.apiops.bindings import normalise_binding
from core.kernel.errors import BadRequest
from core.kernel.jsonschema import validate
from core.kernel.settings import Settings, StorageSettings
from core.process.engine import RunContext, run_process
from core.process.errors import ProcessFailed
from core.process.validation import validate_process
from core.runs.messages import message_trigger, parse_message
from core.runs.scheduler import parse_due
from core.scenarios import schemas
from tests.support.doc_examples import ROOT, Block, block, blocks
from tests.support.memory_cache import DictCache

README = (ROOT / "README.md").read_text(encoding="utf-8")
INLINE_STEPS = [json.loads(text) for text in re.findall(r"`(\{\"type\": \"[a-zA-Z]+\".*?\})`", README)]
ALLOWED = ("erp.example.com",)
UNIT = "tests/unit/test_readme_examples.py"
DOCS = "tests/e2e/test_doc_examples.py"
KUSTO = "tests/infra/test_operations.py"

# Which test runs each example: (document, language, first line starts with) -> test. A first
# line of None matches every block of that language in the document (the deployment guide is
# run whole, in order, so a new block there is run without a new rule).
RUN_BY: dict[tuple[str, str, str | None], str] = {
    ("README.md", "sh", "make run"): f"{DOCS}::test_quick_start_targets_exist_and_do_what_the_readme_says",
    ("README.md", "sh", "junction --aad"): f"{DOCS}::test_the_azure_ad_cli_examples_sign_in_and_call",
    ("README.md", "json", '{"type": "decision"'): f"{UNIT}::test_the_decision_example_branches_as_described",
    ("README.md", "json", '{"type": "http"'): f"{UNIT}::test_the_http_step_example_calls_with_the_order",
    ("README.md", "json", '"name": "Orders to ERP"'): f"{UNIT}::test_the_complete_example_refuses_an_order_without_an_id",
    ("README.md", "json", '"name": "Partner orders"'): "tests/e2e/test_traffic.py::test_the_readme_example_limits_as_described",
    ("README.md", "sh", "cat > pets.yaml"): f"{DOCS}::test_the_api_walk_through_answers_what_its_comments_say",
    ("README.md", "sh", "export JUNCTION_TOKEN=$(junction token create"): f"{DOCS}::test_the_cli_session_runs_from_the_first_token_to_an_api_key",
    ("docs/api-operations.md", "json", '"scenarioId"'): f"{UNIT}::test_the_binding_example_is_a_valid_binding",
    ("docs/api-operations.md", "json", '{"respond": "async"'): f"{UNIT}::test_the_async_binding_example_is_a_valid_binding",
    ("README.md", "json", '{"name": "GitHub issues"'): f"{UNIT}::test_the_signed_webhook_example_is_a_valid_scenario",
    ("README.md", "sh", "BODY="): "tests/e2e/test_signed_webhooks.py::test_the_readme_webhook_example_runs_and_its_replay_is_409",
    ("docs/architecture.md", "json", '{"v": 1, "scenarioId"'): f"{UNIT}::test_the_run_message_example_is_what_the_encoder_writes",
    ("docs/architecture.md", "json", '{"v": 1, "dueAt"'): f"{UNIT}::test_the_schedule_message_example_is_what_the_scheduler_writes",
    ("docs/api-operations.md", "json", '{"type": "api"'): f"{DOCS}::test_the_trigger_data_example_is_what_a_process_sees",
    ("docs/azure-ad.md", "sh", "# a service, client secret"): f"{DOCS}::test_the_azure_ad_cli_examples_sign_in_and_call",
    ("docs/deploy.md", "sh", None): f"{DOCS}::test_the_deployment_guide_runs_end_to_end_against_stand_ins",
    ("docs/devhost.md", "sh", "python -m devhost"): f"{DOCS}::test_the_devhost_command_lines_start_a_host",
    ("docs/operations.md", "kusto", None): f"{KUSTO}::test_every_query_parses_as_kusto",
}
TAGS = ("sh", "json", "kusto", "text", "python")
RUN = ("sh", "json", "kusto")
"""The tags of examples that a test must run (``text`` and ``python`` blocks are illustrations)."""


def _rules_for(example: Block) -> list[str]:
    return [
        test
        for (document, lang, start), test in RUN_BY.items()
        if document == example.document and lang == example.lang and (start is None or example.key.startswith(f"{document}: {start}"))
    ]


def test_every_example_is_run_by_a_test() -> None:
    examples = blocks()
    untagged = [f"{b.document}:{b.line}" for b in examples if b.lang not in TAGS]
    assert not untagged, f"tag these fenced blocks ({', '.join(TAGS)}): {untagged}"
    unrun = [f"{b.document}:{b.line} {b.key}" for b in examples if b.lang in RUN and len(_rules_for(b)) != 1]
    assert not unrun, f"every {', '.join(RUN)} example needs exactly one test in RUN_BY: {unrun}"
    for (document, lang, start), test in RUN_BY.items():
        assert any(b.document == document and b.lang == lang and (start is None or b.key.startswith(f"{document}: {start}")) for b in examples), (
            f"RUN_BY names an example that is gone: {document} {start}"
        )
        path, _, name = test.partition("::")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert callable(getattr(module, name, None)), f"{test} does not exist"


def _json(key: str) -> Any:
    return json.loads(block(key).text)


def _after_earlier_steps(step: Mapping[str, Any]) -> dict[str, Any]:
    """Single-step examples refer to steps called order and erp; define those first."""
    earlier = [{"type": "transform", "id": name, "expression": "data[0].Body.order"} for name in ("order", "erp") if step.get("id") != name]
    return {"steps": [*earlier, step]}


def _run(process: Mapping[str, Any], body: Any, http: Callable[..., Any] | None = None) -> tuple[Any, DictCache]:
    cache = DictCache()
    outcome = run_process(process, RunContext(input=body, trigger={"type": "accept"}), cache, http=http)
    return outcome, cache


def test_the_decision_example_branches_as_described() -> None:
    process = _after_earlier_steps(_json('README.md: {"type": "decision"'))
    validate_process(process, ALLOWED)
    for total, route in ((2500, "approval"), (1000, "auto"), (10, "auto")):
        outcome, _ = _run(process, {"order": {"total": total}})
        assert outcome.steps["route"] == route


def test_the_http_step_example_calls_with_the_order() -> None:
    step = _json('README.md: {"type": "http"')
    process = _after_earlier_steps(step)
    validate_process(process, ALLOWED)
    sent: list[Any] = []

    def erp(called: Mapping[str, Any], resolve: Callable[[Any], Any]) -> dict[str, Any]:
        sent.append((called["method"], called["url"], resolve(called["body"]), called["headers"]))
        return {"status": 201, "headers": {}, "body": {"ok": True}}

    outcome, _ = _run(process, {"order": {"id": 7}}, erp)
    assert sent == [("POST", "https://erp.example.com/orders", {"id": 7}, {"Authorization": {"secret": "JUNCTION_SECRET_ERP"}})]
    assert outcome.steps["erp"]["status"] == 201  # the response is the step's value


def test_the_complete_example_refuses_an_order_without_an_id() -> None:
    """README, "A complete example": an order without an id is refused, cached nowhere and not
    sent to the ERP; one with an id is cached under it and sent."""
    scenario = _json('README.md: "name": "Orders to ERP"')
    validate(scenario, schemas.SCENARIO, "scenario")
    validate_process(scenario["process"], ALLOWED)
    calls: list[Any] = []

    def erp(step: Mapping[str, Any], resolve: Callable[[Any], Any]) -> dict[str, Any]:
        calls.append(resolve(step["body"]))
        return {"status": 201, "headers": {}, "body": None}

    for order in ({"total": 5}, {"id": None}, {"id": ""}):
        with pytest.raises(ProcessFailed, match="an order needs an id"):
            _run(scenario["process"], {"order": order}, erp)
    assert calls == []
    outcome, cache = _run(scenario["process"], {"order": {"id": 42, "total": 5}}, erp)
    assert outcome.result == {"id": 42, "erp": 201}
    assert calls == [{"id": 42, "total": 5}] and cache.values == {"42": {"id": 42, "total": 5}}


def test_the_old_complete_example_is_refused_when_saved() -> None:
    """``!steps.order.id`` reads as ``(!steps).order.id``: always null, so the else branch always."""
    broken = json.loads(block('README.md: "name": "Orders to ERP"').text.replace('"!(steps.order.id)"', '"!steps.order.id"'))
    with pytest.raises(BadRequest, match=r"always null.*'!\(steps.order.id\)'"):
        validate_process(broken["process"], ALLOWED)


def test_the_binding_example_is_a_valid_binding() -> None:
    settings = Settings(storage=StorageSettings(connection_string="UseDevelopmentStorage=true"), aad_tenant_id="72f988bf-86f1-41af-91ab-2d7cd011db47", aad_audiences=("api://junction",))
    example = _json('docs/api-operations.md: "scenarioId"')
    stored = normalise_binding(example, {"scopes": []}, settings)
    assert stored["authentication"] == {"type": "oauth2", "scopes": ["pets.read"]}
    assert stored["cors"] == {"allowedOrigins": ["https://app.example"], "allowCredentials": False}


def test_the_async_binding_example_is_a_valid_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUNCTION_SECRET_PARTNER", "partner-secret")
    settings = Settings(storage=StorageSettings(connection_string="UseDevelopmentStorage=true"))
    stored = normalise_binding(_json('docs/api-operations.md: {"respond": "async"'), {"scopes": []}, settings)
    assert stored["respond"] == "async"
    assert stored["signature"] == {
        "scheme": "hmac-sha256", "secret": {"secret": "JUNCTION_SECRET_PARTNER"}, "header": "X-Partner-Signature", "toleranceSeconds": 300,
    }  # fmt: skip


def test_the_signed_webhook_example_is_a_valid_scenario() -> None:
    scenario = _json('README.md: {"name": "GitHub issues"')
    validate(scenario, schemas.SCENARIO, "scenario")
    validate_process(scenario["process"], ALLOWED)
    assert scenario["externalTriggers"]["signature"]["scheme"] == "github"


def test_the_run_message_example_is_what_the_encoder_writes() -> None:
    """docs/architecture.md, "The run message": the example reads back as a message that writes
    it again, and its trigger is what Accept's trigger summary becomes for an anonymous caller."""
    example = _json('docs/architecture.md: {"v": 1, "scenarioId"')
    message = parse_message(json.dumps(example))
    assert message is not None and message.to_json() == example
    assert message.traceparent == example["traceparent"]  # the run's spans join the sender's trace
    summary = {k: v for k, v in example["trigger"].items() if k not in ("data", "claims")}
    assert message_trigger(summary, None) == example["trigger"]
    assert summary["bodyBytes"] == len(json.dumps(example["input"]))


def test_the_schedule_message_example_is_what_the_scheduler_writes() -> None:
    """docs/architecture.md, "The schedule message": the example reads back as a due time that
    writes it again."""
    example = _json('docs/architecture.md: {"v": 1, "dueAt"')
    message = parse_due(json.dumps(example))
    assert message is not None and json.loads(message.to_text()) == example


@pytest.mark.parametrize("step", INLINE_STEPS, ids=lambda s: s["type"])
def test_inline_step_examples_validate(step: dict[str, Any]) -> None:
    validate_process(_after_earlier_steps(step), ALLOWED)


def test_the_inline_steps_do_what_the_readme_says() -> None:
    """transform, cache, intermediateReturn and return, as the README shows them, in one run."""
    by_type = {step["type"]: step for step in INLINE_STEPS if not step.get("delete")}
    process = {"steps": [by_type["transform"], by_type["cache"], by_type["intermediateReturn"], {**by_type["return"], "value": {"jmespath": "{id: steps.order.id}"}}]}
    validate_process(process)
    outcome, cache = _run(process, {"order": {"id": 5}})
    assert cache.values == {"5": {"id": 5}}
    assert outcome.answered_early and outcome.intermediate == {"accepted": True}
    assert outcome.result == {"id": 5}
    with pytest.raises(ProcessFailed, match="order refused") as refused:
        _run({"steps": [by_type["throw"]]}, None)
    assert refused.value.response == {"HttpStatusCode": 409, "Content": "refused"}
