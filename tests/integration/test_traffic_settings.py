"""IP allow-lists and rate limits are validated when a scenario or binding is saved (400 naming
the field, nothing written) and stored in canonical form, on a real Azurite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.apiops import bindings as apis
from core.kernel.errors import BadRequest
from core.kernel.settings import Settings
from core.scenarios import repository as scenarios
from core.store.storage import Storage

DOCS = Path(__file__).resolve().parents[1] / "support" / "openapi"
PROCESS = {"steps": [{"type": "return", "value": "ok"}]}


def _scenario(triggers: dict[str, Any]) -> dict[str, Any]:
    return {"name": "traffic", "externalTriggers": {"enabled": True, **triggers}, "process": PROCESS}


@pytest.mark.parametrize(
    ("triggers", "field"),
    [
        ({"ipAllowList": []}, "scenario.externalTriggers.ipAllowList"),
        ({"ipAllowList": "203.0.113.0/24"}, "scenario.externalTriggers.ipAllowList"),
        ({"ipAllowList": ["203.0.113.7/24"]}, "scenario.externalTriggers.ipAllowList[0]"),
        ({"ipAllowList": ["10.0.0.0/8", "nope"]}, "scenario.externalTriggers.ipAllowList[1]"),
        ({"rateLimit": {}}, "scenario.externalTriggers.rateLimit"),
        ({"rateLimit": {"requestsPerMinute": 0}}, "scenario.externalTriggers.rateLimit.requestsPerMinute"),
        ({"rateLimit": {"requestsPerMinute": 1.5}}, "scenario.externalTriggers.rateLimit.requestsPerMinute"),
        ({"rateLimit": {"requestsPerMinute": 10, "burst": 0}}, "scenario.externalTriggers.rateLimit.burst"),
        ({"rateLimit": {"requestsPerMinute": 100001}}, "scenario.externalTriggers.rateLimit.requestsPerMinute"),
        ({"rateLimit": {"requestsPerMinute": 10, "window": 60}}, "scenario.externalTriggers.rateLimit"),
        ({"rateLimit": {"requestsPerMinute": 10, "perCredential": "yes"}}, "scenario.externalTriggers.rateLimit.perCredential"),
    ],
)
def test_bad_scenario_settings_are_400_naming_the_field(storage: Storage, triggers: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        scenarios.create_scenario(storage, _scenario(triggers))
    assert caught.value.message.startswith(field + ":"), caught.value.message
    assert scenarios.scenario_ids(storage) == []


def test_scenario_settings_are_stored_canonical_and_round_trip(storage: Storage) -> None:
    created = scenarios.create_scenario(
        storage,
        _scenario({"ipAllowList": ["203.0.113.7", "2001:DB8::/32"], "rateLimit": {"requestsPerMinute": 60}}),
    )
    triggers = scenarios.get_scenario(storage, created.id).document["externalTriggers"]
    assert triggers["ipAllowList"] == ["203.0.113.7/32", "2001:db8::/32"]
    assert triggers["rateLimit"] == {"requestsPerMinute": 60, "burst": 60, "perCredential": False}
    again = scenarios.replace_scenario(storage, created.id, created.to_json(), None)
    assert again.document["externalTriggers"] == triggers
    cleared = scenarios.replace_scenario(storage, created.id, _scenario({"ipAllowList": None, "rateLimit": None}), None)
    assert "ipAllowList" not in cleared.document["externalTriggers"] and "rateLimit" not in cleared.document["externalTriggers"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"ipAllowList": []}, "binding.ipAllowList"),
        ({"ipAllowList": ["2001:db8::1/32"]}, "binding.ipAllowList[0]"),
        ({"rateLimit": {"burst": 5}}, "binding.rateLimit"),
        ({"rateLimit": {"requestsPerMinute": -1}}, "binding.rateLimit.requestsPerMinute"),
    ],
)
def test_bad_binding_settings_are_400_naming_the_field(storage: Storage, settings: Settings, extra: dict[str, Any], field: str) -> None:
    sid = scenarios.create_scenario(storage, {"name": "pets", "process": PROCESS}).id
    apis.import_api(storage, "petstore", (DOCS / "petstore-openapi30.yaml").read_bytes(), "application/yaml")
    with pytest.raises(BadRequest) as caught:
        apis.bind_operation(storage, settings, "petstore", "getPetById", {"scenarioId": sid, **extra})
    assert caught.value.message.startswith(field + ":"), caught.value.message
    assert apis.get_binding(storage, "petstore", "getPetById")["binding"] is None


def test_binding_settings_are_stored_canonical(storage: Storage, settings: Settings) -> None:
    sid = scenarios.create_scenario(storage, {"name": "pets", "process": PROCESS}).id
    apis.import_api(storage, "petstore", (DOCS / "petstore-openapi30.yaml").read_bytes(), "application/yaml")
    body = {"scenarioId": sid, "ipAllowList": ["::ffff:10.0.0.0/104"], "rateLimit": {"requestsPerMinute": 5, "burst": 2, "perCredential": True}}
    apis.bind_operation(storage, settings, "petstore", "getPetById", body)
    stored = apis.get_binding(storage, "petstore", "getPetById")["binding"]
    assert stored["ipAllowList"] == ["10.0.0.0/8"]
    assert stored["rateLimit"] == {"requestsPerMinute": 5, "burst": 2, "perCredential": True}
