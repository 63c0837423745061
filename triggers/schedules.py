"""Schedules: each due time arrives as a message on the schedule queue, made visible when it falls
due; a slow timer re-creates a schedule whose chain of messages was lost (core.runs.scheduler).

The re-seed timer keeps the name of the 15-second timer it replaces (``startScheduledRuns``), so
dashboards, queries over function names and the health endpoint's last schedule tick go on
working. Every 10 minutes is 4,320 executions a month: docs/latency.md, "A scheduled run", says
why that period.
"""

from __future__ import annotations

import azure.functions as func

from core.kernel import telemetry
from core.kernel.settings import get_settings
from core.store.storage import get_storage
from core.store.tables import schedule_queue_name
from triggers.telemetry import configure_telemetry

bp = func.Blueprint()
configure_telemetry(get_settings())


@bp.function_name("startDueRun")
@bp.queue_trigger(arg_name="msg", queue_name=schedule_queue_name(), connection="AzureWebJobsStorage")
def start_due_run(msg: func.QueueMessage) -> None:
    from core.runs.health import record_schedule_tick  # cold start: with the first due time
    from core.runs.scheduler import handle_due

    with telemetry.span("startDueRun", kind=telemetry.CONSUMER):
        handle_due(get_storage(), msg.get_body().decode("utf-8"), str(msg.id or ""))
        record_schedule_tick(get_storage())  # schedules are being served, for GET /management/health


@bp.function_name("startScheduledRuns")
@bp.timer_trigger(arg_name="timer", schedule="0 */10 * * * *", run_on_startup=False, use_monitor=False)
def reseed_schedules(timer: func.TimerRequest) -> None:
    from core.runs.health import record_schedule_tick  # cold start: with the first re-seed
    from core.runs.scheduler import reseed

    with telemetry.span("startScheduledRuns", kind=telemetry.SERVER):
        reseed(get_storage())
        record_schedule_tick(get_storage())  # the last tick, for GET /management/health
