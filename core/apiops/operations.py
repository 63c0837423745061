"""Extracting the operations of a validated document, in the one shape the gateway serves.

Swagger 2.0 and OpenAPI 3.0/3.1 differ in where they keep a base path, parameters, bodies and
scopes; every operation is stored normalised (``extract_operations`` says the shape), with its
parameter schemas inlined and its body schema made self-contained, so a bound operation never
needs its document again. Paths that would shadow Junction's own routes (``/management``,
``/ExternalData``, ``/console``, ``/health`` and ``GET /``) or the Functions host's
(``/admin``, ``/runtime``) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from core.apiops.documents import MAX_PROBLEMS, walk
from core.apiops.routes import parse_template, path_param_types
from core.kernel.errors import BadRequest
from core.web.bodies import is_json_type, media_type

MAX_OPERATIONS = 5000
MAX_REF_HOPS = 32
OPERATION_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-~]{0,127}$")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
RESERVED_FIRST_SEGMENTS = frozenset({"management", "externaldata", "console", "admin", "runtime"})
FORM_TYPE = "application/x-www-form-urlencoded"
FORM_SEPARATORS = {"form": "csv", "spaceDelimited": "ssv", "pipeDelimited": "pipes"}


def _pointer(document: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#"):
        raise BadRequest(f"only local references are supported, not {ref[:100]!r}", "InvalidDocument")
    node: Any = document
    for raw in ref[1:].split("/")[1:]:
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise BadRequest(f"the reference {ref[:100]!r} points at nothing", "InvalidDocument")
    return node


def _deref(document: Mapping[str, Any], node: Any) -> Any:
    """Follow ``$ref`` chains at the top of ``node``."""
    for _ in range(MAX_REF_HOPS):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            node = _pointer(document, node["$ref"])
        else:
            return node
    raise BadRequest("a reference chain is too long or circular", "InvalidDocument")


MAX_INLINED_VALUES = 20_000
"""What one parameter or form schema may expand to once its ``$ref``s are inlined."""

MAX_EXTRACTED_VALUES = 500_000
"""What all of a document's operations together may copy from it: inlined parameter and form
schemas, and the definitions each body schema carries. A per-schema bound alone lets a 22 KB
document with 200 parameters that refer to one large shared schema extract 39 MB (5 s of CPU);
the sum is what costs, so the sum is bounded (issue 13, point 8)."""


class _Budget:
    """Values left to copy; ``spend`` refuses the document once they run out."""

    def __init__(self, limit: int, what: str) -> None:
        self.left = limit
        self.what = what

    def spend(self, values: int = 1) -> None:
        self.left -= values
        if self.left < 0:
            raise BadRequest(self.what, "InvalidDocument")


def _document_budget() -> _Budget:
    return _Budget(
        MAX_EXTRACTED_VALUES,
        f"the document's operations expand to more than {MAX_EXTRACTED_VALUES} values once their $refs are inlined or copied",
    )


def _inline(
    document: Mapping[str, Any],
    node: Any,
    depth: int = 0,
    *,
    total: _Budget,
    budget: _Budget | None = None,
    active: tuple[str, ...] = (),
) -> Any:
    """``node`` with local references replaced by their targets (small parameter schemas).

    A reference back to a schema being expanded (recursion) becomes ``{}`` at once, and the whole
    expansion may hold at most ``MAX_INLINED_VALUES`` values: references shared by many
    properties multiply (12 properties each referring to their own schema made an 855-byte
    document take 17 s to import), so the size is bounded, not only the depth. Every value also
    counts against the document's ``total``.
    """
    budget = budget if budget is not None else _Budget(
        MAX_INLINED_VALUES, f"a parameter schema expands to more than {MAX_INLINED_VALUES} values once its $refs are inlined"
    )
    budget.spend()
    total.spend()
    if depth > 12:
        return {}
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in active or len(active) >= MAX_REF_HOPS:
            return {}  # recursive: accept anything below here, as before, without expanding it
        active = (*active, ref)
        node = _pointer(document, ref)
    if isinstance(node, dict):
        return {k: _inline(document, v, depth + 1, total=total, budget=budget, active=active) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(document, v, depth + 1, total=total, budget=budget, active=active) for v in node]
    return node


def self_contained_schema(document: Mapping[str, Any], schema: Any, total: _Budget | None = None) -> dict[str, Any]:
    """``schema`` plus every definition it references (transitively), at their original pointers.

    The body validator then resolves ``#/components/schemas/Pet`` or ``#/definitions/Pet``
    inside the schema itself, and each operation stores only the definitions it uses (each
    copied object counts against the document's ``total``: many operations sharing one large
    definition store it many times).
    """
    if not isinstance(schema, dict):
        return {}
    total = total if total is not None else _document_budget()
    root: dict[str, Any] = dict(schema)
    pending = [ref for _, item in walk(schema) if isinstance(ref := item.get("$ref"), str)]
    done: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in done or not ref.startswith("#/"):
            continue
        done.add(ref)
        target = _pointer(document, ref)
        parts = [unquote(p).replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")]
        holder = root
        for part in parts[:-1]:
            nxt = holder.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                holder[part] = nxt
            holder = nxt
        holder[parts[-1]] = target
        for _, item in walk(target):
            total.spend()
            if isinstance(ref := item.get("$ref"), str):
                pending.append(ref)
    return root


def _base_path(document: Mapping[str, Any], dialect: str) -> str:
    if dialect == "swagger2":
        base = document.get("basePath") or ""
    else:
        servers = document.get("servers") or []
        base = ""
        if servers and isinstance(servers[0], dict) and isinstance(servers[0].get("url"), str):
            url = servers[0]["url"]
            for name, variable in (servers[0].get("variables") or {}).items():
                if isinstance(variable, dict):
                    url = url.replace("{" + name + "}", str(variable.get("default", "")))
            parts = urlsplit(url)
            base = parts.path if (parts.scheme or url.startswith("//")) else url.split("?")[0]
    base = "/" + base.strip("/") if base.strip("/") else ""
    return base


def _normalise_swagger2_param(param: Mapping[str, Any]) -> dict[str, Any]:
    schema = {
        k: v
        for k, v in param.items()
        if k not in ("name", "in", "required", "description", "collectionFormat", "allowEmptyValue", "schema") and not k.startswith("x-")
    }
    out: dict[str, Any] = {"name": param["name"], "in": param["in"], "required": bool(param.get("required")), "schema": schema}
    if schema.get("type") == "array":
        out["collectionFormat"] = param.get("collectionFormat", "csv")
    return out


def _normalise_oas3_param(document: Mapping[str, Any], param: Mapping[str, Any], total: _Budget) -> dict[str, Any]:
    where = param["in"]
    schema = _inline(document, param.get("schema") or {}, total=total)
    if not isinstance(schema, dict):
        schema = {}
    out: dict[str, Any] = {"name": param["name"], "in": where, "required": bool(param.get("required")), "schema": schema}
    # Every parameter keeps its style: core.apiops.params unwraps label/matrix values and reads
    # objects (form, deepObject, simple) by it, and core.apiops.routes leaves styled paths untyped.
    style = param.get("style") or ("form" if where in ("query", "cookie") else "simple")
    explode = bool(param.get("explode", style == "form"))
    out["style"] = style
    out["explode"] = explode
    kind = schema.get("type")
    if kind == "array" or (isinstance(kind, list) and "array" in kind):
        if style == "form":
            out["collectionFormat"] = "multi" if explode else "csv"
        elif style == "spaceDelimited":
            out["collectionFormat"] = "multi" if explode else "ssv"
        elif style == "pipeDelimited":
            out["collectionFormat"] = "multi" if explode else "pipes"
        else:  # simple; label and matrix are unwrapped first by core.apiops.params
            out["collectionFormat"] = "csv"
    return out


def _scopes(document: Mapping[str, Any], operation: Mapping[str, Any], dialect: str) -> list[str]:
    requirements = operation.get("security", document.get("security")) or []
    if dialect == "swagger2":
        schemes = document.get("securityDefinitions") or {}
    else:
        schemes = (document.get("components") or {}).get("securitySchemes") or {}
    scopes: list[str] = []
    for requirement in requirements:
        if not isinstance(requirement, dict):
            continue
        for name, listed in requirement.items():
            scheme = _deref(document, schemes.get(name) or {})
            if isinstance(scheme, dict) and scheme.get("type") in ("oauth2", "openIdConnect"):
                scopes.extend(s for s in listed or () if isinstance(s, str) and s not in scopes)
    return scopes


def _request_body(
    document: Mapping[str, Any], operation: Mapping[str, Any], params: Sequence[Mapping[str, Any]], dialect: str, total: _Budget
) -> dict[str, Any] | None:
    if dialect == "swagger2":
        body = next((p for p in params if p.get("in") == "body"), None)
        consumes = operation.get("consumes", document.get("consumes")) or []
        fields = [
            {**_normalise_swagger2_param(p), "in": "form"} for p in params if p.get("in") == "formData" and p.get("type") != "file"
        ]
        if body is None:
            if not consumes and not fields:
                return None
            return {"required": False, "contentTypes": list(consumes), "jsonSchema": None, "formFields": fields}
        return {
            "required": bool(body.get("required")),
            "contentTypes": list(consumes),
            "jsonSchema": self_contained_schema(document, body.get("schema") or {}, total),
            "formFields": [],
        }
    raw = operation.get("requestBody")
    if raw is None:
        return None
    request_body = _deref(document, raw)
    content = request_body.get("content") or {}
    json_type = next((t for t in content if is_json_type(media_type(t)[0])), None)
    schema = (_deref(document, content[json_type]) or {}).get("schema") if json_type else None
    return {
        "required": bool(request_body.get("required")),
        "contentTypes": list(content),
        "jsonSchema": self_contained_schema(document, schema, total) if isinstance(schema, dict) else None,
        "formFields": _oas3_form_fields(document, content, total),
    }


def _oas3_form_fields(document: Mapping[str, Any], content: Mapping[str, Any], total: _Budget) -> list[dict[str, Any]]:
    """The properties of an ``application/x-www-form-urlencoded`` body, as parameters.

    A form carries only text, so its fields are cast like query parameters (arrays by the
    property's ``encoding`` style, ``form`` + explode by default). Object-typed properties have
    no agreed form encoding and are left as text.
    """
    form_type = next((t for t in content if media_type(t)[0] == FORM_TYPE), None)
    media = _deref(document, content[form_type]) if form_type else None
    schema = _inline(document, media.get("schema"), total=total) if isinstance(media, dict) else None
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return []
    encoding = media.get("encoding") if isinstance(media.get("encoding"), dict) else {}
    required = set(schema.get("required") or ())
    fields: list[dict[str, Any]] = []
    for name, prop in schema["properties"].items():
        kind = prop.get("type") if isinstance(prop, dict) else "object"
        if kind == "object" or (isinstance(kind, list) and "object" in kind):
            continue
        field: dict[str, Any] = {"name": name, "in": "form", "required": name in required, "schema": prop}
        if prop.get("type") == "array":
            rule = encoding.get(name) if isinstance(encoding.get(name), dict) else {}
            style = rule.get("style", "form")
            explode = rule.get("explode", style == "form")
            field["collectionFormat"] = "multi" if explode else FORM_SEPARATORS.get(style, "csv")
        fields.append(field)
    return fields


def extract_operations(document: Mapping[str, Any], dialect: str) -> list[dict[str, Any]]:
    """Every operation of a validated document, in the stored shape the gateway serves.

    ``{"operationId" (or None), "method", "path" (base path + path), "documentPath",
    "summary", "parameters": [normalised], "requestBody": {"required", "contentTypes",
    "jsonSchema", "formFields": [normalised, "in": "form"]} | None, "scopes": [...], "dialect"}``.
    """
    base = _base_path(document, dialect)
    total = _document_budget()
    operations: list[dict[str, Any]] = []
    problems: list[str] = []
    for doc_path, raw_item in (document.get("paths") or {}).items():
        if not isinstance(doc_path, str) or not doc_path.startswith("/"):
            continue  # x- extensions
        item = _deref(document, raw_item)
        if not isinstance(item, dict):
            continue
        shared = [_deref(document, p) for p in item.get("parameters") or ()]
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            own = [_deref(document, p) for p in operation.get("parameters") or ()]
            merged: dict[tuple[str, str], Mapping[str, Any]] = {}
            for param in [*shared, *own]:
                if isinstance(param, dict) and "name" in param and "in" in param:
                    merged[(param["in"], param["name"])] = param
            raw_params = list(merged.values())
            params = [
                _normalise_swagger2_param(p) if dialect == "swagger2" else _normalise_oas3_param(document, p, total)
                for p in raw_params
                if p.get("in") in ("path", "query", "header", "cookie")
            ]
            full_path = (base + doc_path) if doc_path != "/" or not base else base
            operation_id = operation.get("operationId")
            record = {
                "operationId": operation_id if isinstance(operation_id, str) and OPERATION_ID.match(operation_id) else None,
                "method": method.upper(),
                "path": full_path,
                "documentPath": doc_path,
                "summary": str(operation.get("summary") or "")[:500],
                "parameters": params,
                "requestBody": _request_body(document, operation, raw_params, dialect, total),
                "scopes": _scopes(document, operation, dialect),
                "dialect": dialect,
            }
            if isinstance(operation_id, str) and record["operationId"] is None:
                problems.append(f"{method.upper()} {doc_path}: operationId {operation_id[:100]!r} may only use letters, digits, '_', '.', '-', '~' (at most 128)")
            try:
                parse_template(full_path, path_param_types(record))
            except ValueError as exc:
                problems.append(f"{method.upper()} {doc_path}: {exc}")
            first = full_path.strip("/").split("/", 1)[0].lower()
            if first in RESERVED_FIRST_SEGMENTS:
                problems.append(f"{method.upper()} {full_path}: paths under /{first} are reserved by Junction and the Functions host")
            elif not first and method.lower() == "get":
                problems.append(f"GET {full_path}: GET / redirects to the console (docs/console.md)")
            elif full_path.strip("/").lower() == "health":
                problems.append(f"{method.upper()} {full_path}: /health is Junction's health check (docs/operations.md)")
            operations.append(record)
            if len(problems) >= MAX_PROBLEMS:
                break
    if len(operations) > MAX_OPERATIONS:
        problems.append(f"the document has {len(operations)} operations; at most {MAX_OPERATIONS} are supported")
    if problems:
        raise BadRequest("the document cannot be served: " + "; ".join(problems[:MAX_PROBLEMS]), "InvalidDocument")
    return operations
