"""Parameters of an API call, cast by the types the OpenAPI document declares, and body checks.

Frends casts integer, number and boolean parameters and splits arrays by their declared
separator so a process can compare ``#trigger.data.path.id > 3`` straight away. Junction does
the same, and is stricter where strictness protects the process:

- a value that does not cast is a 400 naming the parameter, never a string passed through;
- a scalar query parameter sent twice is a 400 (two components disagreeing on which copy wins
  is how parameter pollution attacks work);
- declared query/header/cookie parameters that are absent are present with their default, or
  null; a missing required one is a 400 naming it;
- after casting, the value is checked against the parameter's schema (enum, minimum, pattern,
  ...), and a JSON body against the operation's request schema; the 400 names the parameter,
  or the body's path and the schema path that failed.

Parameters reach this module already normalised by ``core.apiops.operations`` (Swagger 2 and
OpenAPI 3 alike): ``{"name", "in", "required", "schema": {...}, "collectionFormat": csv|ssv|tsv|pipes|multi}``,
plus ``style`` and ``explode`` for OpenAPI 3 documents.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from core.kernel.errors import BadRequest
from core.kernel.regex import linear_validator

logger = logging.getLogger(__name__)

SEPARATORS = {"csv": ",", "ssv": " ", "tsv": "\t", "pipes": "|"}
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_INTEGER = re.compile(r"[-+]?[0-9]+")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
MAX_ARRAY_ITEMS = 1000
_WHERE = {"path": "path", "query": "query", "header": "header", "cookie": "cookie"}


def _bad(param: Mapping[str, Any], message: str) -> BadRequest:
    return BadRequest(f"the {param.get('in')} parameter '{param.get('name')}' {message}", "InvalidParameter")


def cast_scalar(value: str, schema: Mapping[str, Any], param: Mapping[str, Any]) -> Any:
    """``value`` as the schema's type; BadRequest naming ``param`` when it is not one."""
    kind = _type_of(schema)
    if kind == "integer":
        text = value.strip()
        if not _INTEGER.fullmatch(text):
            raise _bad(param, f"must be an integer, got {_show(value)}")
        number = int(text)
        low, high = INT32 if schema.get("format") == "int32" else INT64
        if not low <= number <= high:
            raise _bad(param, f"is out of range for {schema.get('format') or 'int64'}")
        return number
    if kind == "number":
        text = value.strip()
        if not _NUMBER.fullmatch(text):
            raise _bad(param, f"must be a number, got {_show(value)}")
        result = float(text)
        if math.isinf(result):
            raise _bad(param, "is out of range")
        return result
    if kind == "boolean":
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            raise _bad(param, f"must be true or false, got {_show(value)}")
        return lowered == "true"
    return value


def _type_of(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):  # OpenAPI 3.1: ["integer", "null"]
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else "string"
    return kind if isinstance(kind, str) else "string"


