"""Signed webhooks: a sender proves a request is its own with an HMAC of the raw body.

A scenario (``externalTriggers.signature``) or a binding (``signature``) names a scheme, the
``JUNCTION_SECRET_*`` app setting holding the shared secret, optionally the header the signature
comes in, and ``toleranceSeconds`` (default 300). ``verify`` checks the raw body *before* it is
parsed, exactly as each sender signs (README, "Signed webhooks"):

- ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``;
- ``stripe``: ``Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>...]`` over ``"<t>.<body>"``;
  any ``v1`` may match (Stripe sends one per secret while a secret is being rolled), other
  schemes in the header (``v0``) are ignored;
- ``slack``: ``X-Slack-Signature: v0=<hex>`` over ``"v0:<timestamp>:<body>"``, the timestamp
  from ``X-Slack-Request-Timestamp``;
- ``hmac-sha256``: ``X-Signature-256`` (or the configured header): the HMAC of the body as 64
  hex digits, optionally prefixed ``sha256=``, or as base64 (44 characters).

Digests are compared with ``hmac.compare_digest`` (constant time). Timestamped schemes (stripe,
slack) refuse a timestamp more than ``toleranceSeconds`` away from the clock in either direction
(a sender's clock may run ahead). The digest that matched is returned with the time until which a
second use of it is a replay (``core.identity.replays`` keeps them): the timestamp plus the
tolerance for timestamped schemes, now plus the tolerance for the others.

Every failure is the same 401 ``InvalidSignature``; the message says what was wrong (missing
header, malformed, timestamp outside the tolerance, no match) but never the expected value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.kernel.errors import BadRequest, JunctionError, Unauthorized
from core.kernel.settings import SECRET_NAME

logger = logging.getLogger(__name__)

SCHEMES = ("hmac-sha256", "github", "stripe", "slack")
DEFAULT_HEADERS = {
    "hmac-sha256": "X-Signature-256",
    "github": "X-Hub-Signature-256",
    "stripe": "Stripe-Signature",
    "slack": "X-Slack-Signature",
}
SLACK_TIMESTAMP_HEADER = "x-slack-request-timestamp"
DEFAULT_TOLERANCE = 300
MAX_TOLERANCE = 3600
MAX_HEADER_CHARS = 4096
MAX_STRIPE_SIGNATURES = 16

SIGNATURE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["scheme", "secret"],
    "description": "Verify an HMAC signature of the raw body before anything is started (README, Signed webhooks)",
    "properties": {
        "scheme": {"type": "string", "enum": list(SCHEMES)},
        "secret": {
            "type": "object",
            "additionalProperties": False,
            "required": ["secret"],
            "description": "the app setting that holds the shared secret",
            "properties": {"secret": {"type": "string", "pattern": "^JUNCTION_SECRET_[A-Za-z0-9_]+$", "maxLength": 128}},
        },
        "header": {
            "type": "string",
            "pattern": "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
            "maxLength": 100,
            "description": "the header the signature comes in; default by scheme (X-Signature-256, X-Hub-Signature-256, Stripe-Signature, X-Slack-Signature)",
        },
        "toleranceSeconds": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_TOLERANCE,
            "default": DEFAULT_TOLERANCE,
            "description": "how far a timestamp may be from the clock, and how long a signature is remembered to refuse its replay",
        },
    },
}


class InvalidSignature(Unauthorized):
    """401: the signature is missing, malformed, stale or does not match."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "InvalidSignature")


class SignatureSecretMissing(JunctionError):
    """500: the configured secret is not set (an operator's mistake, not the caller's)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the signature secret {name} is not set as an app setting; the operator must set it", "SignatureSecretMissing")


@dataclass(frozen=True)
class Verified:
    """A signature that matched: ``digest`` (hex) identifies it, a replay until ``until`` (Unix time)."""

    scheme: str
    digest: str
    until: float


def normalise_signature(config: Mapping[str, Any], where: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The stored form (schema already checked): header and tolerance filled in, the secret set.

    A secret that is not set is refused at save time, naming the field: a typo would otherwise
    only show as every sender's request failing.
    """
    env = os.environ if env is None else env
    name = config["secret"]["secret"]
    if not env.get(name):
        raise BadRequest(f"{where}.secret: the app setting {name} is not set", "SignatureSecretMissing")
    return {
        "scheme": config["scheme"],
        "secret": {"secret": name},
        "header": config.get("header") or DEFAULT_HEADERS[config["scheme"]],
        "toleranceSeconds": int(config.get("toleranceSeconds", DEFAULT_TOLERANCE)),
    }


