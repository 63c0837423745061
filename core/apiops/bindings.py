"""Imported OpenAPI documents and the bindings of their operations to scenarios (DESIGN 7).

``PUT /management/apis/{apiName}`` imports a Swagger 2.0, OpenAPI 3.0 or 3.1 document (JSON or
YAML); ``PUT /management/apis/{apiName}/operations/{operationId}`` binds one operation to a
scenario. Only bound operations are served (``core.apiops.gateway``).

Why the document is treated as hostile input:

- YAML is loaded with a safe loader that keeps dates as strings, refuses duplicate keys and
  non-JSON values; anchors/aliases are allowed but the *expanded* document is counted node by
  node and refused past ``MAX_NODES`` (a "billion laughs" file is a few hundred bytes);
- ``$ref`` must be local (``#/...``) and ``$id`` is refused: openapi-spec-validator follows
  references with network and file handlers, and an import must never fetch anything;
- problems found by openapi-spec-validator come back as one 400 listing them (at most 50);
- paths that would shadow Junction's own routes (``/management``, ``/ExternalData``,
  ``/console`` and ``GET /``) or the Functions host's (``/admin``, ``/runtime``) are refused.

Route conflicts (``core.apiops.routes.find_conflict``) are refused with 409 naming both operations:
at import among all of the document's operations (so ``/pet/{name}`` (string) beside
``/pet/getStatus`` is refused however they are bound), and at bind/re-import against every
operation bound in any other API.

Storage (DESIGN 9: keys never contain user text):

- table ``apis``: partition ``api``, row key SHA-256 of the API name; the document and the
  extracted operations are stored with ``Storage.pack`` (large ones go to Blob Storage);
  partition ``meta``, row ``routes``: the route version marker (``core.apiops.routes.RouteCache``);
- table ``apibindings``: partition ``binding``, row key SHA-256 of ``apiName NUL operationId``;
  each binding keeps a snapshot of its operation, so the route table is rebuilt with one query.

Writers change data first and the version marker last.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

from core.apiops.routes import BoundOperation, Segment, find_conflict, parse_template, path_param_types
from core.kernel import clock
from core.kernel.errors import BadRequest, Conflict, NotFound, PreconditionFailed, UnsupportedMediaType
from core.kernel.ids import key_hash, new_id, parse_guid
from core.kernel.jsonvalue import dumps, has_lone_surrogate, parse_json
from core.kernel.settings import Settings
from core.scenarios.schemas import GUID, validate
from core.store.storage import Storage
from core.web.bodies import check_size, is_json_type, media_type
from core.web.cors import normalise_cors

logger = logging.getLogger(__name__)

API_TABLE = "apis"
BINDING_TABLE = "apibindings"
API_PARTITION = "api"
BINDING_PARTITION = "binding"
META_PARTITION = "meta"
ROUTES_ROW = "routes"

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_NODES = 1_000_000
MAX_OPERATIONS = 5000
MAX_PROBLEMS = 50
MAX_REF_HOPS = 32
API_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
OPERATION_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-~]{0,127}$")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
RESERVED_FIRST_SEGMENTS = frozenset({"management", "externaldata", "console", "admin", "runtime"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "application/vnd.oai.openapi"})
JSON_DOC_TYPES = frozenset({"application/vnd.oai.openapi+json"})

FORM_TYPE = "application/x-www-form-urlencoded"
FORM_SEPARATORS = {"form": "csv", "spaceDelimited": "ssv", "pipeDelimited": "pipes"}
AUTH_TYPES = ("none", "basic", "certificate", "apiKey", "oauth2")
BINDING: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["scenarioId"],
    "properties": {
        "scenarioId": GUID,
        "authentication": {
            "type": "object",
            "additionalProperties": False,
            "required": ["type"],
            "properties": {
                "type": {"type": "string", "enum": list(AUTH_TYPES)},
                "trustedIssuers": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 20,
                    "items": {"type": "string", "minLength": 1, "maxLength": 65536},
                },
                "issuer": {"type": "string", "minLength": 9, "maxLength": 500},
                "anyTenantUser": {
                    "type": "boolean",
                    "description": "oauth2 with Azure AD: users of the tenant outside JUNCTION_AAD_GROUP_ID may call it too",
                },
                "audience": {"type": "string", "minLength": 1, "maxLength": 500},
                "scopes": {
                    "type": "array",
                    "maxItems": 50,
                    "uniqueItems": True,
                    "items": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!#-\\[\\]-~]+$"},
                },
            },
        },
        "allowedProtocols": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "enum": ["http", "https"]},
        },
        "cors": {
            "type": ["object", "null"],  # null: no CORS, as GET shows it (so a binding round-trips)
            "additionalProperties": False,
            "properties": {
                "allowedOrigins": {
                    "oneOf": [
                        {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 300}},
                        {"type": "string", "maxLength": 20000},
                    ]
                },
                "allowCredentials": {"type": "boolean"},
            },
        },
    },
}


# --------------------------------------------------------------------------------------------
# Names and keys
# --------------------------------------------------------------------------------------------


def parse_api_name(value: str | None) -> str:
    if value is None or not API_NAME.match(value):
        raise BadRequest("an API name is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit", "InvalidApiName")
    return value


def parse_operation_id(value: str | None) -> str:
    if value is None or not OPERATION_ID.match(value):
        raise BadRequest("an operationId is 1-128 letters, digits, '_', '.', '-' or '~'", "InvalidOperationId")
    return value


def _api_key(name: str) -> str:
    return key_hash(name)


def _binding_key(api_name: str, operation_id: str) -> str:
    return key_hash(f"{api_name}\x00{operation_id}")


# --------------------------------------------------------------------------------------------
# Reading documents
# --------------------------------------------------------------------------------------------


def _yaml_loader() -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        """Safe YAML that yields only JSON values: dates stay strings, duplicate keys refused."""

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict[str, Any]:
        loader.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, bool) or not isinstance(key, str | int | float):
                raise ValueError(f"line {key_node.start_mark.line + 1}: mapping keys must be strings")
            text = str(key)
            if text in result:
                raise ValueError(f"line {key_node.start_mark.line + 1}: duplicate key {text!r}")
            result[text] = loader.construct_object(value_node, deep=deep)
        return result

    Loader.add_constructor("tag:yaml.org,2002:map", construct_mapping)
    return Loader


def _check_values(document: Any) -> None:
    """JSON values only, finite numbers, valid Unicode, at most MAX_NODES nodes after alias expansion."""
    count = 0
    stack = [document]
    while stack:
        item = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise BadRequest(f"the document is too large (more than {MAX_NODES} values once expanded)", "InvalidDocument")
        if isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(key for key in item if not key.isascii())  # keys are strings (the loader)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if has_lone_surrogate(item):
                raise BadRequest("the document holds a lone surrogate (such as \\ud800), which is not a Unicode character", "InvalidDocument")
        elif isinstance(item, float) and not math.isfinite(item):
            raise BadRequest("the document contains NaN or infinity", "InvalidDocument")
        elif item is not None and not isinstance(item, str | int | float | bool):
            raise BadRequest(f"the document contains a {type(item).__name__}, which is not a JSON value", "InvalidDocument")


def read_document(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The document in ``body``, JSON or YAML by content type (either one when none is sent)."""
    check_size(body, MAX_DOCUMENT_BYTES)
    mtype, _ = media_type(content_type)
    if is_json_type(mtype) or mtype in JSON_DOC_TYPES:
        document = parse_json(body, what="document", code="InvalidDocument")
    elif mtype in YAML_TYPES or mtype in ("", "text/plain", "application/octet-stream"):
        document = _read_yaml(body)  # YAML 1.1 is (nearly) a superset of JSON
    else:
        raise UnsupportedMediaType("send the document as application/json or application/yaml", "UnsupportedContentType")
    if not isinstance(document, dict):
        raise BadRequest("the document must be an object", "InvalidDocument")
    _check_values(document)
    return document


