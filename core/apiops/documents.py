"""Reading an imported OpenAPI document, which is hostile input, and validating it.

``PUT /management/apis/{apiName}`` sends a Swagger 2.0, OpenAPI 3.0 or 3.1 document (JSON or
YAML). Why it is treated as hostile:

- YAML is loaded with a safe loader that keeps dates as strings, refuses duplicate keys and
  non-JSON values; anchors/aliases are allowed but the *expanded* document is counted node by
  node and refused past ``MAX_NODES`` (a "billion laughs" file is a few hundred bytes);
- ``$ref`` must be local (``#/...``) and ``$id`` is refused: openapi-spec-validator follows
  references with network and file handlers, and an import must never fetch anything;
- patterns that cannot be matched in linear time are refused (``core.kernel.regex``);
- problems found by openapi-spec-validator come back as one 400 listing them (at most 50).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from core.kernel.errors import BadRequest, UnsupportedMediaType
from core.kernel.jsonvalue import has_lone_surrogate, parse_json
from core.kernel.regex import pattern_problems
from core.web.bodies import check_size, is_json_type, media_type

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_NODES = 1_000_000
MAX_PROBLEMS = 50
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "application/vnd.oai.openapi"})
JSON_DOC_TYPES = frozenset({"application/vnd.oai.openapi+json"})


def _yaml_loader() -> Any:
    import yaml  # cold start: with the first YAML document

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
    import yaml  # cold start: with the first YAML document

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


def walk(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
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
    for where, item in walk(document):
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
    # cold start: the validator loads with the first import of a document
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