def _secret(config: Mapping[str, Any], env: Mapping[str, str] | None) -> bytes:
    env = os.environ if env is None else env
    name = str(config["secret"]["secret"])
    value = env.get(name) if SECRET_NAME.fullmatch(name) else None
    if not value:
        logger.error("signature secret %s is not set; refusing signed requests", name)
        raise SignatureSecretMissing(name)
    return value.encode("utf-8")


def _mac(secret: bytes, *parts: bytes) -> bytes:
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.digest()


def _hex(value: str) -> bytes | None:
    if len(value) != 64:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _digest_of(value: str) -> bytes | None:
    """A generic signature: 64 hex digits (``sha256=`` allowed before them) or 44 base64 characters."""
    if value[:7].lower() == "sha256=":
        return _hex(value[7:])
    if len(value) == 64:
        return _hex(value)
    if len(value) == 44:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        return decoded if len(decoded) == 32 else None
    return None


def _timestamp(raw: str, now: float, tolerance: int) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise InvalidSignature("the signature's timestamp is not a Unix time in seconds")
    stamp = int(raw)
    if abs(now - stamp) > tolerance:
        raise InvalidSignature(f"the signature's timestamp is more than {tolerance} s from the current time")
    return stamp


def verify(config: Mapping[str, Any], body: bytes, headers: Mapping[str, str], now: float, env: Mapping[str, str] | None = None) -> Verified:
    """Check the request's signature; ``headers`` have lower-case names. See the module docstring."""
    scheme = str(config["scheme"])
    header = str(config.get("header") or DEFAULT_HEADERS[scheme])
    tolerance = int(config.get("toleranceSeconds", DEFAULT_TOLERANCE))
    raw = headers.get(header.lower())
    if raw is None or not raw.strip():
        raise InvalidSignature(f"the request has no {header} header")
    raw = raw.strip()
    if len(raw) > MAX_HEADER_CHARS:
        raise InvalidSignature(f"the {header} header is too long")
    secret = _secret(config, env)
    if scheme == "github":
        given = _hex(raw[7:]) if raw.startswith("sha256=") else None
        if given is None:
            raise InvalidSignature(f"{header} must be sha256= and 64 hex digits")
        return _match(scheme, _mac(secret, body), [given], now + tolerance)
    if scheme == "hmac-sha256":
        given = _digest_of(raw)
        if given is None:
            raise InvalidSignature(f"{header} must be 64 hex digits (optionally after sha256=) or 44 characters of base64")
        return _match(scheme, _mac(secret, body), [given], now + tolerance)
    if scheme == "slack":
        stamp_text = (headers.get(SLACK_TIMESTAMP_HEADER) or "").strip()
        if not stamp_text:
            raise InvalidSignature("the request has no X-Slack-Request-Timestamp header")
        given = _hex(raw[3:]) if raw.startswith("v0=") else None
        if given is None:
            raise InvalidSignature(f"{header} must be v0= and 64 hex digits")
        stamp = _timestamp(stamp_text, now, tolerance)
        return _match(scheme, _mac(secret, b"v0:", stamp_text.encode(), b":", body), [given], stamp + tolerance)
    # stripe
    stamp_text, signatures = _stripe_fields(raw, header)
    stamp = _timestamp(stamp_text, now, tolerance)
    return _match(scheme, _mac(secret, stamp_text.encode(), b".", body), signatures, stamp + tolerance)


def _stripe_fields(raw: str, header: str) -> tuple[str, list[bytes]]:
    """``t`` and every ``v1`` of a Stripe-Signature header (other schemes ignored, as Stripe's
    libraries do)."""
    stamp: str | None = None
    found: list[bytes] = []
    for item in raw.split(","):
        key, eq, value = item.strip().partition("=")
        if not eq:
            continue
        if key == "t" and stamp is None:
            stamp = value.strip()
        elif key == "v1":
            digest = _hex(value.strip())
            if digest is not None:
                found.append(digest)
    if stamp is None:
        raise InvalidSignature(f"{header} has no t= timestamp")
    if not found:
        raise InvalidSignature(f"{header} has no v1= signature of 64 hex digits")
    if len(found) > MAX_STRIPE_SIGNATURES:
        raise InvalidSignature(f"{header} carries more than {MAX_STRIPE_SIGNATURES} v1 signatures")
    return stamp, found


def _match(scheme: str, expected: bytes, given: list[bytes], until: float) -> Verified:
    # Every candidate is compared (no early exit), each in constant time.
    matched = False
    for candidate in given:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise InvalidSignature("the signature does not match the body")
    return Verified(scheme, expected.hex(), until)