def _read_yaml(body: bytes) -> Any:
    import yaml

    try:
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise BadRequest("the document is not valid UTF-8", "InvalidDocument") from None
    try:
        loader = _yaml_loader()(text)
        try:
            document = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise BadRequest(f"the document is not valid YAML: {str(exc)[:300]}", "InvalidDocument") from None
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"the document is not valid: {str(exc)[:300]}", "InvalidDocument") from None
    except RecursionError:
        raise BadRequest("the document is nested too deeply", "InvalidDocument") from None
    return document


def _walk(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    stack: list[tuple[Any, str]] = [(node, path)]
    seen: set[int] = set()
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            if id(item) in seen:
                continue
            seen.add(id(item))
            yield where, item
            stack.extend((v, f"{where}/{k}") for k, v in item.items())
        elif isinstance(item, list):
            if id(item) in seen:
                continue
            seen.add(id(item))
            stack.extend((v, f"{where}/{i}") for i, v in enumerate(item))


def check_references(document: Mapping[str, Any]) -> None:
    """Refuse anything that would make a validator fetch: non-local ``$ref``, ``$id``."""
    problems = []
    for where, item in _walk(document):
        ref = item.get("$ref")
        if ref is not None and (not isinstance(ref, str) or not ref.startswith("#")):
            problems.append(f"{where}: only local references ('#/...') are supported, not {str(ref)[:100]!r}")
        if "$id" in item and isinstance(item.get("$id"), str) and "properties" not in where.rsplit("/", 1)[-1]:
            problems.append(f"{where}: '$id' is not supported")
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise BadRequest("the document is not valid: " + "; ".join(problems), "InvalidDocument")


def check_patterns(document: Mapping[str, Any]) -> None:
    """Refuse patterns that cannot be matched in linear time (``core.kernel.regex``)."""
    from core.kernel.regex import pattern_problems

    problems = list(itertools.islice(pattern_problems(document), MAX_PROBLEMS))
    if problems:
        raise BadRequest("the document is not valid: " + "; ".join(problems), "InvalidDocument")


def dialect_of(document: Mapping[str, Any]) -> str:
    swagger = document.get("swagger")
    openapi = document.get("openapi")
    if swagger == "2.0":
        return "swagger2"
    if isinstance(openapi, str) and re.fullmatch(r"3\.0\.\d+", openapi):
        return "oas30"
    if isinstance(openapi, str) and re.fullmatch(r"3\.1\.\d+", openapi):
        return "oas31"
    raise BadRequest("the document must be Swagger 2.0 ('swagger: \"2.0\"') or OpenAPI 3.0/3.1 ('openapi: 3.x.y')", "InvalidDocument")


def validate_document(document: Mapping[str, Any]) -> str:
    """The document's dialect; BadRequest listing what openapi-spec-validator found wrong."""
    from openapi_spec_validator import OpenAPIV2SpecValidator, OpenAPIV30SpecValidator, OpenAPIV31SpecValidator

    dialect = dialect_of(document)
    check_references(document)
    check_patterns(document)
    cls = {"swagger2": OpenAPIV2SpecValidator, "oas30": OpenAPIV30SpecValidator, "oas31": OpenAPIV31SpecValidator}[dialect]
    problems: list[str] = []
    try:
        for error in cls(document).iter_errors():
            where = "/".join(str(p) for p in getattr(error, "absolute_path", ()) or ())
            problems.append(f"{where or '(document)'}: {str(getattr(error, 'message', error))[:300]}")
            if len(problems) >= MAX_PROBLEMS:
                break
    except RecursionError:
        problems.append("(document): nested too deeply to validate")
    except Exception as exc:  # noqa: BLE001 - the validator's own failures on odd input are 400s
        problems.append(f"(document): cannot be validated: {type(exc).__name__}: {str(exc)[:200]}")
    if problems:
        raise BadRequest("the OpenAPI document is not valid: " + "; ".join(problems), "InvalidDocument")
    return dialect


# --------------------------------------------------------------------------------------------
# Extracting operations
# --------------------------------------------------------------------------------------------


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


class _Budget:
    def __init__(self, limit: int) -> None:
        self.left = limit


def _inline(document: Mapping[str, Any], node: Any, depth: int = 0, *, budget: _Budget | None = None, active: tuple[str, ...] = ()) -> Any:
    """``node`` with local references replaced by their targets (small parameter schemas).

    A reference back to a schema being expanded (recursion) becomes ``{}`` at once, and the whole
    expansion may hold at most ``MAX_INLINED_VALUES`` values: references shared by many
    properties multiply (12 properties each referring to their own schema made an 855-byte
    document take 17 s to import), so the size is bounded, not only the depth.
    """
    budget = budget if budget is not None else _Budget(MAX_INLINED_VALUES)
    budget.left -= 1
    if budget.left < 0:
        raise BadRequest(
            f"a parameter schema expands to more than {MAX_INLINED_VALUES} values once its $refs are inlined", "InvalidDocument"
        )
    if depth > 12:
        return {}
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in active or len(active) >= MAX_REF_HOPS:
            return {}  # recursive: accept anything below here, as before, without expanding it
        active = (*active, ref)
        node = _pointer(document, ref)
    if isinstance(node, dict):
        return {k: _inline(document, v, depth + 1, budget=budget, active=active) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(document, v, depth + 1, budget=budget, active=active) for v in node]
    return node


def self_contained_schema(document: Mapping[str, Any], schema: Any) -> dict[str, Any]:
    """``schema`` plus every definition it references (transitively), at their original pointers.

    The body validator then resolves ``#/components/schemas/Pet`` or ``#/definitions/Pet``
    inside the schema itself, and each operation stores only the definitions it uses.
    """
    if not isinstance(schema, dict):
        return {}
    root: dict[str, Any] = dict(schema)
    pending = [ref for _, item in _walk(schema) if isinstance(ref := item.get("$ref"), str)]
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
        pending.extend(r for _, item in _walk(target) if isinstance(r := item.get("$ref"), str))
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


def _normalise_oas3_param(document: Mapping[str, Any], param: Mapping[str, Any]) -> dict[str, Any]:
    where = param["in"]
    schema = _inline(document, param.get("schema") or {})
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


def _request_body(document: Mapping[str, Any], operation: Mapping[str, Any], params: Sequence[Mapping[str, Any]], dialect: str) -> dict[str, Any] | None:
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
            "jsonSchema": self_contained_schema(document, body.get("schema") or {}),
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
        "jsonSchema": self_contained_schema(document, schema) if isinstance(schema, dict) else None,
        "formFields": _oas3_form_fields(document, content),
    }


