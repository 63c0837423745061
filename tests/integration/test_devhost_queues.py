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
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from devhost.azurite import Azurite
from devhost.testing import DevhostProcess

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
