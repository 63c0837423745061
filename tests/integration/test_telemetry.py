"""Traces and metrics with the OpenTelemetry SDK's in-memory exporters (the real SDK, no mock),
through the real trigger functions on Azurite: one Accept is one trace that holds the worker's
spans, the steps, the outbound call and the storage calls (azure-core tracing), with the
attributes and metrics docs/operations.md names, and nothing secret in any attribute.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core.kernel import telemetry
from core.kernel.settings import get_settings
from core.scenarios import repository as scenarios
from core.store.storage import Storage, get_storage, reset_for_tests
from devhost.azurite import Azurite
from tests.support.upstream import Upstream

SECRET = "Bearer t0p-s3cret-" + secrets.token_hex(4)
BODY_MARK = "body-" + secrets.token_hex(6)
QUERY_TOKEN = "tok-" + secrets.token_hex(6)


@pytest.fixture(scope="module")
def exporters() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    """The SDK's providers with in-memory exporters; the global tracer provider is set too,
    because azure-core's tracing (the storage calls' spans) uses the global one."""
    from azure.core.settings import settings as azure_settings
    from azure.core.tracing.ext.opentelemetry_span import OpenTelemetrySpan

    current = trace.get_tracer_provider()
    provider = current if isinstance(current, TracerProvider) else TracerProvider()
    if provider is not current:
        trace.set_tracer_provider(provider)
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry.enable(provider, MeterProvider(metric_readers=[reader]))
    azure_settings.tracing_implementation = OpenTelemetrySpan
    try:
        yield spans, reader
    finally:
        azure_settings.tracing_implementation = None
        telemetry.disable()
        spans.shutdown()


@pytest.fixture
def app_env(azurite: Azurite, upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[Storage]:
    """The app's settings from the environment, as on the host, with its own table prefix."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("JUNCTION_TABLE_PREFIX", "t" + secrets.token_hex(6))
    monkeypatch.setenv("JUNCTION_OUTBOUND_ALLOWED_HOSTS", upstream.host)
    monkeypatch.setenv("JUNCTION_SECRET_TRACE", SECRET)
    reset_for_tests()
    try:
        yield get_storage()
    finally:
        reset_for_tests()


def _function(module: Any, name: str) -> Any:
    """The Python function the host calls for the function named ``name``."""
    for value in vars(module).values():
        built = getattr(value, "_function", None)
        if built is not None and built.get_function_name() == name:
            return built.get_user_function()
    raise LookupError(name)


def _scenario(storage: Storage, upstream: Upstream) -> str:
    steps = [
        {"type": "transform", "id": "order", "expression": "data[0].Body.order"},
        {"type": "cache", "key": "last", "value": "#steps.order"},
        {"type": "http", "id": "erp", "method": "POST", "url": f"{upstream.url}/orders?token={QUERY_TOKEN}",
         "headers": {"Authorization": {"secret": "JUNCTION_SECRET_TRACE"}}, "body": "#steps.order"},
        {"type": "return", "value": "#steps.erp.status"},
    ]  # fmt: skip
    document = {"name": "traced", "externalTriggers": {"enabled": True, "allowAnonymous": True}, "process": {"steps": steps}}
    return scenarios.create_scenario(storage, document, (upstream.host,)).id


def _accept_and_run(storage: Storage, scenario_id: str, headers: dict[str, str] | None = None) -> str:
    from triggers import external, run_queue

    request = func.HttpRequest(
        "POST",
        f"http://localhost/ExternalData/Accept/{scenario_id}",
        headers={"Content-Type": "application/json", **(headers or {})},
        route_params={"scenarioId": scenario_id},
        body=json.dumps({"order": {"id": 7, "note": BODY_MARK}}).encode(),
    )
    response = _function(external, "accept")(request)
    assert response.status_code == 200, response.get_body()
    run_id = response.headers["X-Run-Id"]
    (message,) = storage.queue().receive_messages(messages_per_page=32, visibility_timeout=30)
    _function(run_queue, "executeRun")(func.QueueMessage(body=message.content.encode()))
    storage.queue().delete_message(message)
    return run_id


def _attribute_text(spans: list[ReadableSpan]) -> str:
    return json.dumps([{**dict(s.attributes or {}), "name": s.name} for s in spans], default=str)