def _oas3_form_fields(document: Mapping[str, Any], content: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The properties of an ``application/x-www-form-urlencoded`` body, as parameters.

    A form carries only text, so its fields are cast like query parameters (arrays by the
    property's ``encoding`` style, ``form`` + explode by default). Object-typed properties have
    no agreed form encoding and are left as text.
    """
    form_type = next((t for t in content if media_type(t)[0] == FORM_TYPE), None)
    media = _deref(document, content[form_type]) if form_type else None
    schema = _inline(document, media.get("schema")) if isinstance(media, dict) else None
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
                _normalise_swagger2_param(p) if dialect == "swagger2" else _normalise_oas3_param(document, p)
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
                "requestBody": _request_body(document, operation, raw_params, dialect),
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
            operations.append(record)
            if len(problems) >= MAX_PROBLEMS:
                break
    if len(operations) > MAX_OPERATIONS:
        problems.append(f"the document has {len(operations)} operations; at most {MAX_OPERATIONS} are supported")
    if problems:
        raise BadRequest("the document cannot be served: " + "; ".join(problems[:MAX_PROBLEMS]), "InvalidDocument")
    return operations


def _label(api_name: str, operation: Mapping[str, Any]) -> str:
    name = operation.get("operationId") or "(no operationId)"
    return f"{api_name}/{name} ({operation['method']} {operation['path']})"


def _routes(api_name: str, operations: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, tuple[Segment, ...]]]:
    return [(_label(api_name, op), op["method"], parse_template(op["path"], path_param_types(op))) for op in operations]


def _refuse_conflict(found: tuple[str, str] | None) -> None:
    if found is not None:
        raise Conflict(f"{found[0]} and {found[1]} could match the same request", "RouteConflict")


# --------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------


def read_route_version(storage: Storage) -> str | None:
    """The route version marker: one point read of one small property."""
    try:
        entity = storage.table(API_TABLE).get_entity(META_PARTITION, ROUTES_ROW, select=["Version"])
    except ResourceNotFoundError:
        return None
    return entity.get("Version")


def _bump_version(storage: Storage) -> None:
    storage.table(API_TABLE).upsert_entity({"PartitionKey": META_PARTITION, "RowKey": ROUTES_ROW, "Version": new_id()})


def _get_api_entity(storage: Storage, api_name: str) -> Any:
    try:
        return storage.table(API_TABLE).get_entity(API_PARTITION, _api_key(api_name))
    except ResourceNotFoundError:
        raise NotFound(f"no API named {api_name}", "ApiNotFound") from None


def _operations_of(storage: Storage, entity: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = storage.unpack("Operations", entity)
    return list(parse_json(raw, what="stored operations")) if raw else []


def _all_bindings(storage: Storage) -> list[dict[str, Any]]:
    entities = storage.table(BINDING_TABLE).query_entities("PartitionKey eq @pk", parameters={"pk": BINDING_PARTITION})
    return [dict(e) for e in entities]


def _binding_parts(storage: Storage, entity: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    operation = parse_json(storage.unpack("Operation", entity) or b"{}", what="stored operation")
    binding = parse_json(storage.unpack("Binding", entity) or b"{}", what="stored binding")
    return operation, binding


def load_bound_operations(storage: Storage) -> list[BoundOperation]:
    """Every binding as a ``BoundOperation`` (what ``RouteCache`` loads)."""
    out = []
    for entity in _all_bindings(storage):
        try:
            operation, binding = _binding_parts(storage, entity)
            out.append(BoundOperation.from_parts(entity["Api"], operation, binding))
        except (BadRequest, KeyError, ValueError) as exc:
            logger.error("skipping a damaged binding %s: %s", entity.get("RowKey"), exc)
    return out


def _write_binding(storage: Storage, api_name: str, operation: Mapping[str, Any], binding: Mapping[str, Any]) -> None:
    key = _binding_key(api_name, operation["operationId"])
    plain: dict[str, Any] = {
        "PartitionKey": BINDING_PARTITION,
        "RowKey": key,
        "Api": api_name,
        "ApiKey": _api_key(api_name),
        "OperationId": operation["operationId"],
    }
    values = {"Operation": dumps(operation).encode(), "Binding": dumps(binding).encode()}
    entity = storage.pack_entity(plain, values, lambda name: f"apibindings/{key}/{name.lower()}.json")
    storage.table(BINDING_TABLE).upsert_entity(entity, mode=_replace_mode())


def _replace_mode() -> Any:
    from azure.data.tables import UpdateMode

    return UpdateMode.REPLACE


def _delete_binding_entity(storage: Storage, entity: Mapping[str, Any]) -> None:
    try:
        storage.table(BINDING_TABLE).delete_entity(BINDING_PARTITION, entity["RowKey"])
    except ResourceNotFoundError:
        pass
    for name in ("OperationBlob", "BindingBlob"):
        if entity.get(name):
            storage.delete_blob(entity[name])


def _view(api_name: str, entity: Mapping[str, Any], operations: Sequence[Mapping[str, Any]], bindings: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "name": api_name,
        "title": entity.get("Title"),
        "version": entity.get("Version"),
        "specification": entity.get("Dialect"),
        "importedAt": entity.get("ImportedAt"),
        "operations": [
            {
                "operationId": op.get("operationId"),
                "method": op["method"],
                "path": op["path"],
                "summary": op.get("summary") or None,
                "scopes": op.get("scopes") or [],
                "binding": bindings.get(op.get("operationId") or "") if op.get("operationId") else None,
            }
            for op in operations
        ],
    }


def _bindings_of(storage: Storage, api_name: str) -> dict[str, dict[str, Any]]:
    entities = storage.table(BINDING_TABLE).query_entities(
        "PartitionKey eq @pk and ApiKey eq @api", parameters={"pk": BINDING_PARTITION, "api": _api_key(api_name)}
    )
    out: dict[str, dict[str, Any]] = {}
    for entity in entities:
        _, binding = _binding_parts(storage, entity)
        out[entity["OperationId"]] = binding
    return out


# --------------------------------------------------------------------------------------------
# Import, read, delete
# --------------------------------------------------------------------------------------------


def import_api(storage: Storage, api_name: str, body: bytes, content_type: str | None, *, if_match: str | None = None) -> tuple[dict[str, Any], str, bool]:
    """Import (or re-import) a document; ``(view, etag, created)``.

    Re-importing keeps the bindings of operationIds that still exist (with the operation's new
    method, path and parameters) and drops the others.
    """
    api_name = parse_api_name(api_name)
    document = read_document(body, content_type)
    dialect = validate_document(document)
    operations = extract_operations(document, dialect)
    _refuse_conflict(find_conflict(_routes(api_name, operations)))
    table = storage.table(API_TABLE)
    key = _api_key(api_name)
    existing: Any = None
    try:
        existing = table.get_entity(API_PARTITION, key, select=["RowKey", "DocumentBlob", "OperationsBlob"])
    except ResourceNotFoundError:
        existing = None
    if if_match is not None and if_match != "*" and (existing is None or existing.metadata.get("etag") != if_match):
        raise PreconditionFailed("the API was changed since it was read (ETag mismatch)", "EtagMismatch")
    if if_match == "*" and existing is None:
        raise PreconditionFailed("the API does not exist", "EtagMismatch")

    by_id = {op["operationId"]: op for op in operations if op.get("operationId")}
    all_bindings = _all_bindings(storage)
    mine = [b for b in all_bindings if b.get("ApiKey") == key]
    others = [b for b in all_bindings if b.get("ApiKey") != key]
    kept = [(b, by_id[b["OperationId"]]) for b in mine if b.get("OperationId") in by_id]
    dropped = [b for b in mine if b.get("OperationId") not in by_id]
    other_routes = []
    for entity in others:
        operation, _ = _binding_parts(storage, entity)
        other_routes.extend(_routes(entity["Api"], [operation]))
    _refuse_conflict(find_conflict(_routes(api_name, [op for _, op in kept]), other_routes))

    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    plain: dict[str, Any] = {
        "PartitionKey": API_PARTITION,
        "RowKey": key,
        "Name": api_name,
        "Title": str(info.get("title") or "")[:500],
        "Version": str(info.get("version") or "")[:100],
        "Dialect": dialect,
        "ImportedAt": clock.now_iso(),
    }
    values = {"Document": dumps(document).encode(), "Operations": dumps(operations).encode()}
    entity = storage.pack_entity(plain, values, lambda name: f"apis/{key}/{name.lower()}.json")
    if existing is not None and if_match not in (None, "*"):
        try:
            table.update_entity(entity, mode=_replace_mode(), etag=if_match, match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError:
            raise PreconditionFailed("the API was changed since it was read (ETag mismatch)", "EtagMismatch") from None
    else:
        table.upsert_entity(entity, mode=_replace_mode())
    for name in ("DocumentBlob", "OperationsBlob"):
        if existing is not None and existing.get(name) and not entity.get(name):
            storage.delete_blob(existing[name])
    bindings: dict[str, dict[str, Any]] = {}
    for binding_entity, operation in kept:
        _, binding = _binding_parts(storage, binding_entity)
        _write_binding(storage, api_name, operation, binding)
        bindings[operation["operationId"]] = binding
    for binding_entity in dropped:
        _delete_binding_entity(storage, binding_entity)
        logger.info("API %s: dropped the binding of %s, no longer in the document", api_name, binding_entity.get("OperationId"))
    _bump_version(storage)
    logger.info("imported API %s (%s, %d operations, %d bindings kept)", api_name, dialect, len(operations), len(kept))
    stored = table.get_entity(API_PARTITION, key, select=["RowKey"])
    return _view(api_name, entity, operations, bindings), stored.metadata["etag"], existing is None


def get_api(storage: Storage, api_name: str) -> tuple[dict[str, Any], str]:
    """The API's operations with method, full path and binding; ``(view, etag)``."""
    api_name = parse_api_name(api_name)
    entity = _get_api_entity(storage, api_name)
    return _view(api_name, entity, _operations_of(storage, entity), _bindings_of(storage, api_name)), entity.metadata["etag"]


def list_apis(storage: Storage) -> list[dict[str, Any]]:
    entities = storage.table(API_TABLE).query_entities(
        "PartitionKey eq @pk", parameters={"pk": API_PARTITION}, select=["Name", "Title", "Version", "Dialect", "ImportedAt"]
    )
    return sorted(
        ({"name": e.get("Name"), "title": e.get("Title"), "version": e.get("Version"), "specification": e.get("Dialect"), "importedAt": e.get("ImportedAt")} for e in entities),
        key=lambda a: a["name"] or "",
    )


def delete_api(storage: Storage, api_name: str, *, if_match: str | None = None) -> None:
    """Remove the API and every binding of its operations."""
    api_name = parse_api_name(api_name)
    entity = _get_api_entity(storage, api_name)
    if if_match not in (None, "*") and entity.metadata.get("etag") != if_match:
        raise PreconditionFailed("the API was changed since it was read (ETag mismatch)", "EtagMismatch")
    for binding_entity in storage.table(BINDING_TABLE).query_entities(
        "PartitionKey eq @pk and ApiKey eq @api", parameters={"pk": BINDING_PARTITION, "api": _api_key(api_name)}
    ):
        _delete_binding_entity(storage, binding_entity)
    storage.table(API_TABLE).delete_entity(API_PARTITION, _api_key(api_name))
    for name in ("DocumentBlob", "OperationsBlob"):
        if entity.get(name):
            storage.delete_blob(entity[name])
    _bump_version(storage)
    logger.info("deleted API %s", api_name)


# --------------------------------------------------------------------------------------------
# Bindings
# --------------------------------------------------------------------------------------------


def normalise_binding(body: Any, operation: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """The stored binding: validated strictly, defaults applied, PEMs and origins normalised."""
    validate(body, BINDING, "binding")
    from core.identity.certificates import parse_trusted_issuers

    auth_in = body.get("authentication") or {"type": "none"}
    kind = auth_in["type"]
    auth: dict[str, Any] = {"type": kind}
    if "trustedIssuers" in auth_in and kind != "certificate":
        raise BadRequest("binding.authentication.trustedIssuers is only for type 'certificate'", "InvalidBinding")
    if "scopes" in auth_in and kind != "oauth2":
        raise BadRequest("binding.authentication.scopes is only for type 'oauth2'", "InvalidBinding")
    if kind == "certificate":
        auth["trustedIssuers"] = parse_trusted_issuers(auth_in.get("trustedIssuers") or [])
    if ("issuer" in auth_in or "audience" in auth_in) and kind != "oauth2":
        raise BadRequest("binding.authentication.issuer and audience are only for type 'oauth2'", "InvalidBinding")
    if kind == "oauth2":
        issuer = auth_in.get("issuer")
        if issuer is not None:
            # Another OpenID Connect issuer: only one the operator listed, and with an audience of
            # its own (Junction's Azure AD audiences mean nothing to another issuer).
            if issuer not in settings.oauth_issuers:
                raise BadRequest(
                    f"binding.authentication.issuer {issuer!r} is not one of JUNCTION_OAUTH_ISSUERS", "IssuerNotAllowed"
                )
            if "audience" not in auth_in:
                raise BadRequest("binding.authentication.audience is required with an issuer", "InvalidBinding")
            auth["issuer"], auth["audience"] = issuer, auth_in["audience"]
        elif "audience" in auth_in:
            raise BadRequest("binding.authentication.audience goes with an issuer; Azure AD uses JUNCTION_AAD_AUDIENCE", "InvalidBinding")
        elif not settings.aad_enabled:
            raise BadRequest(
                "oauth2 needs Azure AD (JUNCTION_AAD_TENANT_ID and JUNCTION_AAD_AUDIENCE) or an issuer from JUNCTION_OAUTH_ISSUERS",
                "AzureAdDisabled",
            )
        auth["scopes"] = list(auth_in["scopes"]) if "scopes" in auth_in else list(operation.get("scopes") or [])
        if auth_in.get("anyTenantUser"):
            if issuer is not None:
                raise BadRequest("binding.authentication.anyTenantUser is for Azure AD tokens, not another issuer's", "InvalidBinding")
            auth["anyTenantUser"] = True
    elif "anyTenantUser" in auth_in:
        raise BadRequest("binding.authentication.anyTenantUser is only for type 'oauth2'", "InvalidBinding")
    return {
        "scenarioId": parse_guid(body["scenarioId"], "binding.scenarioId", "InvalidBinding"),
        "authentication": auth,
        "allowedProtocols": sorted(set(body.get("allowedProtocols") or ["http", "https"])),
        "cors": normalise_cors(body.get("cors")),
        "boundAt": clock.now_iso(),
    }


def _find_operation(storage: Storage, api_name: str, operation_id: str) -> dict[str, Any]:
    entity = _get_api_entity(storage, api_name)
    for operation in _operations_of(storage, entity):
        if operation.get("operationId") == operation_id:
            return operation
    raise NotFound(f"API {api_name} has no operation {operation_id}", "OperationNotFound")


def bind_operation(storage: Storage, settings: Settings, api_name: str, operation_id: str, body: Any, *, check_scenario: bool = True) -> dict[str, Any]:
    """Bind (or re-bind) an operation; the stored binding with the operation's method and path.

    409 when a bound operation of another API could match the same request.
    """
    api_name = parse_api_name(api_name)
    operation_id = parse_operation_id(operation_id)
    operation = _find_operation(storage, api_name, operation_id)
    binding = normalise_binding(body, operation, settings)
    if check_scenario:
        from core.scenarios.repository import get_scenario

        try:
            get_scenario(storage, binding["scenarioId"])
        except NotFound:
            raise BadRequest(f"binding.scenarioId: no scenario with id {binding['scenarioId']}", "ScenarioNotFound") from None
    key = _api_key(api_name)
    other_routes = []
    for entity in _all_bindings(storage):
        if entity.get("ApiKey") == key:
            continue  # the API's own operations were checked against each other at import
        other_op, _ = _binding_parts(storage, entity)
        other_routes.extend(_routes(entity["Api"], [other_op]))
    _refuse_conflict(find_conflict(_routes(api_name, [operation]), other_routes))
    _write_binding(storage, api_name, operation, binding)
    _bump_version(storage)
    logger.info("bound %s/%s (%s %s) to scenario %s with %s authentication", api_name, operation_id, operation["method"], operation["path"], binding["scenarioId"], binding["authentication"]["type"])
    return binding_view(api_name, operation, binding)


def binding_view(api_name: str, operation: Mapping[str, Any], binding: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "api": api_name,
        "operationId": operation.get("operationId"),
        "method": operation["method"],
        "path": operation["path"],
        "binding": dict(binding) if binding is not None else None,
    }


def get_binding(storage: Storage, api_name: str, operation_id: str) -> dict[str, Any]:
    api_name = parse_api_name(api_name)
    operation_id = parse_operation_id(operation_id)
    operation = _find_operation(storage, api_name, operation_id)
    try:
        entity = storage.table(BINDING_TABLE).get_entity(BINDING_PARTITION, _binding_key(api_name, operation_id))
    except ResourceNotFoundError:
        return binding_view(api_name, operation, None)
    _, binding = _binding_parts(storage, entity)
    return binding_view(api_name, operation, binding)


def unbind_operation(storage: Storage, api_name: str, operation_id: str) -> None:
    api_name = parse_api_name(api_name)
    operation_id = parse_operation_id(operation_id)
    try:
        entity = storage.table(BINDING_TABLE).get_entity(BINDING_PARTITION, _binding_key(api_name, operation_id))
    except ResourceNotFoundError:
        raise NotFound(f"{api_name}/{operation_id} is not bound", "BindingNotFound") from None
    _delete_binding_entity(storage, entity)
    _bump_version(storage)
    logger.info("unbound %s/%s", api_name, operation_id)
