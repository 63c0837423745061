"""Local users for HTTP Basic authentication of API-bound operations.

Frends authenticates Basic callers against the agent machine's users; Junction has no machine,
so it keeps its own users, managed through ``/management/users``:

- Passwords are hashed with scrypt (``hashlib.scrypt``: memory-hard, in the standard library)
  with a random 16-byte salt per user. Parameters n=2**14, r=8, p=1 (16 MiB and roughly 30-60 ms
  per check on one core): OWASP's minimum for scrypt, chosen so a Consumption-plan instance can
  still serve a handful of Basic calls per second. They are stored with each hash, so they can
  be raised later without invalidating existing users.
- Verification costs the same for an unknown user as for a wrong password: the password is
  hashed against a dummy record, and the comparison is constant-time.
- Usernames are NFC-normalised and case-folded for lookup (``Åsa`` and ``åsa`` are one user);
  the row key is a hash of that form, never the name itself (docs/architecture.md, "Storage
  layout").
- The Basic header is decoded strictly: base64 with no junk, then UTF-8 (Frends requires UTF-8
  before base64); anything else is 401.
- Repeated failures are throttled per instance, in memory, so that a stranger can neither guess
  freely nor lock a user out (issue 13: keyed on the name alone, 5 wrong guesses from anywhere
  locked ``alice`` out):

  * per (user, client): 5 failures in 5 minutes refuse that client for that user (429 with
    ``Retry-After``, without checking the password);
  * per client, across users: 30 failures in 5 minutes refuse that client for every user
    (guessing many names from one address);
  * per user, across clients: 50 failures in 5 minutes refuse that user to every client except
    those that signed in as that user successfully in the last 24 hours (a distributed guesser
    is stopped; the user keeps working from where they usually sign in).

  The client is the address the front end appended to ``X-Forwarded-For`` (without a port; an
  IPv6 address by its /64). A throttled entry is never evicted before its window ends; only
  expired and unthrottled entries make room, oldest first, past 10,000. Every failure costs one
  scrypt, so throttled entries cannot grow faster than the scrypt slots allow.
- scrypt runs in at most ``SCRYPT_SLOTS`` threads at once (half the cores, at least one); a
  sign-in that cannot get a slot within 0.25 s is a 429 ``SignInsBusy`` that is not counted as
  a failure, so a flood of Basic calls cannot take every core from the other callers.
- Per instance means a scaled-out app allows the limits per instance; a shared counter would cost
  a storage write per failure, which is itself an amplification.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from core.kernel import clock
from core.kernel.errors import BadRequest, Conflict, NotFound, TooManyRequests, Unauthorized
from core.kernel.ids import key_hash
from core.kernel.jsonschema import validate
from core.store import tables
from core.store.errors import EntityExists, EntityMissing
from core.store.storage import Storage

logger = logging.getLogger(__name__)

PARTITION = "user"
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_FAILURES = 5
MAX_CLIENT_FAILURES = 30
MAX_USER_FAILURES = 50
FAILURE_WINDOW_SECONDS = 300.0
KNOWN_CLIENT_SECONDS = 24 * 3600.0
MAX_KNOWN_CLIENTS = 16
MAX_TRACKED_USERS = 10_000
SCRYPT_SLOTS = max(1, (os.cpu_count() or 2) // 2)
SCRYPT_WAIT_SECONDS = 0.25
MAX_HEADER_LENGTH = 4096
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f:]")

USER_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["username", "password"],
    "properties": {
        # No ':' (it ends the name in a Basic header) and no control characters.
        "username": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^:\\x00-\\x1f\\x7f-\\x9f]+$"},
        "password": {"type": "string", "minLength": MIN_PASSWORD_LENGTH, "maxLength": MAX_PASSWORD_LENGTH},
    },
}


class TooManyFailures(TooManyRequests):
    """429 with ``Retry-After``: too many failed logins for one username."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed sign-ins for this user; try again later", "TooManyFailedSignIns", retry_after=retry_after)


class SignInsBusy(TooManyRequests):
    """429 with ``Retry-After: 1``: every scrypt slot is taken; not a failed sign-in."""

    def __init__(self) -> None:
        super().__init__("too many sign-ins at once; try again in a moment", "SignInsBusy", retry_after=1)


