"""The queue-triggered worker that executes runs started by Accept, schedules and API calls."""

from __future__ import annotations

import azure.functions as func

from core.settings import get_settings, run_queue_name
from core.storage import get_storage

bp = func.Blueprint()


@bp.function_name("executeRun")
@bp.queue_trigger(arg_name="msg", queue_name=run_queue_name(), connection="AzureWebJobsStorage")
def execute_run_trigger(msg: func.QueueMessage) -> None:
    from core.worker import execute_run  # the engine loads with the first run, not at start-up

    execute_run(get_storage(), get_settings(), msg.get_body().decode("utf-8"), int(msg.dequeue_count or 1))
