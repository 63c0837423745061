"""Telemetry is imported and configured only when APPLICATIONINSIGHTS_CONNECTION_STRING is set, and
costs nothing otherwise; the run message carries a valid W3C traceparent or none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.kernel import telemetry
from core.runs.messages import RunMessage, parse_message, traceparent_of

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import function_app
from core.kernel import telemetry
report = {"enabled": telemetry.enabled(),
          "loaded": sorted({m.split(".")[0] + ("." + m.split(".")[1] if m.startswith("azure.") else "")
                            for m in sys.modules if m.startswith(("opentelemetry", "azure.monitor"))})}
if telemetry.enabled():
    from azure.core.settings import settings
    from opentelemetry import trace
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.instrumentation.urllib import URLLibInstrumentor
    report["provider"] = type(trace.get_tracer_provider()).__module__
    report["azure_sdk_tracing"] = settings.tracing_implementation() is not None
    report["requests_instrumented"] = RequestsInstrumentor().is_instrumented_by_opentelemetry
    report["urllib_instrumented"] = URLLibInstrumentor().is_instrumented_by_opentelemetry
print(json.dumps(report))
"""


def _probe(extra: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLICATIONINSIGHTS_")}
    env.update({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true", **extra})
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_a_connection_string_nothing_of_opentelemetry_is_imported() -> None:
    report = _probe({})
    assert report == {"enabled": False, "loaded": []}


def test_with_a_connection_string_the_distro_exports_and_azure_sdk_calls_are_traced() -> None:
    connection = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"
    report = _probe({"APPLICATIONINSIGHTS_CONNECTION_STRING": connection})
    assert report["enabled"] and "azure.monitor" in report["loaded"]
    assert report["provider"].startswith("opentelemetry.sdk.trace")
    assert report["azure_sdk_tracing"], "storage calls are child spans (azure-core tracing)"
    # Whole outbound URLs (query strings included) stay out: an http step has Junction's own span.
    assert not report["requests_instrumented"] and not report["urllib_instrumented"]


def test_the_off_path_is_a_shared_no_op() -> None:
    assert not telemetry.enabled()
    with telemetry.span("step http", step_id="x") as first, telemetry.span("other") as second:
        first.set(status_code=200)
        first.fail("HTTP 500")
    assert first is second
    assert telemetry.traceparent() is None
    telemetry.count(telemetry.RUNS_STARTED, scenario_id="s")  # nothing to count with, nothing raised
    telemetry.annotate(run_id="r")


def test_client_spans_name_a_url_without_query_or_credentials() -> None:
    attributes = telemetry.url_attributes("https://user:pw@erp.example.com:8443/orders/7?token=abc#frag")
    assert attributes == {telemetry.URL: "https://erp.example.com:8443/orders/7", telemetry.SERVER_ADDRESS: "erp.example.com", telemetry.SERVER_PORT: 8443}


VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (VALID, VALID),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),  # an all-zero trace id is invalid
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", None),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", None),  # upper case is not W3C
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),
        (VALID + "\n", None),
        (42, None),
        (None, None),
    ],
)
def test_the_run_message_keeps_only_a_valid_traceparent(value: object, kept: str | None) -> None:
    text = json.dumps({"v": 1, "scenarioId": "s", "runId": "r", "hasBody": False, "trigger": {}, "input": None, "traceparent": value})
    message = parse_message(text)
    assert message is not None and message.traceparent == kept
    assert traceparent_of(text) == kept
    assert ("traceparent" in message.to_json()) == (kept is not None)


def test_a_message_without_telemetry_has_no_traceparent() -> None:
    assert "traceparent" not in RunMessage("s", "r", None, False, {}).to_json()
    assert traceparent_of("not json") is None and traceparent_of("[1]") is None
