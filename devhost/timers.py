"""Timer triggers: run functions on their NCRONTAB schedule (and at start with ``runOnStartup``).

Schedules are evaluated in UTC, whatever the machine's time zone, ``TZ`` or ``WEBSITE_TIME_ZONE``
say: the host on Linux (Flex Consumption included) does not support ``WEBSITE_TIME_ZONE``, so UTC
is what the app gets on Azure. There is no singleton lock: devhost is one process.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from concurrent.futures import Executor

import azure.functions as func

from devhost.functions import FunctionInfo
from devhost.ncrontab import CronError, Schedule

logger = logging.getLogger(__name__)

# A run is "past due" when it starts this much later than it was scheduled (host: any delay).
PAST_DUE_SLACK = datetime.timedelta(seconds=1)


class DevhostTimerRequest(func.TimerRequest):
    """What a timer-triggered function receives: ``past_due`` and the schedule's status."""

    def __init__(
        self, *, past_due: bool, schedule: str, last: datetime.datetime | None, next_: datetime.datetime
    ) -> None:
        self._past_due = past_due
        self.schedule = {"AdjustForDST": True}
        self.schedule_text = schedule
        self.schedule_status = {
            "Last": (last or datetime.datetime.min).isoformat(),
            "Next": next_.isoformat(),
            "LastUpdated": datetime.datetime.now(datetime.UTC).isoformat(),
        }

    @property
    def past_due(self) -> bool:
        return self._past_due


def timer_schedule(function: FunctionInfo) -> Schedule:
    """The function's schedule; ``CronError`` naming the function when the host would not load it."""
    text = str(function.trigger.get("schedule", ""))
    try:
        return Schedule.parse(text)
    except CronError as exc:
        raise CronError(f"function {function.name!r} fails to load, as on the host: {exc}") from None


class TimerRunner:
    """Fires one timer-triggered function on its schedule until ``stop`` is set."""

    def __init__(self, function: FunctionInfo, executor: Executor) -> None:
        self.function = function
        self.executor = executor
        self.schedule = timer_schedule(function)
        self.run_on_startup = bool(function.trigger.get("runOnStartup", False))
        self.last: datetime.datetime | None = None

    @staticmethod
    def now() -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    async def _fire(self, scheduled: datetime.datetime, started: datetime.datetime) -> None:
        following = self.schedule.next_after(started)
        request = DevhostTimerRequest(
            past_due=started - scheduled > PAST_DUE_SLACK, schedule=self.schedule.text, last=self.last, next_=following
        )
        self.last = started
        try:
            await self.function.invoke(request, self.executor)
            logger.info("timer function %s ran (next at %s)", self.function.name, following.isoformat())
        except Exception:  # noqa: BLE001 - a failed run is logged; the schedule goes on
            logger.exception("timer function %s failed", self.function.name)

    async def run(self, stop: asyncio.Event) -> None:
        logger.info("timer %s: schedule %s", self.function.name, self.schedule.text)
        if self.run_on_startup and not stop.is_set():
            now = self.now()
            await self._fire(now, now)
        due = self.schedule.next_after(self.now())
        while not stop.is_set():
            wait = (due - self.now()).total_seconds()
            if wait > 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                    return
                except TimeoutError:
                    pass
            started = self.now()
            late = started - due > PAST_DUE_SLACK
            await self._fire(due, started)
            # After a late run, skip what was missed (one past-due run, like the host), not a burst.
            due = self.schedule.next_after(self.now() if late else due)
