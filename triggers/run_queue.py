"""The queue-triggered worker that executes runs started by Accept, schedules and API calls, and
the function that ends runs whose message the host moved to the poison queue."""

from __future__ import annotations

import azure.functions as func

from core.kernel import telemetry
from core.kernel.settings import get_settings
from core.runs.messages import traceparent_of
from core.store.storage import get_storage
from core.store.tables import POISON_SUFFIX, run_queue_name
from triggers.telemetry import configure_telemetry

bp = func.Blueprint()
configure_telemetry(get_settings())


@bp.function_name("executeRun")
@bp.queue_trigger(arg_name="msg", queue_name=run_queue_name(), connection="AzureWebJobsStorage")
def execute_run_trigger(msg: func.QueueMessage) -> None:
    from core.runs.worker import execute_run  # the engine loads with the first run, not at start-up

    text = msg.get_body().decode("utf-8")
    # The run's spans continue the trace of the call that started it (the message's traceparent).
    with telemetry.span("executeRun", kind=telemetry.CONSUMER, traceparent=traceparent_of(text)):
        execute_run(get_storage(), get_settings(), text, int(msg.dequeue_count or 1))


# The host moves a message past maxDequeueCount to "<queue>-poison" (its naming) without running it.
@bp.function_name("failPoisonedRun")
@bp.queue_trigger(arg_name="msg", queue_name=run_queue_name() + POISON_SUFFIX, connection="AzureWebJobsStorage")
def fail_poisoned_run_trigger(msg: func.QueueMessage) -> None:
    from core.runs.poison import fail_poisoned_run  # cold start: with the first poisoned run

    text = msg.get_body().decode("utf-8")
    with telemetry.span("failPoisonedRun", kind=telemetry.CONSUMER, traceparent=traceparent_of(text)):
        fail_poisoned_run(get_storage(), text)
