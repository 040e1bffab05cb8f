"""When a schedule's occurrences fall: month ends, the bank's time zone, missed dates."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from banking.schedules.calendar import next_index_after, occurrence_at
from banking.schedules.models import Frequency

UTC = ZoneInfo("UTC")
PARIS = ZoneInfo("Europe/Paris")


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


class TestMonthEnds:
    def test_the_31st_runs_on_the_last_day_of_shorter_months_and_on_the_31st_again(
        self,
    ) -> None:
        start = utc(2027, 1, 31, 9, 0)
        runs = [occurrence_at(start, Frequency.monthly, index, UTC) for index in range(8)]
        assert [run.date() for run in runs] == [
            dt.date(2027, 1, 31),
            dt.date(2027, 2, 28),
            dt.date(2027, 3, 31),
            dt.date(2027, 4, 30),
            dt.date(2027, 5, 31),
            dt.date(2027, 6, 30),
            dt.date(2027, 7, 31),
            dt.date(2027, 8, 31),
        ]
        assert all(run.time() == dt.time(9, 0) for run in runs)

    def test_february_of_a_leap_year_has_29_days_and_december_rolls_into_the_next_year(
        self,
    ) -> None:
        start = utc(2027, 12, 30, 8, 0)
        assert occurrence_at(start, Frequency.monthly, 1, UTC) == utc(2028, 1, 30, 8, 0)
        assert occurrence_at(start, Frequency.monthly, 2, UTC) == utc(2028, 2, 29, 8, 0)
        assert occurrence_at(start, Frequency.monthly, 14, UTC) == utc(2029, 2, 28, 8, 0)

    def test_days_and_months_are_those_of_the_bank_time_zone(self) -> None:
        # 00:30 in Paris on 31 January is still 30 January in UTC.
        start = dt.datetime(2027, 1, 31, 0, 30, tzinfo=PARIS)
        assert start.astimezone(dt.UTC) == utc(2027, 1, 30, 23, 30)
        february = occurrence_at(start, Frequency.monthly, 1, PARIS)
        assert february.astimezone(PARIS).date() == dt.date(2027, 2, 28)
        assert february == utc(2027, 2, 27, 23, 30)
        # After the switch to summer time the wall-clock time stays 00:30.
        march = occurrence_at(start, Frequency.monthly, 2, PARIS)
        assert march.astimezone(PARIS).replace(tzinfo=None) == dt.datetime(2027, 3, 31, 0, 30)
        assert march == utc(2027, 3, 30, 22, 30)

    def test_daily_and_weekly_keep_the_wall_clock_time_across_daylight_saving(self) -> None:
        start = dt.datetime(2027, 3, 27, 9, 0, tzinfo=PARIS)
        days = [occurrence_at(start, Frequency.daily, index, PARIS) for index in range(3)]
        assert [day.astimezone(PARIS).hour for day in days] == [9, 9, 9]
        assert days[2] - days[1] == dt.timedelta(hours=24)
        assert days[1] - days[0] == dt.timedelta(hours=23)
        week = occurrence_at(start, Frequency.weekly, 1, PARIS)
        assert week.astimezone(PARIS).replace(tzinfo=None) == dt.datetime(2027, 4, 3, 9, 0)

    def test_once_has_only_its_first_run(self) -> None:
        start = utc(2027, 5, 1)
        assert occurrence_at(start, Frequency.once, 0, UTC) == start
        assert next_index_after(start, Frequency.once, 0, utc(2030, 1, 1), UTC) == (1, 0)
        with pytest.raises(ValueError, match=">= 0"):
            occurrence_at(start, Frequency.daily, -1, UTC)


class TestMissedOccurrences:
    def test_the_next_occurrence_is_the_first_after_now_and_the_missed_ones_are_counted(
        self,
    ) -> None:
        start = utc(2027, 1, 1, 6, 0)
        # Run of occurrence 0 on time: the next is occurrence 1, nothing missed.
        assert next_index_after(start, Frequency.daily, 0, utc(2027, 1, 1, 6, 0), UTC) == (1, 0)
        # Occurrence 0 ran five days late: 1..4 and 5 (due at 06:00 that day) are past.
        assert next_index_after(start, Frequency.daily, 0, utc(2027, 1, 6, 7, 0), UTC) == (6, 5)

    @pytest.mark.parametrize("frequency", list(Frequency)[1:])
    def test_a_long_outage_jumps_without_overshooting(self, frequency: Frequency) -> None:
        start = utc(2020, 1, 31, 12, 0)
        now = utc(2027, 3, 15, 0, 0)
        following, skipped = next_index_after(start, frequency, 0, now, UTC)
        assert occurrence_at(start, frequency, following, UTC) > now
        assert occurrence_at(start, frequency, following - 1, UTC) <= now
        assert skipped == following - 1
