"""A small FunctionApp used only by devhost's tests: every kind of route and trigger devhost serves.

Queue names come from the environment so each test run uses its own queues in the shared Azurite.
The queue function reports what it saw to ``<queue>-done`` (success) or ``<queue>-attempts``
(every failing attempt), so tests observe real side effects instead of mocks.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import azure.functions as func
from azure.storage.queue import QueueClient

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

WORK_QUEUE = os.environ.get("SAMPLE_QUEUE", "sample-work")
TIMER_QUEUE = os.environ.get("SAMPLE_TIMER_QUEUE", "")


def _queue(name: str) -> QueueClient:
    client = QueueClient.from_connection_string(os.environ["AzureWebJobsStorage"], name)
    try:
        client.create_queue()
    except Exception:  # noqa: BLE001 - already exists
        pass
    return client


def _describe(req: func.HttpRequest, function: str) -> func.HttpResponse:
    body = {
        "function": function,
        "method": req.method,
        "url": req.url,
        "route": dict(req.route_params),
        "params": dict(req.params),
        "headers": {k.lower(): v for k, v in req.headers.items()},
        "bodyLength": len(req.get_body() or b""),
        "setting": os.environ.get("SAMPLE_SETTING"),
    }
    return func.HttpResponse(json.dumps(body), mimetype="application/json", headers={"X-Sample": "yes"})


@app.function_name("item")
@app.route(route="items/{id:int}", methods=["GET"])
def item(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req, "item")


@app.function_name("itemByName")
@app.route(route="items/{name}", methods=["GET", "DELETE"])
def item_by_name(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req, "itemByName")


@app.function_name("createItem")
@app.route(route="items", methods=["POST"])
def create_item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.get_body(), status_code=201, mimetype="text/plain")


@app.function_name("optional")
@app.route(route="opt/{name?}", methods=["GET"])
def optional(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req, "optional")


@app.function_name("echo")
@app.route(route="echo", methods=["GET", "POST", "PUT"])
async def echo(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req, "echo")


# The host tries routes in the order of the function names, first match wins: a catch-all must
# have a name that sorts after every other HTTP function, or it takes their requests.
@app.function_name("zCatchAll")
@app.route(route="{*path}", methods=["GET", "POST"])
def catch_all(req: func.HttpRequest) -> func.HttpResponse:
    return _describe(req, "zCatchAll")


@app.function_name("boom")
@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("SECRET-DETAIL-do-not-leak")


@app.function_name("nothing")
@app.route(route="nothing", methods=["GET"])
def nothing(req: func.HttpRequest) -> None:
    return None  # no HTTP response: the host answers 500


@app.function_name("work")
@app.queue_trigger(arg_name="msg", queue_name=WORK_QUEUE, connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    text = msg.get_body().decode("utf-8")
    report = {
        "body": text,
        "id": msg.id,
        "dequeueCount": msg.dequeue_count,
        "popReceipt": bool(msg.pop_receipt),
        "insertionTime": msg.insertion_time.isoformat() if msg.insertion_time else None,
        "ranAt": datetime.now(UTC).isoformat(),
    }
    if text.startswith("fail"):
        _queue(f"{WORK_QUEUE}-attempts").send_message(json.dumps(report))
        raise ValueError("this message always fails")
    _queue(f"{WORK_QUEUE}-done").send_message(json.dumps(report))


if TIMER_QUEUE:

    @app.function_name("tick")
    @app.timer_trigger(schedule="* * * * * *", arg_name="timer", run_on_startup=True)
    def tick(timer: func.TimerRequest) -> None:
        _queue(TIMER_QUEUE).send_message(json.dumps({"pastDue": timer.past_due}))
