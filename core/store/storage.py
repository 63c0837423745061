"""Azure Storage access: one set of clients per process, tables created on first use.

Every repository goes through ``Storage``, the only module of ``core`` (with ``core.store.errors``)
that imports the Azure SDKs: one place knows how clients are built (connection string locally,
managed identity in Azure), which tables, queue and container there are (``core.store.tables``)
and how large values are laid out (docs/storage.md).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from azure.core import MatchConditions
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableEntity, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.blob import ExponentialRetry as BlobRetry
from azure.storage.queue import ExponentialRetry as QueueRetry
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy
from requests.utils import get_environ_proxies

from core.kernel.settings import Settings, StorageSettings, get_settings
from core.store.errors import EntityChanged, EntityExists, EntityMissing, StorageFailure
from core.store.limits import MAX_ENTITY_BYTES, check_entity, check_request_body, entity_size
from core.store.tables import TABLES, payload_container, run_queue, schedule_queue

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

logger = logging.getLogger(__name__)

# Table Storage limits (core.store.limits): a property holds at most 64 KiB, an entity at most
# 1 MiB by Azure's estimate. Values are stored as UTF-8 bytes in binary properties of CHUNK bytes
# each. All the packed values of one entity share ENTITY_BUDGET: the entity, as it will be stored
# (after a merge: with what it already holds), stays under it, and the values that do not fit go
# to blobs, largest first. A value larger than INLINE_LIMIT always goes to a blob.
CHUNK = 60_000
INLINE_LIMIT = 12 * CHUNK
ENTITY_BUDGET = 768 * 1024

# Bounded waits: a caller gets 503 quickly when storage is down rather than hanging.
_CLIENT_OPTIONS: dict[str, Any] = {
    "connection_timeout": 5,
    "read_timeout": 15,
    "retry_total": 2,
    "retry_backoff_factor": 0.4,
    "retry_backoff_max": 2,
}

IF_UNCHANGED = MatchConditions.IfNotModified
"""The ``match_condition`` of a write that must find the entity as it was read (its ETag)."""
Entity = TableEntity
"""An entity as read or inserted: a dict whose ``metadata`` holds its ETag."""

# The Azure SDK logs every request and response it sends, headers included, at INFO
# (azure.core.pipeline.policies.http_logging_policy). Under the Functions host every record of the
# app's loggers goes to the customer's Application Insights as a User log: over a hundred per call.
SDK_LOGGERS = ("azure",)
SDK_LOG_LEVEL = logging.WARNING


def quiet_sdk_logging() -> None:
    """Keep the Azure SDK's loggers at WARNING unless someone already chose a level for them
    (a developer debugging storage may set ``azure`` to DEBUG before the clients are built)."""
    for name in SDK_LOGGERS:
        sdk = logging.getLogger(name)
        if sdk.level == logging.NOTSET:
            sdk.setLevel(SDK_LOG_LEVEL)


class RequestCounter:
    """Counts storage requests, so tests and benchmarks can see what one operation costs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.log: list[str] = []
        self.keep_log = False

    def __call__(self, request: Any) -> None:
        with self._lock:
            self.total += 1
            if self.keep_log:
                self.log.append(f"{request.http_request.method} {request.http_request.url.split('?')[0]}")

    def reset(self, *, keep_log: bool = False) -> None:
        with self._lock:
            self.total = 0
            self.log = []
            self.keep_log = keep_log


