"""Timer triggers: run retention (daily). Schedules have their own (triggers/schedules.py)."""

from __future__ import annotations

import azure.functions as func

from core.kernel import telemetry
from core.kernel.settings import get_settings
from core.store.storage import get_storage
from triggers.telemetry import configure_telemetry

bp = func.Blueprint()
configure_telemetry(get_settings())


@bp.function_name("removeOldRuns")
@bp.timer_trigger(arg_name="timer", schedule="0 30 3 * * *", run_on_startup=False)
def remove_old_runs_daily(timer: func.TimerRequest) -> None:
    from core.runs.retention import remove_old_runs

    with telemetry.span("removeOldRuns", kind=telemetry.SERVER):
        remove_old_runs(get_storage(), get_settings().run_retention_days)
