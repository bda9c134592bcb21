"""Game-day schedules as cron expressions in a time zone, and the arithmetic on their fire times.

A schedule is either the standard five cron fields (``minute hour day month weekday``), a six-field
form with seconds first (``second minute hour day month weekday``) or one of the ``@hourly``,
``@daily``/``@midnight``, ``@weekly``, ``@monthly`` and ``@yearly``/``@annually`` shorthands. It is
evaluated in an IANA time zone (``Europe/Berlin``), so "Thursday 14:00" stays 14:00 local time across
daylight-saving changes.

Weekdays follow crontab: 0 and 7 are Sunday, 1 is Monday, and names (``mon``, ``Thu``) may be used.
When both the day of the month and the weekday are restricted, a time must match both (``0 14 1-7 *
mon`` is the first Monday of the month), unlike classic cron, which takes either.

Every function here is pure: the current time is always a parameter, so every replica that asks the
same question gets the same answer.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped, unused-ignore]

from chaos_service.errors import InvalidInput

if TYPE_CHECKING:
    from chaos_service.control.store.schedules import ScheduleRow

FIELDS = ("second", "minute", "hour", "day", "month", "weekday")
_TRIGGER_FIELDS = {"weekday": "day_of_week"}
SHORTHANDS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_WEEKDAY_ITEM = re.compile(r"^(\*|[a-z0-9]+)(?:-([a-z0-9]+))?(?:/(\d+))?$")
_TICK = timedelta(microseconds=1)
_PROBE_START = datetime(2000, 1, 1, tzinfo=UTC)
_PROBE_END = datetime(2029, 1, 1, tzinfo=UTC)


def parse_schedule(cron: str, timezone: str) -> CronTrigger:
    """The trigger for ``cron`` in ``timezone``; `InvalidInput` naming the bad field otherwise."""
    zone = time_zone(timezone)
    expression = SHORTHANDS.get(cron.strip().lower(), cron)
    if expression.strip().startswith("@"):
        raise InvalidInput(f"unknown cron shorthand {cron.strip()!r}; use one of {', '.join(SHORTHANDS)}")
    values = expression.split()
    if len(values) == 5:
        values = ["0", *values]
    elif len(values) != 6:
        raise InvalidInput(
            f"cron needs 5 fields (minute hour day month weekday) or 6 (with seconds first), got {len(values)}"
        )
    given = dict(zip(FIELDS, values, strict=True))
    fields = dict(given)
    try:
        fields["weekday"] = _weekdays(fields["weekday"])
    except ValueError as exc:
        raise InvalidInput(f"cron field 'weekday' ({given['weekday']}): {exc}") from None
    arguments = {_TRIGGER_FIELDS.get(name, name): value for name, value in fields.items()}
    for name, value in fields.items():
        try:
            CronTrigger(**{_TRIGGER_FIELDS.get(name, name): value}, timezone=zone)
        except ValueError as exc:
            raise InvalidInput(f"cron field {name!r} ({given[name]}): {_why(exc)}") from None
    try:
        trigger = CronTrigger(**arguments, timezone=zone)
        # The day and weekday combinations repeat within 28 years; bounding the search keeps a
        # schedule that never fires (February 31st) from scanning up to the year 9999.
        probe = CronTrigger(**arguments, timezone=zone, start_date=_PROBE_START, end_date=_PROBE_END)
    except ValueError as exc:
        raise InvalidInput(f"cron {cron!r}: {_why(exc)}") from None
    if probe.get_next_fire_time(None, _PROBE_START) is None:
        raise InvalidInput(f"cron {cron!r} never fires: no date matches its day, month and weekday")
    return trigger


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; `InvalidInput` when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(f"unknown time zone {name!r}") from None


def latest_fire_time(trigger: CronTrigger, now: datetime, lookback: timedelta) -> datetime | None:
    """The newest fire time at or before ``now`` and no older than ``now - lookback``, else None."""
    base = _utc(now) - lookback
    end = _utc(now)
    first = _next(trigger, base)
    if first is None or first > end:
        return None
    # next(t) is non-decreasing in t, so the largest t with next(t) <= now yields the newest fire time;
    # bisecting on microseconds costs about 40 evaluations even for a day of every-second firings.
    low, high = 0, (end - base) // _TICK + 1
    while high - low > 1:
        middle = (low + high) // 2
        found = _next(trigger, base + middle * _TICK)
        if found is not None and found <= end:
            low = middle
        else:
            high = middle
    return _next(trigger, base + low * _TICK)


def missed_fire_time(trigger: CronTrigger, since: datetime, now: datetime) -> datetime | None:
    """The newest fire time strictly between ``since`` and ``now``, else None."""
    before_now = _utc(now) - _TICK
    if before_now <= _utc(since):
        return None
    found = latest_fire_time(trigger, before_now, before_now - _utc(since))
    return found if found is not None and found > since else None


def next_fire_times(trigger: CronTrigger, now: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times at or after ``now`` (fewer if the schedule ends)."""
    times: list[datetime] = []
    moment = _utc(now)
    while len(times) < count:
        found = _next(trigger, moment)
        if found is None:
            break
        times.append(found)
        moment = _utc(found) + _TICK
    return times


def upcoming(schedule: ScheduleRow, count: int = 5, now: datetime | None = None) -> list[datetime]:
    """The schedule's next ``count`` fire times in its own time zone (from now by default)."""
    trigger = parse_schedule(schedule.cron, schedule.timezone)
    return next_fire_times(trigger, datetime.now(UTC) if now is None else now, count)


def _next(trigger: CronTrigger, moment: datetime) -> datetime | None:
    found: datetime | None = trigger.get_next_fire_time(None, moment)
    return found


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment} has no time zone; fire times are only compared between aware datetimes")
    return moment.astimezone(UTC)


def _weekdays(expression: str) -> str:
    """A crontab weekday field (Sunday is 0 or 7) as the trigger's (Monday is 0)."""
    if expression == "*":
        return expression
    days: set[int] = set()
    for item in expression.lower().split(","):
        match = _WEEKDAY_ITEM.match(item)
        if match is None:
            raise ValueError(f"{item!r} is not a weekday, a range of weekdays or a step")
        first_text, last_text, step_text = match.groups()
        if first_text == "*":
            if last_text is not None:
                raise ValueError(f"{item!r}: '*' cannot start a range")
            first, last = 0, 6
        else:
            first = _weekday(first_text)
            last = _weekday(last_text) if last_text is not None else (6 if step_text else first)
        step = int(step_text) if step_text else 1
        if step == 0:
            raise ValueError(f"{item!r}: the step must be at least 1")
        if first > last:
            raise ValueError(f"{item!r}: the range goes backwards")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(str(day) for day in sorted((day - 1) % 7 for day in days))


def _weekday(text: str) -> int:
    if text.isdigit():
        if int(text) > 7:
            raise ValueError(f"{text} is not a weekday (0-7, Sunday being 0 or 7)")
        return int(text)
    if text in _CRON_DAYS:
        return _CRON_DAYS.index(text)
    raise ValueError(f"{text!r} is not a weekday ({', '.join(_CRON_DAYS)} or 0-7)")


def _why(exc: ValueError) -> str:
    message = str(exc)
    if message.startswith("Error validating expression"):
        return message.split(": ", 1)[-1]
    if message.startswith("Unrecognized expression"):
        return "not a value, range, list or step this field accepts"
    return message