class Storage:
    """Clients for the tables, the run queue and the payload container of one deployment."""

    def __init__(
        self,
        storage: StorageSettings,
        *,
        table_prefix: str = "junction",
        pool_size: int = 32,
    ) -> None:
        quiet_sdk_logging()
        self.counter = RequestCounter()
        self._prefix = table_prefix
        self._run_queue = run_queue(table_prefix)
        self._schedule_queue = schedule_queue(table_prefix)
        self._container_name = payload_container(table_prefix)
        self._lock = threading.Lock()
        self._tables: dict[str, TableClient] = {}
        self._queues: dict[str, QueueClient] = {}
        self._container: ContainerClient | None = None
        options = {**_CLIENT_OPTIONS, "raw_request_hook": self.counter, "transport": _pooled_transport(pool_size)}
        # Every table write is measured as Azure measures it before it is sent (core.store.limits).
        table_options = {**options, "raw_request_hook": self._table_request}
        # Queue and blob clients ignore retry_backoff_factor: their own ExponentialRetry starts at
        # 15 s. Left as is, a queue outage would hold an Accept for most of a minute.
        queue_options = {**options, "retry_policy": _quick_retry("queue"), "transport": _pooled_transport(pool_size)}
        blob_options = {**options, "retry_policy": _quick_retry("blob"), "transport": _pooled_transport(pool_size)}
        if storage.connection_string:
            conn = storage.connection_string
            self._table_service = TableServiceClient.from_connection_string(conn, **table_options)
            self._queue_service = QueueServiceClient.from_connection_string(conn, **queue_options)
            self._blob_service = BlobServiceClient.from_connection_string(conn, **blob_options)
        else:
            credential = _identity_credential(storage)
            self._table_service = TableServiceClient(storage.table_uri or "", credential=credential, **table_options)
            self._queue_service = QueueServiceClient(storage.queue_uri or "", credential=credential, **queue_options)
            self._blob_service = BlobServiceClient(storage.blob_uri or "", credential=credential, **blob_options)

    def _table_request(self, request: Any) -> None:
        self.counter(request)
        check_request_body(request.http_request.method, request.http_request.content)

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        return cls(
            settings.storage,
            table_prefix=settings.table_prefix,
            pool_size=settings.worker_threads,
        )

    def table(self, name: str) -> TableClient:
        """The table ``<prefix><name>``, created the first time this process uses it; ``name`` is
        one of ``core.store.tables.TABLES``."""
        client = self._tables.get(name)
        if client is not None:
            return client
        if name not in TABLES:
            raise ValueError(f"{name!r} is not one of Junction's tables (core.store.tables)")
        with self._lock:
            client = self._tables.get(name)
            if client is None:
                client = self._table_service.get_table_client(f"{self._prefix}{name}")
                try:
                    client.create_table()
                except EntityExists:
                    pass
                self._tables[name] = client
        return client

    def queue(self, name: str | None = None) -> QueueClient:
        """A queue (default: the run queue), created on first use.

        Messages are base64 text, the encoding the Functions queue trigger expects by default.
        """
        name = name or self._run_queue
        client = self._queues.get(name)
        if client is not None:
            return client
        with self._lock:
            client = self._queues.get(name)
            if client is None:
                client = self._queue_service.get_queue_client(
                    name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
                )
                try:
                    client.create_queue()
                except EntityExists:
                    pass
                self._queues[name] = client
        return client

    @property
    def run_queue_name(self) -> str:
        return self._run_queue

    @property
    def schedule_queue_name(self) -> str:
        return self._schedule_queue

    def container(self) -> ContainerClient:
        if self._container is None:
            with self._lock:
                if self._container is None:
                    container = self._blob_service.get_container_client(self._container_name)
                    try:
                        container.create_container()
                    except EntityExists:
                        pass
                    self._container = container
        return self._container

    def insert(self, name: str, entity: Mapping[str, Any]) -> Entity:
        """Insert ``entity`` into table ``name``; returns it as stored, with the ETag the insert
        returned in ``metadata`` (for a conditional write or delete later)."""
        stored = TableEntity(entity)
        written = self.table(name).create_entity(stored)
        stored._metadata = {"etag": written.get("etag"), "timestamp": written.get("date")}
        return stored

    # -- large values -------------------------------------------------------------------------

    def pack(self, name: str, data: bytes, blob_name: str) -> dict[str, Any]:
        """Properties holding one value on its own (prefer ``pack_entity``, which knows the rest
        of the entity and keeps it within the budget)."""
        return self._layout({}, {}, {name: data}, lambda _: blob_name, names=(name,))

    def pack_entity(self, entity: Mapping[str, Any], values: Mapping[str, bytes], blob_name: Callable[[str], str]) -> dict[str, Any]:
        """The whole entity to insert or replace: ``entity`` (keys and plain properties) plus each
        of ``values`` packed under the property name it is keyed by, within ``ENTITY_BUDGET``.

        EntityTooLarge (413) when even with every value in a blob the entity cannot be stored.
        """
        props = self._layout({}, entity, values, blob_name, names=tuple(values))
        full = {**entity, **props}
        check_entity(full)
        return full

    def pack_merge(
        self,
        stored: Mapping[str, Any],
        changes: Mapping[str, Any],
        values: Mapping[str, bytes],
        blob_name: Callable[[str], str],
        *,
        names: Collection[str],
        to_blobs: bool = False,
    ) -> dict[str, Any]:
        """The properties to merge into ``stored`` (the entity as it is in the table) so that the
        merged entity stays within ``ENTITY_BUDGET``.

        A merge never removes a property, so the budget counts what ``stored`` keeps: its plain
        properties, and its packed values (``names``) that this write leaves alone. Those may be
        moved to blobs to make room. Chunks a value no longer needs are overwritten with empty
        bytes. ``to_blobs`` puts every value in a blob (a record that must be as small as it can).
        """
        props = self._layout(stored, changes, values, blob_name, names=names, to_blobs=to_blobs)
        merged = {**stored, **changes, **props}
        check_entity(merged)
        return {"PartitionKey": stored["PartitionKey"], "RowKey": stored["RowKey"], **changes, **props}

    def _layout(
        self,
        stored: Mapping[str, Any],
        changes: Mapping[str, Any],
        values: Mapping[str, bytes],
        blob_name: Callable[[str], str],
        *,
        names: Collection[str],
        to_blobs: bool = False,
    ) -> dict[str, Any]:
        """The packed-value properties to write (see ``pack_merge``); uploads the blobs it uses."""
        owned = {prop for name in names for prop in stored if _belongs_to(prop, name)}
        final: dict[str, Any] = {k: v for k, v in stored.items() if k not in owned}
        final.update(changes)
        for name in names:  # a value once in a blob keeps its Blob property (retention deletes it)
            if stored.get(f"{name}Blob"):
                final[f"{name}Blob"] = stored[f"{name}Blob"]
        candidates: dict[str, bytes] = dict(values)
        kept = [n for n in names if n not in values and stored.get(f"{n}Parts")]
        for name in kept:  # inline values this write leaves alone still take their room
            candidates[name] = self.unpack(name, stored) or b""
        write: dict[str, Any] = {}
        to_blob: list[str] = []
        for name in sorted(candidates, key=lambda n: len(candidates[n])):
            data = candidates[name]
            stale = _chunk_indexes(name, stored)
            if name in kept:
                props = {p: stored[p] for p in stored if p in owned and _belongs_to(p, name)}
            else:
                props = _inline_props(name, data, stale)
            trial = {**final, **props}
            if not to_blobs and len(data) <= INLINE_LIMIT and entity_size(trial) <= ENTITY_BUDGET:
                final = trial
                if name not in kept:
                    write.update(props)
            else:
                to_blob.append(name)
        for name in to_blob:
            blob = blob_name(name)
            self.container().upload_blob(blob, candidates[name], overwrite=True)
            props = {f"{name}Parts": 0, f"{name}Blob": blob, **{f"{name}{i}": b"" for i in _chunk_indexes(name, stored)}}
            final.update(props)
            write.update(props)
        if entity_size(final) > MAX_ENTITY_BYTES:
            check_entity(final)
        return write

    def unpack(self, name: str, entity: Mapping[str, Any]) -> bytes | None:
        """The bytes stored by ``pack``, or None when the entity has no such value.

        A merge cannot remove a property, so a value first kept in a blob and later written inline
        leaves its ``Blob`` property behind; ``Parts`` says which write was last (0: the blob).
        """
        blob_name = entity.get(f"{name}Blob")
        count = entity.get(f"{name}Parts")
        if blob_name and not count:
            return bytes(self.container().download_blob(blob_name).readall())
        if count is None:
            return None
        return b"".join(_as_bytes(entity.get(f"{name}{i}")) for i in range(int(count)))

    def partition_has_rows(self, name: str, partition: str) -> bool:
        """Whether the partition of table ``name`` holds any entity: one item read, whatever its size."""
        pager = self.table(name).query_entities(
            "PartitionKey eq @pk", parameters={"pk": partition}, select=["RowKey"], results_per_page=1
        )
        return next(iter(pager), None) is not None

    def remove_each(self, name: str, found: Iterable[Entity], *, if_unchanged: bool = False) -> int:
        """Delete from table ``name`` each entity of ``found`` (a query of it that selected
        ``PartitionKey`` and ``RowKey``, its filter a literal at the caller); returns how many went.

        One already gone is skipped. With ``if_unchanged`` each delete is conditional on the ETag
        the query read, so an entity a request changed since then (a claim taken over, a bucket
        moved on) stays.
        """
        table = self.table(name)
        skipped: tuple[type[Exception], ...] = (EntityChanged, EntityMissing) if if_unchanged else (EntityMissing,)
        removed = 0
        for entity in found:
            condition = {"etag": entity.metadata["etag"], "match_condition": IF_UNCHANGED} if if_unchanged else {}
            try:
                table.delete_entity(entity["PartitionKey"], entity["RowKey"], **condition)
                removed += 1
            except skipped:
                pass
        return removed

    def delete_blob(self, blob_name: str) -> None:
        """Best effort; a blob that is already gone is deleted (retention tries every old run's
        input blob, which exists only for runs that never finished)."""
        try:
            self.container().delete_blob(blob_name)
        except EntityMissing:
            pass
        except StorageFailure:
            logger.warning("could not delete payload blob %s", blob_name)