def test_one_accept_is_one_trace_with_the_workers_spans(app_env: Storage, upstream: Upstream, exporters: Any) -> None:
    spans_out, _ = exporters
    scenario_id = _scenario(app_env, upstream)
    spans_out.clear()
    run_id = _accept_and_run(app_env, scenario_id)
    spans = list(spans_out.get_finished_spans())

    accept = next(s for s in spans if s.name == "accept")
    assert accept.kind == SpanKind.SERVER and accept.parent is None
    trace_id = accept.context.trace_id
    others = sorted({s.name for s in spans if s.context.trace_id != trace_id and s.parent is None})
    assert {name.rsplit(".", 1)[-1] for name in others} == {"receive_messages", "delete_message"}, f"only the test's own queue calls are other traces: {others}"
    spans = [s for s in spans if s.context.trace_id == trace_id]

    run = next(s for s in spans if s.name == "executeRun")
    assert run.kind == SpanKind.CONSUMER
    by_id = {s.context.span_id: s for s in spans}
    ancestor = run
    while ancestor.parent is not None and ancestor.parent.span_id in by_id:
        ancestor = by_id[ancestor.parent.span_id]
    assert ancestor is accept, "the run's span descends from the Accept's, through the queue message"
    for span in (accept, run):
        assert span.attributes[telemetry.SCENARIO_ID] == scenario_id and span.attributes[telemetry.RUN_ID] == run_id
    assert accept.attributes[telemetry.STATUS_CODE] == 200 and accept.attributes[telemetry.METHOD] == "POST"

    steps = {s.name: s for s in spans if s.name.startswith("step ")}
    assert set(steps) == {"step transform", "step cache", "step http", "step return"}
    for name, step in steps.items():
        assert step.parent.span_id == run.context.span_id and step.kind == SpanKind.INTERNAL
        assert step.attributes[telemetry.STEP_TYPE] == name.removeprefix("step ")
        assert step.attributes[telemetry.RUN_ID] == run_id and step.attributes[telemetry.SCENARIO_ID] == scenario_id
    assert steps["step http"].attributes[telemetry.STEP_ID] == "erp"

    (call,) = [s for s in spans if s.kind == SpanKind.CLIENT and s.name.startswith("POST ")]
    assert call.parent.span_id == steps["step http"].context.span_id
    assert call.attributes[telemetry.STEP_ID] == "erp" and call.attributes[telemetry.STATUS_CODE] == 200
    assert call.attributes[telemetry.URL] == f"{upstream.url}/orders"  # without its query

    storage_calls = [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name.startswith("azure.core.tracing")]
    assert storage_calls, "azure-core tracing: the storage calls are spans of the trace"
    assert any(by_id.get(s.parent.span_id) is accept for s in storage_calls if s.parent)
    assert any(by_id.get(s.parent.span_id) is run for s in storage_calls if s.parent)


def test_no_attribute_holds_a_secret_a_token_a_body_or_a_cache_value(app_env: Storage, upstream: Upstream, exporters: Any) -> None:
    spans_out, _ = exporters
    scenario_id = _scenario(app_env, upstream)
    token = "jct_" + secrets.token_hex(16)  # refused (unknown), but it must not be recorded either
    spans_out.clear()
    _accept_and_run(app_env, scenario_id, {"X-Extra": token})
    spans = list(spans_out.get_finished_spans())
    assert upstream.request_headers["/orders"][-1]["authorization"] == SECRET  # the call did carry it
    text = _attribute_text(spans)
    for value in (SECRET, "t0p-s3cret", BODY_MARK, QUERY_TOKEN, token, '"note"'):
        assert value not in text, value
    ours = [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == telemetry.TRACER_NAME]
    assert ours and all(set(s.attributes or {}) <= telemetry.ATTRIBUTES for s in ours)


def test_metrics_count_runs_and_refusals(app_env: Storage, upstream: Upstream, exporters: Any) -> None:
    _, reader = exporters
    scenario_id = _scenario(app_env, upstream)
    _accept_and_run(app_env, scenario_id)
    from triggers import external

    request = func.HttpRequest(
        "GET",
        f"http://localhost/ExternalData/GetCacheData/{scenario_id}?keyJson=%22last%22",
        headers={"Authorization": "Bearer jct_" + "0" * 40},
        route_params={"scenarioId": scenario_id},
        params={"keyJson": '"last"'},
        body=b"",
    )
    assert _function(external, "getCacheData")(request).status_code == 401
    refused = next(s for s in exporters[0].get_finished_spans() if s.name == "getCacheData")
    assert refused.attributes[telemetry.SCENARIO_ID] == scenario_id and refused.attributes[telemetry.STATUS_CODE] == 401
    points = _points(reader)
    assert points[(telemetry.RUNS_STARTED, (("junction.scenario.id", scenario_id), ("junction.trigger.type", "accept")))] >= 1
    assert points[(telemetry.RUNS_ENDED, (("junction.run.status", "succeeded"), ("junction.scenario.id", scenario_id)))] >= 1
    assert points[(telemetry.RUN_DURATION, (("junction.run.status", "succeeded"), ("junction.scenario.id", scenario_id)))] >= 1
    assert points[(telemetry.HTTP_REFUSED, (("http.response.status_code", 401), ("junction.function", "getCacheData")))] >= 1


def _points(reader: InMemoryMetricReader) -> dict[tuple[str, tuple[tuple[str, Any], ...]], float]:
    """(metric, sorted attributes) -> the counter's value or the histogram's count."""
    found: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    found[(metric.name, tuple(sorted(point.attributes.items())))] = value if value is not None else point.count
    return found