def _show(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def split_array(values: Sequence[str], param: Mapping[str, Any]) -> list[str]:
    """Items of an array parameter from its raw occurrences, by its collection format.

    ``multi``: every occurrence is one item (``?id=1&id=2``). The others: each occurrence is
    split on the separator (``?id=1,2``; several occurrences are concatenated).
    """
    fmt = param.get("collectionFormat") or "csv"
    if fmt == "multi":
        items = list(values)
    else:
        separator = SEPARATORS.get(fmt, ",")
        items = [item for value in values if value != "" for item in value.split(separator)]
    if len(items) > MAX_ARRAY_ITEMS:
        raise _bad(param, f"has more than {MAX_ARRAY_ITEMS} items")
    return items


def _path_style(value: str, param: Mapping[str, Any], is_array: bool) -> list[str]:
    """Unwrap OpenAPI 3 ``label`` (``.3`` / ``.3,4`` / ``.3.4``) and ``matrix`` (``;id=3`` /
    ``;id=3,4`` / ``;id=3;id=4``) path values into their items."""
    style, explode, name = param.get("style"), bool(param.get("explode")), param["name"]
    if style == "label":
        if not value.startswith("."):
            raise _bad(param, "must start with '.' (label style)")
        body = value[1:]
        return body.split("." if explode else ",") if is_array else [body]
    prefix = f";{name}="
    if explode and is_array:
        parts = value.split(";")[1:] if value.startswith(";") else None
        if parts is None or any(not part.startswith(f"{name}=") for part in parts):
            raise _bad(param, f"must be ;{name}=...;{name}=... (matrix style)")
        return [part[len(name) + 1 :] for part in parts]
    if not value.startswith(prefix):
        raise _bad(param, f"must start with '{prefix}' (matrix style)")
    body = value[len(prefix) :]
    return body.split(",") if is_array else [body]


def _object_pairs(value: str, param: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (property, value) pairs of an object parameter serialised in one string.

    OpenAPI 3 writes ``{"R": 100, "G": 200}`` as ``R,100,G,200`` (simple, form), ``R=100,G=200``
    (simple, explode), ``.R,100,G,200`` / ``.R=100.G=200`` (label), ``;color=R,100,G,200`` /
    ``;R=100;G=200`` (matrix) and ``R%20100%20G%20200`` / ``R|100|G|200`` (spaceDelimited,
    pipeDelimited).
    """
    style, explode, name = param.get("style"), bool(param.get("explode")), param["name"]
    if style == "label":
        if not value.startswith("."):
            raise _bad(param, "must start with '.' (label style)")
        value, separator = value[1:], "."
    elif style == "matrix":
        if explode:
            if not value.startswith(";"):
                raise _bad(param, "must be ;property=value;... (matrix style)")
            value, separator = value[1:], ";"
        else:
            if not value.startswith(f";{name}="):
                raise _bad(param, f"must start with ';{name}=' (matrix style)")
            value, separator = value[len(name) + 2 :], ","
    else:
        separator = ","
    if value == "":
        return []
    if explode and style in ("simple", "label", "matrix"):
        pairs = [part.partition("=") for part in value.split(separator)]
        if any(not equals for _, equals, _ in pairs):
            raise _bad(param, "must be a list of property=value pairs")
        return [(key, item) for key, _, item in pairs]
    tokens = value.split({"spaceDelimited": " ", "pipeDelimited": "|"}.get(str(style), ","))
    if len(tokens) % 2:
        raise _bad(param, "must be a list of property,value pairs")
    return list(zip(tokens[::2], tokens[1::2], strict=True))


def cast_object(pairs: Sequence[tuple[str, Sequence[str]]], param: Mapping[str, Any]) -> dict[str, Any]:
    """An object parameter from its properties' raw values, each cast by its property schema.

    Properties the schema does not name are cast by ``additionalProperties`` when it is a
    schema, else kept as strings; whether they are allowed at all is the schema check's call.
    """
    if len(pairs) > MAX_ARRAY_ITEMS:
        raise _bad(param, f"has more than {MAX_ARRAY_ITEMS} properties")
    schema = param.get("schema") or {}
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    extra = schema.get("additionalProperties")
    out: dict[str, Any] = {}
    for key, values in pairs:
        if key in out:
            raise _bad(param, f"has the property '{_show(key)[1:-1]}' more than once")
        property_schema = properties.get(key, extra if isinstance(extra, dict) else {})
        if not isinstance(property_schema, dict):
            property_schema = {}
        if _type_of(property_schema) == "array":
            items = property_schema.get("items") if isinstance(property_schema.get("items"), dict) else {}
            out[key] = [cast_scalar(value, items, param) for value in values]
        elif len(values) > 1:
            raise _bad(param, f"has the property '{_show(key)[1:-1]}' more than once")
        else:
            out[key] = cast_scalar(values[0], property_schema, param)
    return out


def cast_value(values: Sequence[str], param: Mapping[str, Any]) -> Any:
    """A parameter's value from its raw occurrences (at least one)."""
    schema = param.get("schema") or {}
    if _type_of(schema) == "object":
        if len(values) > 1:
            raise _bad(param, "was sent more than once")
        return cast_object([(key, [item]) for key, item in _object_pairs(values[0], param)], param)
    is_array = _type_of(schema) == "array"
    if param.get("in") == "path" and param.get("style") in ("label", "matrix"):
        items = _path_style(values[0], param, is_array)
        if is_array:
            return [cast_scalar(item, schema.get("items") or {}, param) for item in items]
        values = items
    if is_array:
        item_schema = schema.get("items") or {}
        return [cast_scalar(item, item_schema, param) for item in split_array(values, param)]
    if len(values) > 1:
        raise _bad(param, "was sent more than once")
    value = values[0]
    if value == "" and _type_of(schema) in ("integer", "number", "boolean"):
        raise _bad(param, "is empty")
    return cast_scalar(value, schema, param)


def _check_schema(value: Any, param: Mapping[str, Any]) -> None:
    schema = param.get("schema") or {}
    constraints = {k: v for k, v in schema.items() if k not in ("type", "default", "description", "example", "examples", "nullable", "x-nullable", "items")}
    items = schema.get("items")
    if not constraints and not (isinstance(items, dict) and set(items) - {"type"}):
        return
    error = _first_error(value, _param_schema_text(schema), "oas30")
    if error is not None:
        raise _bad(param, f"is not valid: {error.message}")


def _param_schema_text(schema: Mapping[str, Any]) -> str:
    """Parameter schemas are plain data from the document; their JSON text is the cache key."""
    return json.dumps({k: v for k, v in schema.items() if k != "default"}, sort_keys=True)


def extract_parameters(
    declared: Sequence[Mapping[str, Any]],
    *,
    path: Mapping[str, str],
    query: Mapping[str, Sequence[str]],
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
) -> dict[str, dict[str, Any]]:
    """``{"path": {...}, "query": {...}, "header": {...}, "cookie": {...}}`` for a call.

    Declared parameters are cast (or defaulted, or null); undeclared query parameters and
    headers are passed through as strings (a repeated query parameter as a list), so a process
    can still read what the document does not describe.
    """
    out: dict[str, dict[str, Any]] = {"path": {}, "query": {}, "header": {}, "cookie": {}}
    for name, values in query.items():
        if values:
            out["query"][name] = values[0] if len(values) == 1 else list(values)
    for name, value in headers.items():
        out["header"][name] = value
    out["cookie"].update(cookies)
    declared_query = {param["name"] for param in declared if param.get("in") == "query"}
    for param in declared:
        where = param.get("in")
        if where not in _WHERE:
            continue  # body and formData parameters are the body's business
        name = param["name"]
        raw: Sequence[str] | None
        if where == "path":
            raw = [path[name]] if name in path else None
        elif where == "query" and _type_of(param.get("schema") or {}) == "object" and _exploded_query_object(param):
            _read_query_object(param, query, declared_query, out)
            continue
        elif where == "query":
            raw = query.get(name) or None
        elif where == "header":
            out["header"].pop(name.lower(), None)
            value = headers.get(name.lower())
            raw = [value] if value is not None else None
        else:
            value = cookies.get(name)
            raw = [value] if value is not None else None
        if raw is None:
            if param.get("required"):
                raise _bad(param, "is required")
            schema = param.get("schema") or {}
            out[where][name] = schema.get("default")
            continue
        value = cast_value(raw, param)
        _check_schema(value, param)
        out[where][name] = value
    return out


def _exploded_query_object(param: Mapping[str, Any]) -> bool:
    """Objects spread over several query parameters rather than serialised in one."""
    return param.get("style") == "deepObject" or (param.get("style", "form") == "form" and bool(param.get("explode")))


def _read_query_object(
    param: Mapping[str, Any], query: Mapping[str, Sequence[str]], taken: set[str], out: dict[str, dict[str, Any]]
) -> None:
    """``?color[R]=100&color[G]=200`` (deepObject) or ``?R=100&G=200`` (form, explode).

    For the exploded form style only the properties the schema names can be recognised; they
    are taken out of the undeclared pass-through so the process sees each value once. Names in
    ``taken`` are declared query parameters of their own and are never read as properties.
    """
    name = param["name"]
    if param.get("style") == "deepObject":
        prefix = f"{name}["
        keys = [key for key in query if key.startswith(prefix) and key.endswith("]")]
        if any("[" in key[len(prefix) : -1] or "]" in key[len(prefix) : -1] for key in keys):
            raise _bad(param, "nests objects, which the deepObject style does not define")
        pairs = [(key[len(prefix) : -1], query[key]) for key in keys]
    else:
        properties = (param.get("schema") or {}).get("properties")
        keys = [key for key in (properties if isinstance(properties, dict) else {}) if query.get(key) and key not in taken]
        pairs = [(key, query[key]) for key in keys]
    for key in keys:
        out["query"].pop(key, None)
    if not pairs:
        if param.get("required"):
            raise _bad(param, "is required")
        out["query"][name] = (param.get("schema") or {}).get("default")
        return
    value = cast_object(pairs, param)
    _check_schema(value, param)
    out["query"][name] = value


# --------------------------------------------------------------------------------------------
# Request bodies
# --------------------------------------------------------------------------------------------


def read_form(fields: Mapping[str, Sequence[str]], declared: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A urlencoded body as an object, its declared fields cast like query parameters.

    ``declared`` are the form's fields as ``core.apiops.operations`` extracts them (Swagger 2
    ``formData`` parameters, or the properties of an OpenAPI 3 form schema). Undeclared fields stay
    text (a repeated one a list); absent declared ones are their default or null, required ones a
    400.
    """
    out: dict[str, Any] = {name: values[0] if len(values) == 1 else list(values) for name, values in fields.items()}
    for field in declared:
        name = field["name"]
        values = fields.get(name)
        if not values:
            if field.get("required"):
                raise _bad(field, "is required")
            out[name] = (field.get("schema") or {}).get("default")
            continue
        value = cast_value(values, field)
        _check_schema(value, field)
        out[name] = value
    return out


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str, dialect: str) -> Any:
    """A compiled validator per (schema, dialect): building one costs far more than using it.

    Regex keywords are matched by RE2 (``core.kernel.regex``), in time linear in the caller's text.
    Formats are asserted (``date``, ``date-time``, ``uuid``, ``int32``, ``byte``...): a document
    that says ``format: date`` means a date, and a caller sending ``since=`` gets a 400.
    """
    # cold start: the validators load with the first operation that has a schema
    from openapi_schema_validator import OAS30WriteValidator, OAS31Validator, oas30_format_checker, oas31_format_checker

    schema = json.loads(schema_text)
    if dialect == "oas31":
        return linear_validator(OAS31Validator)(schema, format_checker=oas31_format_checker)
    return linear_validator(OAS30WriteValidator)(schema, format_checker=oas30_format_checker)


def _first_error(value: Any, schema_text: str, dialect: str) -> Any:
    try:
        validator = _validator(schema_text, dialect)
        errors = sorted(validator.iter_errors(value), key=lambda e: (len(list(e.absolute_path)), list(map(str, e.absolute_path))))
    except RecursionError:
        raise BadRequest("the body is nested too deeply for its schema", "InvalidBody") from None
    except Exception as exc:  # noqa: BLE001 - a schema the validator cannot use must not be a 500
        logger.warning("a schema could not be applied (%s: %s); the value is not checked", type(exc).__name__, exc)
        return None
    return errors[0] if errors else None


def _json_path(parts: Sequence[Any], root: str) -> str:
    text = root
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def validate_body(value: Any, schema: Mapping[str, Any], dialect: str) -> None:
    """BadRequest naming the body's path and the schema path when ``value`` fails ``schema``.

    ``schema`` is self-contained (its ``$ref`` targets are inside it, as
    ``core.apiops.operations`` builds it); ``dialect`` is ``swagger2``, ``oas30`` or ``oas31``.
    """
    text = json.dumps(schema, sort_keys=True)
    error = _first_error(value, text, dialect)
    if error is None:
        return
    where = _json_path(list(error.absolute_path), "body")
    schema_path = "/".join(str(p) for p in error.absolute_schema_path)
    message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
    raise BadRequest(f"{where}: {message} (schema path: #/{schema_path})", "InvalidBody")
