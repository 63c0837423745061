"""Outbound HTTP for ``http`` steps and scenario sources: allow-listed hosts only.

A process is tenant-supplied data, so every URL it reaches — the first one and every redirect —
must name a host in ``JUNCTION_OUTBOUND_ALLOWED_HOSTS``: ``host`` (on the scheme's default port),
``host:port``, or ``*.domain`` (any subdomain). Secrets are app settings named ``JUNCTION_SECRET_*``, resolved at call time and
never stored in the scenario, the run record or the log. ``core.process.egress`` holds the rules for
secrets (valid values, hosts they are bound to, scrubbing), redirects (no credentials to another
origin, no https → http) and the addresses a name may resolve to.

Retries: 429, 500, 502, 503, 504 and connection errors or time-outs are retried with exponential
backoff (0.5 s doubling, at most 30 s), honouring ``Retry-After`` up to 60 s.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from core.kernel import telemetry
from core.kernel.deadline import Deadline, DeadlinePassed
from core.kernel.errors import BadRequest
from core.kernel.jsonvalue import parse_json
from core.process.allowlist import host_allowed
from core.process.egress import (
    EgressRefused,
    check_secret_destination,
    known_secrets,
    redirect_headers,
    scrub,
    scrub_text,
    secret_value,
    session,
)
from core.process.errors import ProcessFailed
from core.web.bodies import is_json_type, is_xml_type, media_type, parse_xml

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_REDIRECTS = 5
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
MAX_RETRY_AFTER = 60.0
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0


class OutboundError(Exception):
    """The call could not be made or failed; the engine turns it into a failed step."""


class UpstreamUnavailable(OutboundError):
    """A connection error or time-out after the step's own retries: may pass, so the run is retried."""


def _secret(name: str) -> str:
    try:
        return secret_value(name)
    except EgressRefused as exc:
        raise OutboundError(str(exc)) from None


def _header_value(value: Any, resolve: Callable[[Any], Any]) -> str:
    if isinstance(value, Mapping) and set(value) == {"secret"}:
        return _secret(str(value["secret"]))
    resolved = resolve(value)
    text = resolved if isinstance(resolved, str) else json.dumps(resolved)
    if "\r" in text or "\n" in text:
        raise OutboundError("a header value contains a line break")
    return text


def _encode_body(body: Any, body_type: str) -> tuple[bytes | None, str | None]:
    if body is None:
        return None, None
    if body_type == "text":
        return str(body).encode("utf-8"), "text/plain; charset=utf-8"
    if body_type == "xml":
        if isinstance(body, str):
            return body.encode("utf-8"), "application/xml; charset=utf-8"
        import xmltodict  # cold start: with the first XML body sent

        return xmltodict.unparse(body).encode("utf-8"), "application/xml; charset=utf-8"
    return json.dumps(body, allow_nan=False).encode("utf-8"), "application/json"


def _parse_body(content: bytes, content_type: str) -> Any:
    mtype, _ = media_type(content_type)
    if not content:
        return None
    try:
        if is_json_type(mtype):
            return parse_json(content, what="response")
        if is_xml_type(mtype):
            return parse_xml(content)
    except BadRequest as exc:
        raise OutboundError(f"the response body could not be parsed: {exc.message}") from None
    return content.decode("utf-8", errors="replace")


def _retry_delay(response: Response | None, attempt: int) -> float:
    backoff = min(BACKOFF_MAX, BACKOFF_START * (2**attempt))
    header = response.header("Retry-After") if response is not None else None
    if header:
        try:
            seconds = float(header)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(header).timestamp() - time.time()
            except (TypeError, ValueError):
                seconds = backoff
        return max(0.0, min(MAX_RETRY_AFTER, seconds))
    return backoff


def request(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
    retries: int,
    allowed_hosts: Sequence[str],
    sleep: Callable[[float], None] = time.sleep,
    deadline: Deadline | None = None,
    sensitive: Sequence[str] = (),
) -> dict[str, Any]:
    """One logical call: redirects followed within the allow-list, retries on transient errors.

    With a ``deadline`` (a caller waits), no attempt waits longer than the time left and no retry
    waits past it: ``DeadlinePassed`` instead."""
    attempt = 0
    while True:
        response = None
        try:
            wait = deadline.cap(timeout) if deadline is not None else timeout
            response = _follow(method, url, headers, body, wait, allowed_hosts, sensitive)
            if response.status_code not in RETRY_STATUSES or attempt >= retries:
                return response_json(response)
        except (requests.ConnectionError, requests.Timeout) as exc:
            if deadline is not None:
                deadline.check()  # timed out because the deadline cut the wait
            if attempt >= retries:
                raise UpstreamUnavailable(f"{type(exc).__name__} calling {urlsplit(url).hostname} after {attempt + 1} attempt(s)") from None
        delay = _retry_delay(response, attempt)
        if deadline is not None and delay >= deadline.remaining():
            deadline.tripped = True
            raise DeadlinePassed(f"{deadline.describe()} before a retry of {method} {urlsplit(url).hostname} could start")
        logger.info("retrying %s %s in %.1f s (attempt %d)", method, urlsplit(url).hostname, delay, attempt + 1)
        sleep(delay)
        attempt += 1