def test_the_queue_gauges_read_depth_and_age(app_env: Storage, exporters: Any) -> None:
    from core.runs.health import queue_gauges
    from core.runs.messages import RunMessage, enqueue

    _, reader = exporters
    for name, read in queue_gauges(get_storage).items():
        telemetry.gauge(name, read)
    enqueue(app_env, RunMessage("s", "r1", None, False, {}))
    enqueue(app_env, RunMessage("s", "r2", None, False, {}))
    app_env.queue(app_env.run_queue_name + "-poison").send_message("{}")
    points = _points(reader)
    assert points[(telemetry.QUEUE_DEPTH, (("junction.queue", "runs"),))] == 2
    assert points[(telemetry.QUEUE_DEPTH, (("junction.queue", "poison"),))] == 1
    assert points[(telemetry.QUEUE_OLDEST_AGE, (("junction.queue", "runs"),))] >= 0


def test_failed_key_and_graph_downloads_are_counted(exporters: Any) -> None:
    from core.identity.graph import GraphError, GraphGroupChecker
    from core.identity.jwt import SigningKeys
    from core.kernel.settings import load_settings
    from devhost.azurite import free_port

    _, reader = exporters
    nowhere = f"https://127.0.0.1:{free_port()}"
    assert SigningKeys(f"{nowhere}/tenant/v2.0/.well-known/openid-configuration", timeout=2).get("kid") is None
    settings = load_settings({
        "AzureWebJobsStorage": "UseDevelopmentStorage=true", "JUNCTION_AAD_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "JUNCTION_AAD_AUDIENCE": "api://junction", "JUNCTION_AAD_AUTHORITY_HOST": nowhere, "JUNCTION_GRAPH_ENDPOINT": nowhere,
        "JUNCTION_GRAPH_CLIENT_ID": "11111111-1111-1111-1111-111111111111", "JUNCTION_GRAPH_CLIENT_SECRET": "not-a-secret",
    })  # fmt: skip
    with pytest.raises(GraphError):
        GraphGroupChecker(settings, timeout=2).is_member("22222222-2222-2222-2222-222222222222", "33333333-3333-3333-3333-333333333333")
    points = _points(reader)
    assert points[(telemetry.IDENTITY_FAILURES, (("junction.identity.kind", "jwks"),))] >= 1
    assert points[(telemetry.IDENTITY_FAILURES, (("junction.identity.kind", "graph"),))] >= 1


def test_a_poisoned_run_is_ended_in_its_accepts_trace(app_env: Storage, upstream: Upstream, exporters: Any) -> None:
    from triggers import external, run_queue

    spans_out, reader = exporters
    scenario_id = _scenario(app_env, upstream)
    spans_out.clear()
    request = func.HttpRequest("GET", f"http://localhost/ExternalData/Accept/{scenario_id}", headers={}, route_params={"scenarioId": scenario_id}, body=b"")
    assert _function(external, "accept")(request).status_code == 200
    (message,) = app_env.queue().receive_messages(messages_per_page=32, visibility_timeout=30)
    _function(run_queue, "failPoisonedRun")(func.QueueMessage(body=message.content.encode()))
    spans = list(spans_out.get_finished_spans())
    accept = next(s for s in spans if s.name == "accept")
    poisoned = next(s for s in spans if s.name == "failPoisonedRun")
    assert poisoned.context.trace_id == accept.context.trace_id and poisoned.kind == SpanKind.CONSUMER
    assert poisoned.attributes[telemetry.SCENARIO_ID] == scenario_id
    assert _points(reader)[(telemetry.RUNS_ENDED, (("junction.run.status", "failed"), ("junction.scenario.id", scenario_id)))] == 1


def test_an_api_call_that_answers_early_finishes_in_the_same_trace(app_env: Storage, exporters: Any) -> None:
    """The caller's own traceparent is continued, the early answer's continuation travels with it."""
    from pathlib import Path

    from core.apiops import bindings as apis
    from triggers import api_operations, run_queue

    spans_out, _ = exporters
    steps = [{"type": "intermediateReturn", "value": {"accepted": True}}, {"type": "transform", "id": "later", "expression": "`1`"}]
    sid = scenarios.create_scenario(app_env, {"name": "early", "process": {"steps": steps}}).id
    document = (Path(__file__).resolve().parents[1] / "support" / "openapi" / "petstore-openapi30.yaml").read_bytes()
    apis.import_api(app_env, "petstore", document, "application/yaml")
    apis.bind_operation(app_env, get_settings(), "petstore", "getPetById", {"scenarioId": sid})
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    spans_out.clear()
    request = func.HttpRequest("GET", "http://localhost/api/pet/7", headers={"traceparent": caller}, route_params={"path": "api/pet/7"}, body=b"")
    response = _function(api_operations, "zzApiOperations")(request)
    assert response.status_code == 200, response.get_body()
    (message,) = app_env.queue().receive_messages(messages_per_page=32, visibility_timeout=30)
    _function(run_queue, "executeRun")(func.QueueMessage(body=message.content.encode()))
    app_env.queue().delete_message(message)
    ours = [s for s in spans_out.get_finished_spans() if s.instrumentation_scope and s.instrumentation_scope.name == telemetry.TRACER_NAME]
    names = [s.name for s in ours]
    assert {"zzApiOperations", "executeRun", "step intermediateReturn", "step transform"} <= set(names)
    assert {format(s.context.trace_id, "032x") for s in ours} == {"0af7651916cd43dd8448eb211c80319c"}