class _EnvironmentOnce(requests.Session):
    """A session that reads the proxy and CA-bundle settings of the environment once per host.

    requests reads them (``os.environ``, the system's proxy settings, ``~/.netrc``) on every
    request: about a tenth of the CPU of a storage call (README, "Throughput, latency and cost per
    run"). The environment of a Functions worker does not change while it runs, so they are read
    on the first request to each host, as Junction's settings are read once. ``~/.netrc`` is not
    read at all: the SDK signs every storage request itself, and a netrc entry for the account
    would only replace that signature.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], tuple[dict[str, str], str | None]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        key = tuple(urlsplit(str(url))[:2])
        found = None if proxies else self._environment.get(key)  # type: ignore[arg-type]
        if found is None:
            no_proxy = proxies.get("no_proxy") if proxies else None
            found = (get_environ_proxies(str(url), no_proxy=no_proxy), os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"))
            if not proxies:
                self._environment[key] = found  # type: ignore[index]
        merged = dict(proxies or {})
        for scheme, proxy in found[0].items():
            merged.setdefault(scheme, proxy)
        if found[1] and (verify is True or verify is None):
            verify = found[1]
        return super().merge_environment_settings(url, merged, stream, verify, cert)


def _pooled_transport(pool_size: int) -> Any:
    """A requests transport that keeps up to ``pool_size`` connections per host, with a session
    that reads the environment once per host (``_EnvironmentOnce``).

    requests keeps 10 by default; every thread of the worker may be talking to storage at once,
    and a connection returned to a full pool is closed ("Connection pool is full, discarding
    connection"), so the next request pays for a new one.
    """
    class PooledTransport(RequestsTransport):
        def _init_session(self, session: Any) -> None:
            super()._init_session(session)
            for prefix in self._protocols:
                adapter = session.get_adapter(prefix)
                adapter._pool_maxsize = pool_size  # what HTTPAdapter keeps for pickling
                adapter.init_poolmanager(adapter._pool_connections, pool_size, block=adapter._pool_block)
            session.trust_env = False  # _EnvironmentOnce reads the environment itself, once

    session = _EnvironmentOnce()
    transport = PooledTransport(session=session, session_owner=True)
    transport._init_session(session)
    return transport


def _quick_retry(service: str) -> Any:
    """Two retries after about 0.5 s and 2.5 s, with each package's own retry class."""
    retry = QueueRetry if service == "queue" else BlobRetry
    return retry(initial_backoff=0.5, increment_base=2, retry_total=2, random_jitter_range=0.2)


def _belongs_to(prop: str, name: str) -> bool:
    """Whether ``prop`` is one of the properties that hold the packed value ``name``."""
    if not prop.startswith(name):
        return False
    rest = prop[len(name) :]
    return rest in ("Parts", "Blob") or rest.isdigit()


def _chunk_indexes(name: str, stored: Mapping[str, Any]) -> list[int]:
    return sorted(int(p[len(name) :]) for p in stored if p.startswith(name) and p[len(name) :].isdigit())


def _inline_props(name: str, data: bytes, stale: list[int]) -> dict[str, Any]:
    """``data`` split into chunks; chunks left from a longer earlier value are emptied."""
    parts = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
    props: dict[str, Any] = {f"{name}Parts": len(parts)}
    for index, part in enumerate(parts):
        props[f"{name}{index}"] = part
    for index in stale:
        if index >= len(parts):
            props[f"{name}{index}"] = b""
    return props


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    inner = getattr(value, "value", value)  # EntityProperty in some SDK versions
    return bytes(inner) if isinstance(inner, bytes | bytearray) else str(inner).encode()


def _identity_credential(storage: StorageSettings) -> TokenCredential:
    # cold start: azure.identity is large and only needed in Azure, not locally or in tests.
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if (storage.credential or "").lower() == "managedidentity":
        return ManagedIdentityCredential(client_id=storage.client_id) if storage.client_id else ManagedIdentityCredential()
    return DefaultAzureCredential(managed_identity_client_id=storage.client_id)


@functools.lru_cache(maxsize=1)
def get_storage() -> Storage:
    """The process's storage clients, created once and reused by every request."""
    return Storage.from_settings(get_settings())


def reset_for_tests() -> None:
    """Forget the process-wide settings and clients (tests switch environments)."""
    get_storage.cache_clear()
    get_settings.cache_clear()