def canonical_username(username: str) -> str:
    """The lookup form of a username: NFC, case-folded (then NFC again, as folding may denormalise)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", username).casefold())


def _row_key(username: str) -> str:
    return key_hash(canonical_username(username))


class _HashCounter:
    """How many scrypt hashes this process computed: lets tests check that an unknown user costs
    exactly what a wrong password costs, without timing anything."""

    def __init__(self) -> None:
        self.count = 0


HASHES = _HashCounter()


_SCRYPT_SLOTS = threading.BoundedSemaphore(SCRYPT_SLOTS)


def _scrypt(password: str, salt: bytes, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P, *, wait: float | None = None) -> bytes:
    """scrypt in one of ``SCRYPT_SLOTS`` (hashlib releases the GIL, so unbounded calls would
    occupy every core); ``wait`` seconds at most for a slot, else SignInsBusy."""
    if not _SCRYPT_SLOTS.acquire(timeout=wait if wait is not None else -1):
        raise SignInsBusy()
    try:
        HASHES.count += 1
        return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=HASH_BYTES)
    finally:
        _SCRYPT_SLOTS.release()


_DUMMY_SALT = secrets.token_bytes(SALT_BYTES)
# Unknown users cost one scrypt against random bytes, like a wrong password (and nothing at import).
_DUMMY_HASH = secrets.token_bytes(HASH_BYTES)


def _check_username(username: str) -> str:
    name = unicodedata.normalize("NFC", username).strip()
    if not name or _FORBIDDEN_CHARS.search(name):
        raise BadRequest("user.username may not be empty or contain ':' or control characters", "InvalidBody")
    return name


# --------------------------------------------------------------------------------------------
# Management
# --------------------------------------------------------------------------------------------


def create_user(storage: Storage, body: Any) -> dict[str, Any]:
    """Create a user from ``{username, password}``; Conflict when the (folded) name exists."""
    validate(body, USER_CREATE, "user")
    username = _check_username(body["username"])
    password = body["password"]
    if "\x00" in password:
        raise BadRequest("user.password may not contain NUL", "InvalidBody")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt)
    created = clock.now_iso()
    try:
        storage.table(tables.USERS).create_entity(
            {
                "PartitionKey": PARTITION,
                "RowKey": _row_key(username),
                "Username": username,
                "Salt": base64.b64encode(salt).decode(),
                "Hash": base64.b64encode(digest).decode(),
                "Params": f"scrypt:{SCRYPT_N}:{SCRYPT_R}:{SCRYPT_P}",
                "CreatedAt": created,
            }
        )
    except EntityExists:
        raise Conflict("a user with that name already exists", "UserExists") from None
    logger.info("created local user %s", _row_key(username)[:12])
    return {"username": username, "createdAt": created}


def list_users(storage: Storage) -> list[dict[str, Any]]:
    entities = storage.table(tables.USERS).query_entities(
        "PartitionKey eq @pk", parameters={"pk": PARTITION}, select=["Username", "CreatedAt"]
    )
    return sorted(({"username": e.get("Username"), "createdAt": e.get("CreatedAt")} for e in entities), key=lambda u: canonical_username(u["username"] or ""))


def delete_user(storage: Storage, username: str) -> None:
    table = storage.table(tables.USERS)
    key = _row_key(username)
    try:
        table.get_entity(PARTITION, key, select=["RowKey"])
    except EntityMissing:
        raise NotFound("no such user", "UserNotFound") from None
    table.delete_entity(PARTITION, key)
    logger.info("deleted local user %s", key[:12])


# --------------------------------------------------------------------------------------------
# Basic authentication
# --------------------------------------------------------------------------------------------


def parse_basic(authorization: str | None) -> tuple[str, str] | None:
    """``(username, password)`` from ``Authorization: Basic ...``; None when absent.

    Unauthorized for another scheme, bad base64, invalid UTF-8 or a missing colon.
    """
    if authorization is None:
        return None
    if len(authorization) > MAX_HEADER_LENGTH:
        raise Unauthorized("the Authorization header is too long", "InvalidAuthorization", error="invalid_request")
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise Unauthorized("send 'Authorization: Basic <base64 of user:password>'", "InvalidAuthorization", error="invalid_request")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Unauthorized("the Basic credentials are not UTF-8 encoded in base64", "InvalidAuthorization", error="invalid_request") from None
    username, colon, password = decoded.partition(":")
    if not colon or not username:
        raise Unauthorized("the Basic credentials must be 'user:password'", "InvalidAuthorization", error="invalid_request")
    return username, password


def client_key(client_ip: str | None) -> str:
    """The throttle's name for a client: its address without a port, an IPv6 address by /64."""
    text = (client_ip or "").strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]  # 203.0.113.9:54321, as App Service may append it
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class FailureThrottle:
    """Failed sign-ins per (user, client), per client and per user, in a sliding window.

    Bounded in memory without ever forgetting a throttled key early: see the module docstring.
    """

    def __init__(
        self,
        *,
        limit: int = MAX_FAILURES,
        client_limit: int = MAX_CLIENT_FAILURES,
        user_limit: int = MAX_USER_FAILURES,
        window: float = FAILURE_WINDOW_SECONDS,
        max_entries: int = MAX_TRACKED_USERS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.client_limit = client_limit
        self.user_limit = user_limit
        self.window = window
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._failures: OrderedDict[tuple[str, ...], list[float]] = OrderedDict()
        self._known: OrderedDict[str, dict[str, float]] = OrderedDict()

    def _keys(self, user: str, client: str) -> list[tuple[tuple[str, ...], int]]:
        keys = [(("uc", user, client), self.limit), (("c", client), self.client_limit)]
        known = self._known.get(user, {})
        if self._monotonic() - known.get(client, float("-inf")) >= KNOWN_CLIENT_SECONDS:
            keys.append((("u", user), self.user_limit))
        return keys

    def _recent(self, key: tuple[str, ...], now: float) -> list[float]:
        times = [t for t in self._failures.get(key, ()) if now - t < self.window]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def retry_after(self, user: str, client: str = "") -> int | None:
        """Seconds until ``client`` may try ``user`` again, or None when it may try now."""
        now = self._monotonic()
        with self._lock:
            waits = []
            for key, limit in self._keys(user, client):
                times = self._recent(key, now)
                if len(times) >= limit:
                    waits.append(max(1, int(self.window - (now - times[-limit])) + 1))
            return max(waits) if waits else None

    def failed(self, user: str, client: str = "") -> None:
        now = self._monotonic()
        with self._lock:
            for key, limit in self._keys(user, client):
                times = self._recent(key, now)
                times.append(now)
                self._failures.pop(key, None)
                self._failures[key] = times[-limit:]
            self._evict(now)

    def _evict(self, now: float) -> None:
        """Past ``max_entries``: drop expired keys, then the oldest that are not throttled. A
        throttled key stays until its window ends (evicting it would reset it)."""
        if len(self._failures) <= self.max_entries:
            return
        limits = {"uc": self.limit, "c": self.client_limit, "u": self.user_limit}
        for key in list(self._failures):
            if len(self._failures) <= self.max_entries:
                return
            times = [t for t in self._failures[key] if now - t < self.window]
            if len(times) < limits[key[0]]:
                del self._failures[key]

    def succeeded(self, user: str, client: str = "") -> None:
        now = self._monotonic()
        with self._lock:
            self._failures.pop(("uc", user, client), None)
            known = self._known.pop(user, {})
            known[client] = now
            if len(known) > MAX_KNOWN_CLIENTS:
                known.pop(min(known, key=lambda c: known[c]))
            self._known[user] = known
            while len(self._known) > self.max_entries:
                self._known.popitem(last=False)


THROTTLE = FailureThrottle()


def verify_basic(
    storage: Storage, authorization: str | None, *, client_ip: str | None = None, throttle: FailureThrottle | None = None
) -> str:
    """The username (as stored) behind a Basic header; Unauthorized / TooManyFailures otherwise.

    ``client_ip`` is the caller's address as the front end saw it (the throttle's client).
    """
    throttle = throttle or THROTTLE
    credentials = parse_basic(authorization)
    if credentials is None:
        raise Unauthorized("this operation needs HTTP Basic credentials", "AuthenticationRequired")
    username, password = credentials
    key = canonical_username(username)
    client = client_key(client_ip)
    wait = throttle.retry_after(key, client)
    if wait is not None:
        logger.warning("Basic sign-in throttled for user %s", key_hash(key)[:12])
        raise TooManyFailures(wait)
    entity: Any = None
    if len(username) <= 128 and len(password) <= MAX_PASSWORD_LENGTH:
        try:
            entity = storage.table(tables.USERS).get_entity(PARTITION, key_hash(key))
        except EntityMissing:
            entity = None
    ok = False
    try:
        if entity is not None:
            _, n, r, p = str(entity.get("Params", f"scrypt:{SCRYPT_N}:{SCRYPT_R}:{SCRYPT_P}")).split(":")
            salt = base64.b64decode(entity["Salt"])
            expected = base64.b64decode(entity["Hash"])
            ok = hmac.compare_digest(_scrypt(password[:MAX_PASSWORD_LENGTH], salt, int(n), int(r), int(p), wait=SCRYPT_WAIT_SECONDS), expected)
        else:
            hmac.compare_digest(_scrypt(password[:MAX_PASSWORD_LENGTH], _DUMMY_SALT, wait=SCRYPT_WAIT_SECONDS), _DUMMY_HASH)
    except (KeyError, ValueError, binascii.Error):
        logger.error("the stored record of a local user is damaged; refusing the sign-in")
        ok = False
    if not ok:
        throttle.failed(key, client)
        raise Unauthorized("the user name or password is not valid", "InvalidCredentials")
    throttle.succeeded(key, client)
    return str(entity.get("Username") or username)
