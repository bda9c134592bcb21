"""Game-day schedules: cron parsing in a time zone, and fire-time arithmetic across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos_service.control.scheduler.cron import (
    latest_fire_time,
    missed_fire_time,
    next_fire_times,
    parse_schedule,
    upcoming,
)
from chaos_service.control.store.schedules import ScheduleRow
from chaos_service.errors import InvalidInput


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def offsets(times: list[datetime]) -> list[str]:
    """Each time as local time with its UTC offset, e.g. '2025-03-27 14:00 +0100'."""
    return [moment.strftime("%Y-%m-%d %H:%M %z") for moment in times]


THURSDAY_2PM = parse_schedule("0 14 * * thu", "Europe/Berlin")


def test_a_weekly_game_day_keeps_its_local_time_across_both_daylight_saving_changes() -> None:
    spring = next_fire_times(THURSDAY_2PM, utc(2025, 3, 20), 3)
    autumn = next_fire_times(THURSDAY_2PM, utc(2025, 10, 20), 2)
    assert offsets(spring) == ["2025-03-20 14:00 +0100", "2025-03-27 14:00 +0100", "2025-04-03 14:00 +0200"]
    assert offsets(autumn) == ["2025-10-23 14:00 +0200", "2025-10-30 14:00 +0100"]
    assert [moment.astimezone(UTC).hour for moment in spring + autumn] == [13, 13, 12, 12, 13]


def test_the_latest_fire_time_is_the_newest_at_or_before_now_within_the_lookback() -> None:
    week = timedelta(days=7)
    assert latest_fire_time(THURSDAY_2PM, utc(2025, 4, 1, 12), week) == utc(2025, 3, 27, 13)
    assert latest_fire_time(THURSDAY_2PM, utc(2025, 4, 3, 12), week) == utc(2025, 4, 3, 12)  # now is a fire time
    just_before = utc(2025, 4, 3, 12) - timedelta(microseconds=1)
    assert latest_fire_time(THURSDAY_2PM, just_before, week) == utc(2025, 3, 27, 13)
    assert latest_fire_time(THURSDAY_2PM, utc(2025, 10, 31), week) == utc(2025, 10, 30, 13)
    assert latest_fire_time(THURSDAY_2PM, utc(2025, 4, 1, 12), timedelta(days=4)) is None
    assert latest_fire_time(THURSDAY_2PM, utc(2025, 4, 1, 12), timedelta(days=5, hours=23)) == utc(2025, 3, 27, 13)


def test_a_missed_fire_time_is_strictly_between_since_and_now() -> None:
    assert missed_fire_time(THURSDAY_2PM, utc(2025, 10, 20), utc(2025, 11, 1)) == utc(2025, 10, 30, 13)
    assert missed_fire_time(THURSDAY_2PM, utc(2025, 10, 20), utc(2025, 10, 30, 13)) == utc(2025, 10, 23, 12)
    assert missed_fire_time(THURSDAY_2PM, utc(2025, 10, 30, 13), utc(2025, 11, 5)) is None
    assert missed_fire_time(THURSDAY_2PM, utc(2025, 10, 24), utc(2025, 10, 24)) is None


def test_the_hour_that_is_skipped_or_repeated_by_daylight_saving() -> None:
    nightly = parse_schedule("30 2 * * *", "Europe/Berlin")
    # 02:30 does not exist on 30 March (clocks jump to 03:00): it fires at 03:30 local, 01:30 UTC.
    assert [t.astimezone(UTC) for t in next_fire_times(nightly, utc(2025, 3, 29, 12), 2)] == [
        utc(2025, 3, 30, 1, 30),
        utc(2025, 3, 31, 0, 30),
    ]
    # 02:30 happens twice on 26 October; each is its own fire time, and both are found looking back.
    # (Compared in UTC: an aware datetime in the repeated hour never equals one in another zone.)
    first = latest_fire_time(nightly, utc(2025, 10, 26, 1), timedelta(days=1))
    second = latest_fire_time(nightly, utc(2025, 10, 26, 2), timedelta(days=1))
    assert first is not None and second is not None
    assert (first.astimezone(UTC), second.astimezone(UTC)) == (utc(2025, 10, 26, 0, 30), utc(2025, 10, 26, 1, 30))
    assert offsets([first, second]) == ["2025-10-26 02:30 +0200", "2025-10-26 02:30 +0100"]


def test_six_fields_put_seconds_first_and_shorthands_are_understood() -> None:
    every_15s = parse_schedule("*/15 * * * * *", "UTC")
    assert [t.second for t in next_fire_times(every_15s, utc(2025, 1, 1, 10, 0, 1), 4)] == [15, 30, 45, 0]
    daily = parse_schedule("@daily", "Europe/Berlin")
    assert offsets(next_fire_times(daily, utc(2025, 6, 1), 1)) == ["2025-06-02 00:00 +0200"]
    assert next_fire_times(parse_schedule("@Weekly", "UTC"), utc(2025, 6, 1, 1), 1) == [utc(2025, 6, 8)]


@pytest.mark.parametrize(
    ("weekday", "days"),
    [
        ("0", {"Sun"}),
        ("7", {"Sun"}),
        ("1", {"Mon"}),
        ("1-5", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("5-7", {"Fri", "Sat", "Sun"}),
        ("*/2", {"Sun", "Tue", "Thu", "Sat"}),
        ("1/3", {"Mon", "Thu"}),
        ("sat,SUN", {"Sat", "Sun"}),
        ("mon-wed,fri", {"Mon", "Tue", "Wed", "Fri"}),
        ("*", {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}),
    ],
)
def test_weekdays_are_numbered_as_in_crontab_in_both_forms(weekday: str, days: set[str]) -> None:
    for cron in (f"0 9 * * {weekday}", f"0 0 9 * * {weekday}"):
        week = next_fire_times(parse_schedule(cron, "UTC"), utc(2025, 6, 2), 7)  # a Monday
        assert {moment.strftime("%a") for moment in week if moment < utc(2025, 6, 9)} == days, cron


@pytest.mark.parametrize(
    ("cron", "zone", "message"),
    [
        ("0 25 * * *", "UTC", "cron field 'hour' (25): the last value (25) is higher than the maximum value (23)"),
        ("x 0 * * *", "UTC", "cron field 'minute' (x): not a value, range, list or step this field accepts"),
        ("60 0 0 * * *", "UTC", "cron field 'second' (60)"),
        ("0 0 0 * *", "UTC", "cron field 'day' (0)"),
        ("0 0 * 13 *", "UTC", "cron field 'month' (13)"),
        ("0 0 * * 8", "UTC", "cron field 'weekday' (8): 8 is not a weekday"),
        ("0 0 * * fri-mon", "UTC", "cron field 'weekday' (fri-mon): 'fri-mon': the range goes backwards"),
        ("0 0 * * funday", "UTC", "cron field 'weekday' (funday)"),
        ("*/0 * * * *", "UTC", "cron field 'minute' (*/0)"),
        ("0 0 * *", "UTC", "cron needs 5 fields (minute hour day month weekday) or 6 (with seconds first), got 4"),
        ("* * *", "UTC", "got 3"),
        ("0 0 0 0 0 0 0", "UTC", "got 7"),
        ("", "UTC", "got 0"),
        ("@often", "UTC", "unknown cron shorthand '@often'"),
        ("0 0 31 2 *", "UTC", "never fires"),
        ("0 14 * * thu", "Mars/Base", "unknown time zone 'Mars/Base'"),
        ("0 14 * * thu", "", "unknown time zone ''"),
        ("0 14 * * thu", "../../etc/passwd", "unknown time zone"),
    ],
)
def test_bad_schedules_are_refused_naming_what_is_wrong(cron: str, zone: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_schedule(cron, zone)
    assert message in str(refused.value)


def test_upcoming_lists_a_stored_schedules_next_fire_times() -> None:
    row = ScheduleRow("thursdays", "0 14 * * 4", "Europe/Berlin", ["a"], "forbid", "skip", None, True, 0.0)
    assert offsets(upcoming(row, 2, now=utc(2025, 3, 26))) == ["2025-03-27 14:00 +0100", "2025-04-03 14:00 +0200"]
    assert len(upcoming(row)) == 5 and upcoming(row)[0] > datetime.now(UTC)


def test_times_without_a_time_zone_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        latest_fire_time(THURSDAY_2PM, datetime(2025, 1, 1), timedelta(days=7))


# Each schedule with a span longer than its longest gap between fire times and short enough to walk.
WALKABLE = [
    ("* * * * * *", timedelta(minutes=2)),
    ("*/7 * * * * *", timedelta(minutes=10)),
    ("0 */5 * * * *", timedelta(days=1)),
    ("0 0 14 * * thu", timedelta(days=10)),
    ("0 30 2 * * *", timedelta(days=10)),
    ("15 10 1-7 * mon", timedelta(days=10)),
]


@settings(max_examples=40, deadline=None)
@given(
    walkable=st.sampled_from(WALKABLE),
    now=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)),
    lookback=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10)),
)
def test_the_latest_fire_time_agrees_with_walking_forward(
    walkable: tuple[str, timedelta], now: datetime, lookback: timedelta
) -> None:
    cron, span = walkable
    trigger = parse_schedule(cron, "Europe/Berlin")
    walked = [t for t in next_fire_times(trigger, now - min(span, lookback), 400) if t <= now]
    expected = walked[-1].astimezone(UTC) if walked else None
    found = latest_fire_time(trigger, now, lookback)
    assert (found and found.astimezone(UTC)) == expected
