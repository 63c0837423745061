"""Read the Bicep templates in infra/ with pycep-parser, for the offline infrastructure tests.

pycep turns a template into JSON: literals stay literals (``false``, ``'TLS1_2'``), references to
parameters and variables become their names, and functions and operators become nested objects.
The helpers here find resources by type and read their properties, so a test can assert that a
security property is there *as a literal* in the template that deploys it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

Templates = Mapping[str, dict[str, Any]]  # path relative to infra/ -> parsed template


@functools.lru_cache(maxsize=64)
def parse_text(text: str) -> dict[str, Any]:
    # A deep copy per caller would be safer, but nothing here mutates what it reads.
    return BicepParser().parse(text=text)


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def load_templates() -> dict[str, dict[str, Any]]:
    return {path.relative_to(INFRA).as_posix(): parse_text(path.read_text(encoding="utf-8")) for path in bicep_files()}


def unquote(key: str) -> str:
    """Object keys that Bicep needs quoted ('azd-env-name') keep their quotes in pycep's JSON."""
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def get(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]..., matching keys case-insensitively (ARM property names are), or None."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        wanted = key.lower()
        obj = next((value for name, value in obj.items() if unquote(name).lower() == wanted), None)
    return obj


def body(config: Any) -> Any:
    """A resource's or module's own object, under a ``for`` loop or an ``if`` condition if any."""
    if isinstance(config, Mapping) and ("loop_type" in config or "condition" in config):
        return config.get("config", config)
    return config


def module_params(template: Mapping[str, Any], symbol: str) -> dict[str, Any]:
    return dict(body(template["modules"][symbol]["config"]).get("params") or {})


@dataclass(frozen=True)
class Resource:
    file: str
    symbol: str
    type: str
    api_version: str
    existing: bool
    body: dict[str, Any]  # the resource's object (for a loop, the object of one iteration)
    loop: dict[str, Any] | None

    def prop(self, *path: str) -> Any:
        return get(self.body, *path)


def resources(templates: Templates, resource_type: str | None = None, *, existing: bool = False) -> Iterator[Resource]:
    for file, template in templates.items():
        for symbol, resource in (template.get("resources") or {}).items():
            config = resource["config"]
            loop = config.get("loop_type") if isinstance(config, Mapping) else None
            body = config.get("config", config) if loop is not None or "condition" in config else config
            if resource["existing"] != existing:
                continue
            if resource_type is not None and resource["type"].lower() != resource_type.lower():
                continue
            yield Resource(file, symbol, resource["type"], resource["api_version"], resource["existing"], body, loop)


def one(templates: Templates, resource_type: str) -> Resource:
    found = list(resources(templates, resource_type))
    assert len(found) == 1, f"expected exactly one {resource_type} in infra/, found {len(found)}"
    return found[0]


def app_settings(templates: Templates) -> dict[str, Any]:
    """The function app's siteConfig.appSettings as {name: value expression}.

    The list is literal, or ``concat(literal list, variable)`` where the variable is a ``for``
    loop; a loop contributes one entry whose name is its template (``JUNCTION_SECRET_${...}``).
    """
    site = one(templates, "Microsoft.Web/sites")
    entries = site.prop("properties", "siteConfig", "appSettings")
    parts = list(get(entries, "function", "parameters").values()) if get(entries, "function", "type") == "concat" else [entries]
    settings: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, str):  # a variable of the same file: a loop producing settings
            variable = get(templates[site.file].get("variables") or {}, part, "value")
            assert get(variable, "loop_type") is not None, f"appSettings concatenates {part}, which is not a for loop"
            part = [get(variable, "config")]
        assert isinstance(part, list), "the function app declares its app settings in siteConfig.appSettings"
        settings.update({entry["name"]: entry.get("value") for entry in part})
    return settings


def dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
