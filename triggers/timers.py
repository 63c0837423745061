"""Timer triggers: scheduled scenarios (every 15 s) and run retention (daily)."""

from __future__ import annotations

import azure.functions as func

from core.kernel import telemetry
from core.kernel.settings import get_settings
from core.store.storage import get_storage
from triggers.telemetry import configure_telemetry

bp = func.Blueprint()
configure_telemetry(get_settings())


@bp.function_name("startScheduledRuns")
@bp.timer_trigger(arg_name="timer", schedule="*/15 * * * * *", run_on_startup=False, use_monitor=False)
def start_scheduled_runs(timer: func.TimerRequest) -> None:
    from core.runs.health import record_schedule_tick
    from core.runs.scheduler import start_due_runs

    with telemetry.span("startScheduledRuns", kind=telemetry.SERVER):
        start_due_runs(get_storage(), get_settings())
        record_schedule_tick(get_storage())  # the last tick, for GET /management/health


@bp.function_name("removeOldRuns")
@bp.timer_trigger(arg_name="timer", schedule="0 30 3 * * *", run_on_startup=False)
def remove_old_runs_daily(timer: func.TimerRequest) -> None:
    from core.runs.retention import remove_old_runs

    with telemetry.span("removeOldRuns", kind=telemetry.SERVER):
        remove_old_runs(get_storage(), get_settings().run_retention_days)
