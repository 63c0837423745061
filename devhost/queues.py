"""Queue triggers: poll Azure Storage queues (Azurite locally) the way the Functions host does.

The behaviour an app relies on is reproduced, because Junction's run worker depends on it
(a run retried 5 times without success is kept in the poison queue: docs/devhost.md, "Queue triggers"):

* the queue (and later the poison queue) is created when missing;
* when the queue is empty, polling backs off exponentially up to ``maxPollingInterval``;
* up to ``batchSize`` messages are received at once and run concurrently; a new batch is fetched
  as soon as no more than ``newBatchThreshold`` (default ``batchSize / 2``) are still running
  (waiting for them is not polling an empty queue: no back-off);
* with ``messageEncoding`` base64 the body is decoded; a message that is not base64 goes straight
  to the poison queue, as in the host's storage extension v5;
* success deletes the message; a failure makes it visible again after ``visibilityTimeout``,
  unless it has been dequeued ``maxDequeueCount`` times: then its original text is copied to
  ``<queue>-poison`` and it is deleted;
* a message received with a dequeue count already past ``maxDequeueCount`` (its last attempt
  never finished: the host died while it ran) goes to ``<queue>-poison`` without being run.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime
import logging
import os
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueMessage

from devhost.config import QueueOptions, expand_connection_string
from devhost.functions import FunctionInfo

logger = logging.getLogger(__name__)

RECEIVE_VISIBILITY_SECONDS = 600  # what the host uses while a message is being processed
MIN_POLL_SECONDS = 0.1


class DevhostQueueMessage(func.QueueMessage):
    """``func.QueueMessage`` with the metadata the worker fills in (its constructor cannot)."""

    def __init__(
        self,
        *,
        id: str | None,  # noqa: A002 - the worker's name
        body: bytes,
        pop_receipt: str | None,
        dequeue_count: int | None,
        insertion_time: datetime.datetime | None,
        expiration_time: datetime.datetime | None,
        time_next_visible: datetime.datetime | None,
    ) -> None:
        super().__init__(id=id, body=body, pop_receipt=pop_receipt)
        self._dequeue_count = dequeue_count
        self._insertion_time = insertion_time
        self._expiration_time = expiration_time
        self._time_next_visible = time_next_visible

    @property
    def dequeue_count(self) -> int | None:
        return self._dequeue_count

    @property
    def insertion_time(self) -> datetime.datetime | None:
        return self._insertion_time

    @property
    def expiration_time(self) -> datetime.datetime | None:
        return self._expiration_time

    @property
    def time_next_visible(self) -> datetime.datetime | None:
        return self._time_next_visible


def queue_client(connection_setting: str, queue_name: str, environ: dict[str, str] | None = None) -> QueueClient:
    """A client for the queue, from the app setting the binding names (connection string, or the
    identity-based ``<setting>__queueServiceUri`` / ``__accountName`` form used in Azure)."""
    env = os.environ if environ is None else environ
    value = env.get(connection_setting) or env.get(f"AzureWebJobs{connection_setting}")
    if value:
        return QueueClient.from_connection_string(expand_connection_string(value), queue_name)
    service_uri = env.get(f"{connection_setting}__queueServiceUri") or env.get(f"{connection_setting}__serviceUri")
    account = env.get(f"{connection_setting}__accountName")
    if not service_uri and account:
        service_uri = f"https://{account}.queue.core.windows.net"
    if not service_uri:
        raise LookupError(
            f"app setting {connection_setting!r} is not set (a connection string, or {connection_setting}__queueServiceUri)"
        )
    from azure.identity import DefaultAzureCredential

    client_id = env.get(f"{connection_setting}__clientId")
    credential = DefaultAzureCredential(managed_identity_client_id=client_id) if client_id else DefaultAzureCredential()
    return QueueClient(service_uri, queue_name, credential=credential)


class QueueListener:
    """Polls one queue for one queue-triggered function until ``stop`` is set."""

    def __init__(
        self,
        function: FunctionInfo,
        options: QueueOptions,
        executor: Executor,
        client_factory: Callable[[str, str], QueueClient] = queue_client,
        lease: float = RECEIVE_VISIBILITY_SECONDS,
    ) -> None:
        self.function = function
        # How long a received message stays invisible; renewed every half lease while it runs, so
        # only a crashed host (never a slow function) lets it reappear, after at most one lease.
        self.lease = max(1, int(lease))
        self.options = options
        self.executor = executor
        self.queue_name = str(function.trigger["queueName"]).lower()
        self.connection = str(function.trigger.get("connection") or "AzureWebJobsStorage")
        self.client = client_factory(self.connection, self.queue_name)
        self.poison = client_factory(self.connection, f"{self.queue_name}-poison")
        # Storage calls are blocking; a small pool of their own keeps them off the functions' pool.
        self.io = ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"devhost-q-{self.queue_name}")
        self.running: set[asyncio.Task[None]] = set()
        self.threshold = (
            options.new_batch_threshold if options.new_batch_threshold is not None else options.batch_size // 2
        )

    async def _io(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.io, lambda: call(*args, **kwargs))

    async def _ensure_queue(self, client: QueueClient) -> None:
        try:
            await self._io(client.create_queue)
        except ResourceExistsError:
            pass

    async def run(self, stop: asyncio.Event, grace: float = 5.0) -> None:
        """Poll until ``stop``; then give in-flight messages ``grace`` seconds to finish."""
        delay = 0.0
        ready = False
        try:
            while not stop.is_set():
                try:
                    if not ready:
                        await self._ensure_queue(self.client)
                        ready = True
                        logger.info("listening on queue %s for %s", self.queue_name, self.function.name)
                    received = await self._receive_batch()
                    if received:
                        delay = 0.0
                        await self._wait_for_new_batch_threshold(stop)
                    else:
                        delay = min(self.options.max_polling_interval, max(MIN_POLL_SECONDS, delay * 2))
                except Exception as exc:  # noqa: BLE001 - storage down: keep the host up and retry
                    ready = False
                    delay = min(max(self.options.max_polling_interval, 1.0), max(1.0, delay * 2))
                    logger.warning(
                        "queue %s: %s: %s; retrying in %.1f s", self.queue_name, type(exc).__name__, exc, delay
                    )
                if delay:
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=delay)
                    except TimeoutError:
                        pass
                else:
                    await asyncio.sleep(0)
        finally:
            if self.running:
                logger.info("queue %s: waiting for %d message(s) in flight", self.queue_name, len(self.running))
                await asyncio.wait(set(self.running), timeout=grace)
            self.io.shutdown(wait=False, cancel_futures=True)

    async def _wait_for_new_batch_threshold(self, stop: asyncio.Event) -> None:
        """After a batch, wait until no more than ``newBatchThreshold`` messages run, then poll
        again at once: the host's ``QueueListener.WaitForNewBatchThreshold``. A busy listener is
        not an idle queue, so it never backs off towards ``maxPollingInterval`` while it waits."""
        if len(self.running) <= self.threshold:
            return
        stopped = asyncio.create_task(stop.wait())
        try:
            while len(self.running) > self.threshold and not stop.is_set():
                await asyncio.wait({*self.running, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopped

    async def _receive_batch(self) -> int:
        wanted = max(1, min(32, self.options.batch_size))
        messages: list[QueueMessage] = await self._io(
            lambda: list(
                self.client.receive_messages(
                    messages_per_page=wanted, max_messages=wanted, visibility_timeout=self.lease
                )
            )
        )
        for message in messages:
            task = asyncio.create_task(self._process(message))
            self.running.add(task)
            task.add_done_callback(self.running.discard)
        return len(messages)

    def _decode(self, message: QueueMessage) -> bytes | None:
        content = message.content
        raw = content if isinstance(content, bytes) else (content or "").encode("utf-8")
        if self.options.message_encoding != "base64":
            return raw
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return None

    async def _process(self, message: QueueMessage) -> None:
        if (message.dequeue_count or 0) > self.options.max_dequeue_count:
            # Its last attempt never finished (the host crashed or was stopped while it ran): the host
            # moves such a message to the poison queue *without running it* (QueueProcessor
            # BeginProcessingMessageAsync), so the app's poison handler is what ends it.
            logger.error(
                "queue %s: message %s has been dequeued %d times (more than maxDequeueCount %d); moving it to "
                "%s-poison without running it",
                self.queue_name,
                message.id,
                message.dequeue_count,
                self.options.max_dequeue_count,
                self.queue_name,
            )
            await self._poison(message)
            return
        body = self._decode(message)
        if body is None:
            logger.error(
                "queue %s: message %s is not base64 (messageEncoding is base64); moving it to %s-poison",
                self.queue_name,
                message.id,
                self.queue_name,
            )
            await self._poison(message)
            return
        argument = DevhostQueueMessage(
            id=message.id,
            body=body,
            pop_receipt=message.pop_receipt,
            dequeue_count=message.dequeue_count,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on,
        )
        # The host always renews the lease of a running message (every half lease), so only a
        # crashed host, never a slow function, lets a message be handed out again.
        renewal = asyncio.create_task(self._renew(message))
        try:
            await self.function.invoke(argument, self.executor)
        except Exception:  # noqa: BLE001 - a failed invocation is retried or poisoned, never fatal
            logger.exception(
                "function %s failed on message %s (dequeue count %s)",
                self.function.name,
                message.id,
                message.dequeue_count,
            )
            await self._stop_renewal(renewal)
            await self._failed(message)
            return
        await self._stop_renewal(renewal)
        try:
            await self._io(self.client.delete_message, message.id, message.pop_receipt)
        except ResourceNotFoundError:
            logger.warning("queue %s: message %s was already gone when deleted", self.queue_name, message.id)
        logger.info("function %s processed message %s", self.function.name, message.id)

    async def _renew(self, message: QueueMessage) -> None:
        """Keep a running message invisible, as the host renews its lease.

        The new pop receipt is written back into ``message`` so deleting or releasing it works."""
        while True:
            await asyncio.sleep(self.lease / 2)
            try:
                updated = await self._io(
                    self.client.update_message, message.id, pop_receipt=message.pop_receipt, visibility_timeout=self.lease
                )
                message.pop_receipt = updated.pop_receipt
            except Exception as exc:  # noqa: BLE001 - storage down: the message may reappear; the app copes
                logger.warning("queue %s: could not renew message %s: %s", self.queue_name, message.id, type(exc).__name__)

    @staticmethod
    async def _stop_renewal(renewal: asyncio.Task[None] | None) -> None:
        if renewal is not None:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal

    async def _failed(self, message: QueueMessage) -> None:
        if (message.dequeue_count or 0) >= self.options.max_dequeue_count:
            logger.error(
                "queue %s: message %s failed %d times; moving it to %s-poison",
                self.queue_name,
                message.id,
                message.dequeue_count,
                self.queue_name,
            )
            await self._poison(message)
            return
        try:
            await self._io(
                self.client.update_message,
                message.id,
                pop_receipt=message.pop_receipt,
                visibility_timeout=int(self.options.visibility_timeout),
            )
        except ResourceNotFoundError:
            logger.warning("queue %s: message %s vanished before it could be released", self.queue_name, message.id)

    async def _poison(self, message: QueueMessage) -> None:
        """Copy the original text (still encoded as it was stored) and delete the original."""
        await self._ensure_queue(self.poison)
        content = message.content
        text = content.decode("utf-8") if isinstance(content, bytes) else content
        await self._io(self.poison.send_message, text)
        try:
            await self._io(self.client.delete_message, message.id, message.pop_receipt)
        except ResourceNotFoundError:
            logger.warning("queue %s: message %s was already gone when poisoned", self.queue_name, message.id)