def _follow(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
    allowed_hosts: Sequence[str],
    sensitive: Sequence[str] = (),
) -> Response:
    current = url
    headers = dict(headers)
    guarded = session(allowed_hosts)
    for _ in range(MAX_REDIRECTS + 1):
        if not host_allowed(current, allowed_hosts):
            raise OutboundError(f"{urlsplit(current).hostname or current!r} is not in JUNCTION_OUTBOUND_ALLOWED_HOSTS")
        with telemetry.span(
            f"{method} {urlsplit(current).hostname}", kind=telemetry.CLIENT, method=method, attributes=telemetry.url_attributes(current)
        ) as call:
            try:
                response = guarded.request(
                    method, current, headers=dict(headers), data=body, timeout=timeout, allow_redirects=False, stream=True
                )
            except EgressRefused as exc:
                raise OutboundError(str(exc)) from None
            call.set(status_code=response.status_code)
            if response.status_code >= 400:
                call.fail(f"HTTP {response.status_code}")
        if response.status_code in (301, 302, 303, 307, 308) and "Location" in response.headers:
            response.close()
            target = urljoin(current, response.headers["Location"])
            try:
                headers = redirect_headers(current, target, headers, sensitive)
            except EgressRefused as exc:
                raise OutboundError(str(exc)) from None
            current = target
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method, body = "GET", None
            continue
        content = response.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True)
        response.close()
        if len(content) > MAX_RESPONSE_BYTES:
            raise OutboundError(f"the response is larger than {MAX_RESPONSE_BYTES} bytes")
        return Response(response.status_code, dict(response.headers), content)
    raise OutboundError(f"more than {MAX_REDIRECTS} redirects")


@dataclass(frozen=True)
class Response:
    status_code: int
    headers: dict[str, str]
    content: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def response_json(response: Response) -> dict[str, Any]:
    """What a later step sees: status, headers (lower-case names) and the parsed body."""
    return {
        "status": response.status_code,
        "headers": {name.lower(): value for name, value in response.headers.items()},
        "body": _parse_body(response.content, response.header("Content-Type") or ""),
    }


def call_step(
    step: Mapping[str, Any], resolve: Callable[[Any], Any], allowed_hosts: Sequence[str], *, deadline: Deadline | None = None
) -> dict[str, Any]:
    """Run an ``http`` step; a final 4xx/5xx fails the step unless ``failOnError`` is false.
    ``deadline``: a caller waits (core/kernel/deadline.py)."""
    url = resolve(step["url"])
    if not isinstance(url, str):
        raise ProcessFailed("http", "the url is not a string")
    secrets = known_secrets()
    raw_headers = step.get("headers", {})
    secret_names = [str(v["secret"]) for v in raw_headers.values() if isinstance(v, Mapping) and set(v) == {"secret"}]
    sensitive = [name for name, v in raw_headers.items() if isinstance(v, Mapping) and set(v) == {"secret"}]
    try:
        check_secret_destination(secret_names, url)
        headers = {name: _header_value(value, resolve) for name, value in raw_headers.items()}
        body, content_type = _encode_body(resolve(step.get("body")), step.get("bodyType", "json"))
        if content_type and not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = content_type
        result = request(
            method=step.get("method", "GET"),
            url=url,
            headers=headers,
            body=body,
            timeout=float(step.get("timeout", 30)),
            retries=int(step.get("retries", 3)),
            allowed_hosts=allowed_hosts,
            deadline=deadline,
            sensitive=sensitive,
        )
    except EgressRefused as exc:
        raise ProcessFailed("http", scrub_text(str(exc), secrets)) from None
    except OutboundError as exc:
        raise ProcessFailed("http", scrub_text(str(exc), secrets), retryable=isinstance(exc, UpstreamUnavailable)) from None
    except ValueError as exc:  # requests refusing a header or URL quotes it: name the problem, never a secret
        raise ProcessFailed("http", scrub_text(f"the request could not be sent: {exc}", secrets)) from None
    result = scrub(result, secrets)
    status = result["status"]
    if step.get("failOnError", True) and status >= 400:
        # 5xx and 429 may pass: the queue retries the run. Another 4xx will answer the same again.
        raise ProcessFailed("http", f"{urlsplit(url).hostname} answered {status}", retryable=status >= 500 or status == 429)
    return result


def poll_source(source: Mapping[str, Any], allowed_hosts: Sequence[str]) -> Any:
    """The body of a scenario's ``source``: what IntegrationHub calls polling the data source."""
    step = {"method": source.get("method", "GET"), "url": source["url"], "headers": source.get("headers", {})}
    try:
        return call_step(step, lambda value: value, allowed_hosts)["body"]
    except ProcessFailed as exc:
        raise ProcessFailed("source", exc.message, retryable=exc.retryable) from None
