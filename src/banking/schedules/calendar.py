"""When the occurrences of a schedule fall, in the bank's time zone (`BANK_TIMEZONE`).

Every occurrence is computed from the series' start, never from the previous one, so
nothing drifts: a monthly series started on the 31st runs on the last day of shorter
months and on the 31st again when the month has one; the wall-clock time stays the same
across daylight-saving changes. Checked by tests/unit/test_schedule_calendar.py.
"""

from __future__ import annotations

import calendar
import datetime as dt
from zoneinfo import ZoneInfo

from banking.schedules.models import Frequency


def occurrence_at(
    start: dt.datetime, frequency: Frequency, index: int, timezone: ZoneInfo
) -> dt.datetime:
    """The UTC time of occurrence `index` (0 is `start`) of a series."""
    if index < 0:
        raise ValueError("occurrence index must be >= 0")
    local = start.astimezone(timezone)
    if frequency is Frequency.once or index == 0:
        return start.astimezone(dt.UTC)
    if frequency is Frequency.daily:
        day = local.date() + dt.timedelta(days=index)
    elif frequency is Frequency.weekly:
        day = local.date() + dt.timedelta(weeks=index)
    else:
        years, month_index = divmod(local.month - 1 + index, 12)
        year, month = local.year + years, month_index + 1
        day = dt.date(year, month, min(local.day, calendar.monthrange(year, month)[1]))
    wall = dt.datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=timezone)
    return wall.astimezone(dt.UTC)


def next_index_after(
    start: dt.datetime,
    frequency: Frequency,
    index: int,
    moment: dt.datetime,
    timezone: ZoneInfo,
) -> tuple[int, int]:
    """The first index after `index` whose time is after `moment`, and how many indexes
    were passed over on the way (occurrences missed while no scheduler ran)."""
    if frequency is Frequency.once:
        return index + 1, 0
    following = index + 1
    skipped = 0
    # Jump close first (a long outage must not cost a loop per missed day).
    step_s = {Frequency.daily: 86_400, Frequency.weekly: 7 * 86_400}.get(frequency, 31 * 86_400)
    behind = int((moment - occurrence_at(start, frequency, following, timezone)).total_seconds())
    if behind > 2 * step_s:
        jump = behind // step_s - 1
        following += jump
        skipped += jump
    while occurrence_at(start, frequency, following, timezone) <= moment:
        following += 1
        skipped += 1
    return following, skipped
