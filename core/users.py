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
  the row key is a hash of that form, never the name itself (DESIGN 9).
- The Basic header is decoded strictly: base64 with no junk, then UTF-8 (Frends requires UTF-8
  before base64); anything else is 401.
- Repeated failures are throttled per username and per instance, in memory: after 5 failures
  within 5 minutes, that username is refused with 429 and ``Retry-After`` until the oldest of
  those failures is 5 minutes old, without checking the password. The table holds at most
  10,000 usernames (expired entries are dropped first), so guessing many usernames cannot
  exhaust memory. Per instance means a scaled-out app allows 5 tries per instance per window;
  a shared counter would cost a storage write per failure, which is itself an amplification.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from core import clock
from core.errors import BadRequest, Conflict, NotFound, TooManyRequests, Unauthorized
from core.ids import key_hash
from core.schemas import validate
from core.storage import Storage

logger = logging.getLogger(__name__)

TABLE = "users"
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
FAILURE_WINDOW_SECONDS = 300.0
MAX_TRACKED_USERS = 10_000
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


def _scrypt(password: str, salt: bytes, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> bytes:
    HASHES.count += 1
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=HASH_BYTES)


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
        storage.table(TABLE).create_entity(
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
    except ResourceExistsError:
        raise Conflict("a user with that name already exists", "UserExists") from None
    logger.info("created local user %s", _row_key(username)[:12])
    return {"username": username, "createdAt": created}


def list_users(storage: Storage) -> list[dict[str, Any]]:
    entities = storage.table(TABLE).query_entities(
        "PartitionKey eq @pk", parameters={"pk": PARTITION}, select=["Username", "CreatedAt"]
    )
    return sorted(({"username": e.get("Username"), "createdAt": e.get("CreatedAt")} for e in entities), key=lambda u: canonical_username(u["username"] or ""))


def delete_user(storage: Storage, username: str) -> None:
    table = storage.table(TABLE)
    key = _row_key(username)
    try:
        table.get_entity(PARTITION, key, select=["RowKey"])
    except ResourceNotFoundError:
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


class FailureThrottle:
    """Failed sign-ins per canonical username in a sliding window, bounded in memory."""

    def __init__(
        self,
        *,
        limit: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW_SECONDS,
        max_entries: int = MAX_TRACKED_USERS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None when it may try now."""
        now = self._monotonic()
        with self._lock:
            times = [t for t in self._failures.get(key, ()) if now - t < self.window]
            if times:
                self._failures[key] = times
            else:
                self._failures.pop(key, None)
            if len(times) < self.limit:
                return None
            return max(1, int(self.window - (now - times[0])) + 1)

    def failed(self, key: str) -> None:
        now = self._monotonic()
        with self._lock:
            times = [t for t in self._failures.pop(key, ()) if now - t < self.window]
            times.append(now)
            self._failures[key] = times[-self.limit :]
            if len(self._failures) > self.max_entries:
                expired = [k for k, v in self._failures.items() if now - v[-1] >= self.window]
                for k in expired:
                    del self._failures[k]
                while len(self._failures) > self.max_entries:
                    self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


THROTTLE = FailureThrottle()


def verify_basic(storage: Storage, authorization: str | None, *, throttle: FailureThrottle | None = None) -> str:
    """The username (as stored) behind a Basic header; Unauthorized / TooManyFailures otherwise."""
    throttle = throttle or THROTTLE
    credentials = parse_basic(authorization)
    if credentials is None:
        raise Unauthorized("this operation needs HTTP Basic credentials", "AuthenticationRequired")
    username, password = credentials
    key = canonical_username(username)
    wait = throttle.retry_after(key)
    if wait is not None:
        logger.warning("Basic sign-in throttled for user %s", key_hash(key)[:12])
        raise TooManyFailures(wait)
    entity: Any = None
    if len(username) <= 128 and len(password) <= MAX_PASSWORD_LENGTH:
        try:
            entity = storage.table(TABLE).get_entity(PARTITION, key_hash(key))
        except ResourceNotFoundError:
            entity = None
    ok = False
    try:
        if entity is not None:
            _, n, r, p = str(entity.get("Params", f"scrypt:{SCRYPT_N}:{SCRYPT_R}:{SCRYPT_P}")).split(":")
            salt = base64.b64decode(entity["Salt"])
            expected = base64.b64decode(entity["Hash"])
            ok = hmac.compare_digest(_scrypt(password[:MAX_PASSWORD_LENGTH], salt, int(n), int(r), int(p)), expected)
        else:
            hmac.compare_digest(_scrypt(password[:MAX_PASSWORD_LENGTH], _DUMMY_SALT), _DUMMY_HASH)
    except (KeyError, ValueError, binascii.Error):
        logger.error("the stored record of a local user is damaged; refusing the sign-in")
        ok = False
    if not ok:
        throttle.failed(key)
        raise Unauthorized("the user name or password is not valid", "InvalidCredentials")
    throttle.succeeded(key)
    return str(entity.get("Username") or username)
