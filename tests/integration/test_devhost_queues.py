"""Queue and timer triggers in a real devhost subprocess against the test session's Azurite.

The sample app's queue function reports each success to ``<queue>-done`` and each failing attempt
to ``<queue>-attempts``, so retries and the poison queue are observed from outside, as in Azure.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from devhost.azurite import Azurite
from devhost.testing import DevhostProcess, DevhostStartError

SAMPLE_APP = Path(__file__).resolve().parents[1] / "support" / "sample_app"


def sample_copy(folder: Path) -> Path:
    root = folder / "app"
    shutil.copytree(SAMPLE_APP, root, ignore=shutil.ignore_patterns("__pycache__", ".azurite"))
    (root / "local.settings.json").write_text(
        json.dumps({"Values": {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}})
    )
    return root


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Queues:
    def __init__(self, connection_string: str, name: str) -> None:
        self.connection_string = connection_string
        self.name = name

    def client(self, suffix: str = "") -> QueueClient:
        return QueueClient.from_connection_string(self.connection_string, self.name + suffix)

    def texts(self, suffix: str) -> list[str]:
        client = self.client(suffix)
        try:
            return [m.content for m in client.peek_messages(max_messages=32)]
        except Exception:  # noqa: BLE001 - the queue does not exist yet
            return []

    def reports(self, suffix: str, body: str) -> list[dict[str, Any]]:
        return [r for r in map(json.loads, self.texts(suffix)) if r["body"] == body]


@pytest.fixture(scope="module")
def queues(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Queues]:
    folder = tmp_path_factory.mktemp("devhost-queues")
    name = f"dq-{uuid.uuid4().hex[:12]}"
    env = {"AzureWebJobsStorage": azurite.connection_string, "SAMPLE_QUEUE": name}
    with DevhostProcess(sample_copy(folder), env=env, log_path=folder / "devhost.log"):
        yield Queues(azurite.connection_string, name)


def send(queues: Queues, text: str) -> None:
    client = queues.client()
    wait_for(lambda: client.get_queue_properties(), what="devhost to create the queue")
    client.send_message(base64.b64encode(text.encode()).decode())


def test_a_message_is_processed_once_and_deleted(queues: Queues) -> None:
    body = f"hello-{uuid.uuid4().hex}"
    send(queues, body)
    (report,) = wait_for(lambda: queues.reports("-done", body), what="the function's report")
    assert report["dequeueCount"] == 1
    assert report["popReceipt"] is True
    assert report["insertionTime"]
    assert report["id"]
    wait_for(lambda: not queues.texts(""), timeout=5, what="the message to be deleted")
    time.sleep(0.5)
    assert len(queues.reports("-done", body)) == 1


def test_a_message_sent_with_a_visibility_delay_runs_once_after_it_becomes_visible(queues: Queues) -> None:
    """Schedules rely on it (core.runs.scheduler): a due time waits on the queue as an invisible
    message, and the function runs only once the message is visible, as the host receives only
    visible messages."""
    body = f"later-{uuid.uuid4().hex}"
    client = queues.client()
    wait_for(lambda: client.get_queue_properties(), what="devhost to create the queue")
    client.send_message(base64.b64encode(body.encode()).decode(), visibility_timeout=3)
    (report,) = wait_for(lambda: queues.reports("-done", body), what="the function's report")
    inserted = datetime.fromisoformat(report["insertionTime"])
    assert datetime.fromisoformat(report["ranAt"]) >= inserted + timedelta(seconds=3)
    assert report["dequeueCount"] == 1


def test_a_failing_message_is_poisoned_after_exactly_five_attempts(queues: Queues) -> None:
    body = f"fail-{uuid.uuid4().hex}"
    original = base64.b64encode(body.encode()).decode()
    send(queues, body)
    wait_for(lambda: original in queues.texts("-poison"), what="the poison queue")
    time.sleep(0.6)  # a sixth attempt would show up by now (visibilityTimeout 0, polling 0.2 s)
    attempts = queues.reports("-attempts", body)
    assert sorted(a["dequeueCount"] for a in attempts) == [1, 2, 3, 4, 5]
    assert queues.texts("-poison").count(original) == 1
    assert original not in queues.texts("")


def test_a_message_that_is_not_base64_goes_straight_to_poison(queues: Queues) -> None:
    text = f"not base64 {uuid.uuid4().hex}!"
    send_raw = queues.client()
    wait_for(lambda: send_raw.get_queue_properties(), what="the queue")
    send_raw.send_message(text)
    wait_for(lambda: text in queues.texts("-poison"), what="the poison queue")
    assert not [t for t in queues.texts("-attempts") if text in t]


def test_a_message_whose_last_attempt_never_finished_is_poisoned_without_running(
    azurite: Azurite, tmp_path: Path
) -> None:
    """A message dequeued maxDequeueCount times whose last attempt did not finish (the host died)
    comes back with dequeue count 6: the host moves it to the poison queue without running it."""
    queues = Queues(azurite.connection_string, f"dp-{uuid.uuid4().hex[:12]}")
    client = queues.client()
    client.create_queue()
    body = f"crashed-{uuid.uuid4().hex}"
    original = base64.b64encode(body.encode()).decode()
    client.send_message(original)
    for _ in range(5):  # five attempts that each "crashed": received, never deleted
        (message,) = client.receive_messages(max_messages=1, visibility_timeout=30)
        client.update_message(message.id, message.pop_receipt, visibility_timeout=0)
    assert message.dequeue_count == 5
    env = {"AzureWebJobsStorage": azurite.connection_string, "SAMPLE_QUEUE": queues.name}
    with DevhostProcess(sample_copy(tmp_path), env=env, args=["--no-timers"]) as process:
        wait_for(lambda: original in queues.texts("-poison"), what="the poison queue")
        assert original not in queues.texts("")
        send(queues, "after")  # the listener is still polling: a later message runs normally
        wait_for(lambda: queues.reports("-done", "after"), what="the next message")
        assert not queues.reports("-done", body) and not queues.reports("-attempts", body)
        assert "without running it" in process.log_text()


def test_timer_runs_on_startup_and_on_schedule(azurite: Azurite, tmp_path: Path) -> None:
    name = f"dt-{uuid.uuid4().hex[:12]}"
    env = {"AzureWebJobsStorage": azurite.connection_string, "SAMPLE_TIMER_QUEUE": name}
    with DevhostProcess(sample_copy(tmp_path), env=env, args=["--no-queues"]) as process:
        client = QueueClient.from_connection_string(azurite.connection_string, name)

        def ticks() -> list[dict[str, Any]]:
            try:
                return [json.loads(m.content) for m in client.peek_messages(max_messages=32)]
            except Exception:  # noqa: BLE001 - not created yet
                return []

        seen = wait_for(lambda: len(ticks()) >= 3 and ticks(), timeout=10, what="three ticks")
        assert seen[0] == {"pastDue": False}
        assert "tick: timerTrigger * * * * * *" in process.log_text()


STRICT_APP = '''
import os
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.function_name("slow")
@app.route(route="slow", methods=["GET"])
def slow(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(4)
    return func.HttpResponse("finished")


@app.function_name("quick")
@app.route(route="quick", methods=["GET"])
def quick(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("quick")


@app.function_name("returns")
@app.queue_trigger(arg_name="msg", queue_name=os.environ["STRICT_QUEUE"], connection="AzureWebJobsStorage")
def returns(msg: func.QueueMessage) -> str:
    return "a value, and no $return binding"


@app.function_name("tock")
@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True)
def tock(timer: func.TimerRequest) -> int:
    return 1
'''


def strict_app(folder: Path, host: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function_app.py").write_text(STRICT_APP)
    (folder / "host.json").write_text(json.dumps({"version": "2.0", **host}))
    return folder


def test_the_host_s_rules_for_running_functions(azurite: Azurite, tmp_path: Path) -> None:
    """functionTimeout is enforced (the invocation fails: 500), and a queue or timer function
    that returns a value without a $return binding fails, as under the Python worker."""
    import httpx

    name = f"ds-{uuid.uuid4().hex[:12]}"
    host = {"functionTimeout": "00:00:01", "extensions": {"queues": {"maxDequeueCount": 1, "maxPollingInterval": "00:00:00.2"}}}
    env = {"AzureWebJobsStorage": azurite.connection_string, "STRICT_QUEUE": name}
    with DevhostProcess(strict_app(tmp_path / "strict", host), env=env) as process:
        assert httpx.get(f"{process.base_url}/api/slow", timeout=30).status_code == 500
        assert httpx.get(f"{process.base_url}/api/quick", timeout=30).text == "quick"
        queues = Queues(azurite.connection_string, name)
        send(queues, "hello")
        original = base64.b64encode(b"hello").decode()
        wait_for(lambda: original in queues.texts("-poison"), what="the failed message in the poison queue")
        log = process.log_text()
    assert "Timeout value of 1 s (functionTimeout) exceeded by function 'slow'" in log
    assert "function 'returns' returned a str but has no $return output binding" in log
    assert "function 'tock' returned a int but has no $return output binding" in log


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ({"extensions": {"queues": {"batchSize": 33}}}, "batchSize: at most 32"),
        ({"functionTimeout": "00:00:00"}, "functionTimeout"),
    ],
)
def test_host_json_the_host_refuses_stops_devhost(tmp_path: Path, host: dict[str, Any], message: str) -> None:
    root = strict_app(tmp_path / "refused", host)
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=false", "STRICT_QUEUE": "unused"}
    with pytest.raises(DevhostStartError, match=message):
        DevhostProcess(root, env=env, args=["--no-azurite"]).start()


@pytest.mark.parametrize("schedule", ["0 0 0 * * 7", "0 0 0 ? * *", "0 0 12 * * MON#2", "0 0 0 30 2 *"])
def test_a_function_with_an_invalid_schedule_fails_to_load(tmp_path: Path, schedule: str) -> None:
    root = strict_app(tmp_path / "schedule", {})
    source = (root / "function_app.py").read_text().replace('schedule="0 0 0 1 1 *"', f"schedule={schedule!r}")
    (root / "function_app.py").write_text(source)
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=false", "STRICT_QUEUE": "unused"}
    with pytest.raises(DevhostStartError, match="function 'tock' fails to load"):
        DevhostProcess(root, env=env, args=["--no-azurite", "--no-timers"]).start()


def test_a_running_message_s_lease_is_always_renewed(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the host's own lease (not only a --message-lease), a message whose function runs
    longer than the lease is renewed and never handed out twice."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import azure.functions as func

    from devhost import queues as devhost_queues
    from devhost.config import QueueOptions
    from devhost.functions import index_functions

    lease = 2
    monkeypatch.setattr(devhost_queues, "RECEIVE_VISIBILITY_SECONDS", lease)  # the host's lease, made short
    name = f"dl-{uuid.uuid4().hex[:12]}"
    calls: list[int] = []
    app = func.FunctionApp()

    @app.function_name("long")
    @app.queue_trigger(arg_name="msg", queue_name=name, connection="AzureWebJobsStorage")
    def long(msg: func.QueueMessage) -> None:
        calls.append(msg.dequeue_count or 0)
        time.sleep(lease * 2.5)

    (function,) = index_functions(app)
    executor = ThreadPoolExecutor(max_workers=4)

    def client(connection: str, queue: str) -> QueueClient:
        return QueueClient.from_connection_string(azurite.connection_string, queue)

    async def run() -> None:
        listener = devhost_queues.QueueListener(
            function, QueueOptions(max_polling_interval=0.2), executor, client, lease=devhost_queues.RECEIVE_VISIBILITY_SECONDS
        )
        stop = asyncio.Event()
        task = asyncio.create_task(listener.run(stop, grace=lease * 3))
        queue = client("", name)
        while True:
            try:
                queue.send_message(base64.b64encode(b"long").decode())
                break
            except Exception:  # noqa: BLE001 - the listener creates the queue
                await asyncio.sleep(0.1)
        while not calls:
            await asyncio.sleep(0.1)
        await asyncio.sleep(lease * 3)  # past the lease, while the function still runs
        stop.set()
        await task

    asyncio.run(run())
    executor.shutdown(wait=True)
    assert calls == [1]


def test_a_busy_listener_polls_again_once_below_new_batch_threshold_without_backing_off(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host waits for running messages to drop to newBatchThreshold and then polls at once
    (QueueListener.WaitForNewBatchThreshold); only an empty receive backs off. devhost backed off
    while busy too, so a batch that took a while left the next one waiting up to
    maxPollingInterval. Here no pause towards maxPollingInterval may happen while messages run."""
    import asyncio
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import azure.functions as func

    from devhost import queues as devhost_queues
    from devhost.config import QueueOptions
    from devhost.functions import index_functions

    name = f"db-{uuid.uuid4().hex[:12]}"
    calls: list[str] = []
    release = threading.Event()
    app = func.FunctionApp()

    @app.function_name("held")
    @app.queue_trigger(arg_name="msg", queue_name=name, connection="AzureWebJobsStorage")
    def held(msg: func.QueueMessage) -> None:
        calls.append(msg.get_body().decode())
        release.wait(30)

    (function,) = index_functions(app)
    executor = ThreadPoolExecutor(max_workers=4)

    def client(connection: str, queue: str) -> QueueClient:
        return QueueClient.from_connection_string(azurite.connection_string, queue)

    listener = devhost_queues.QueueListener(function, QueueOptions(batch_size=1, new_batch_threshold=0, max_polling_interval=600), executor, client)
    pauses_while_busy: list[float] = []
    real_wait_for = asyncio.wait_for

    async def watched_wait_for(awaitable: Any, timeout: float | None) -> Any:
        if listener.running and timeout:
            pauses_while_busy.append(timeout)
        return await real_wait_for(awaitable, timeout)

    monkeypatch.setattr(devhost_queues.asyncio, "wait_for", watched_wait_for)

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(listener.run(stop))
        queue = client("", name)
        while True:
            try:
                for text in ("first", "second"):
                    queue.send_message(base64.b64encode(text.encode()).decode())
                break
            except Exception:  # noqa: BLE001 - the listener creates the queue
                await asyncio.sleep(0.1)
        while not calls:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the first message runs; a listener that backs off would pause now
        release.set()
        while len(calls) < 2 or listener.running:
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(run())
    executor.shutdown(wait=True)
    assert sorted(calls) == ["first", "second"]
    assert pauses_while_busy == []
