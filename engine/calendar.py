"""The working-day calendar (工作日历): legal time limits (法定时限) counted in working days.

Administrative time limits are counted in working days, without statutory holidays
(行政许可法 第82条), on China's official calendar: public holidays are off and some
weekends are adjusted working days (调休), both published once a year by the General
Office of the State Council (国务院办公厅关于××年部分节假日安排的通知).

The calendar is built from explicit day entries (date -> working or not) layered over
Monday-to-Friday weeks.  `from_holidays` seeds those entries from the `holidays`
package; an administrator's entry for a date wins over the seed.  A year without a
published schedule is weekends-only, and every result that walks over such a year is
marked `provisional`.

Pure computation: no database, no clock.  A built calendar is immutable, so one instance
can serve every thread; `with_overrides` returns a new one.
"""
from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import MAXYEAR, date, datetime, time, timedelta, tzinfo
from numbers import Real
from types import MappingProxyType
from typing import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_DAYS = 3650                    # longer limits are a unit mistake (minutes/hours typed as days)
FIRST_YEAR, LAST_YEAR = 2000, 2099  # dates a caller may pass (widened by entries outside it)
_RESULT_MARGIN_YEARS = 20          # 3650 working days is ~14.5 years; results may run past LAST_YEAR
_END_OF_DAY = time(23, 59, 59)     # 民法典 第203条: the last day of a period ends at 24:00
_US = 1_000_000                    # microseconds per second: office time is counted in integers
SOURCES = ("seed", "admin")


@dataclass(frozen=True)
class OfficeHours:
    """Office periods (办公时间) of one working day, in local time, in order."""
    periods: tuple[tuple[time, time], ...] = ((time(9), time(12)), (time(13, 30), time(17, 30)))

    def __post_init__(self) -> None:
        periods = tuple(tuple(p) for p in self.periods)
        if not periods:
            raise ValueError("office hours need at least one period, e.g. ((time(9), time(17)),)")
        previous_end = None
        for period in periods:
            if len(period) != 2 or not all(isinstance(t, time) and t.tzinfo is None for t in period):
                raise ValueError(f"office period {period!r} must be a pair of naive datetime.time values")
            start, end = period
            if start >= end:
                raise ValueError(f"office period {start}-{end} ends before it starts")
            if previous_end is not None and start < previous_end:
                raise ValueError(f"office period {start}-{end} overlaps or precedes the one ending at {previous_end}; "
                                 "list the periods in order without overlap")
            previous_end = end
        object.__setattr__(self, "periods", periods)

    @property
    def spans_us(self) -> tuple[tuple[int, int], ...]:
        """The periods as (start, end) microseconds since local midnight."""
        return tuple((_time_us(start), _time_us(end)) for start, end in self.periods)

    @property
    def day_us(self) -> int:
        return sum(end - start for start, end in self.spans_us)

    @property
    def day_hours(self) -> float:
        return self.day_us / (3600 * _US)


@dataclass(frozen=True)
class DayEntry:
    """One date that differs from (or confirms) Monday-to-Friday: a holiday, or a
    weekend worked (调休上班).  `source` says who said so; "admin" beats "seed"."""
    day: date
    working: bool
    name: str | None = None
    source: str = "seed"

    def __post_init__(self) -> None:
        if not isinstance(self.day, date) or isinstance(self.day, datetime):
            raise ValueError(f"DayEntry.day must be a datetime.date, got {self.day!r}")
        if not isinstance(self.working, bool):
            raise ValueError(f"DayEntry.working for {self.day} must be True or False, got {self.working!r}")
        if self.source not in SOURCES:
            raise ValueError(f"DayEntry.source for {self.day} must be one of {SOURCES}, got {self.source!r}")


@dataclass(frozen=True)
class DayInfo:
    """What the calendar says about one date.  `source` is "seed" or "admin" for an
    entry, otherwise "weekday" / "weekend"; `provisional` when its year has no
    published schedule."""
    day: date
    working: bool
    name: str | None
    source: str
    provisional: bool

    def as_dict(self) -> dict:
        return {"date": self.day.isoformat(), "working": self.working, "name": self.name,
                "source": self.source, "provisional": self.provisional}


@dataclass(frozen=True)
class Deadline:
    """The last day of a time limit and the instant it runs out (timezone-aware)."""
    date: date
    deadline: datetime
    provisional: bool

    def as_dict(self) -> dict:
        return {"date": self.date.isoformat(), "deadline": self.deadline.isoformat(),
                "provisional": self.provisional}


class WorkingCalendar:
    """Working days, working hours and natural days on one official calendar.

    Internally a sorted tuple of the ordinals of every working day in the supported
    window, so a deadline is one bisect and one index (no day-by-day walk).
    """

    __slots__ = ("calendar_id", "tz", "office_hours", "published_years", "_entries",
                 "_working", "_first", "_last_input", "_last", "_spans", "_day_us")

    def __init__(self, calendar_id: str = "CN", entries: Iterable[DayEntry] = (),
                 published_years: Iterable[int] = (), tz: str | tzinfo = "Asia/Shanghai",
                 office_hours: OfficeHours = OfficeHours()) -> None:
        if not isinstance(office_hours, OfficeHours):
            raise ValueError(f"office_hours must be an OfficeHours, got {office_hours!r}")
        resolved = _resolve(entries)
        entry_years = [d.year for d in resolved]
        first = date(min([FIRST_YEAR, *entry_years]), 1, 1)
        last_input = date(max([LAST_YEAR, *entry_years]), 12, 31)
        last = date(min(last_input.year + _RESULT_MARGIN_YEARS, MAXYEAR), 12, 31)
        fields = {
            "calendar_id": calendar_id, "tz": _zone(tz), "office_hours": office_hours,
            "published_years": frozenset(_year(y) for y in published_years),
            "_entries": MappingProxyType(resolved), "_working": _working_ordinals(resolved, first, last),
            "_first": first, "_last_input": last_input, "_last": last,
            "_spans": office_hours.spans_us, "_day_us": office_hours.day_us,
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value) -> None:
        raise AttributeError(f"a WorkingCalendar cannot be changed (tried to set {name!r}); "
                             "use with_overrides() to build a new one")

    def __delattr__(self, name) -> None:
        raise AttributeError(f"a WorkingCalendar cannot be changed (tried to delete {name!r})")

    # ----- building -------------------------------------------------------------

    @classmethod
    def from_holidays(cls, calendar_id: str = "CN", years: Iterable[int] = range(2020, 2031),
                      overrides: Iterable[DayEntry] = (), extra_published_years: Iterable[int] = (),
                      tz: str | tzinfo = "Asia/Shanghai",
                      office_hours: OfficeHours = OfficeHours()) -> "WorkingCalendar":
        """The package's official schedule for `years`, with `overrides` on top.  Only
        the years asked for count as published: a year left out is weekends-only."""
        years = {_year(y) for y in years}
        published = (cls.seed_published_years() & years) | {_year(y) for y in extra_published_years}
        return cls(calendar_id, [*cls.seed_entries(years), *overrides], published, tz, office_hours)

    @staticmethod
    def seed_published_years() -> set[int]:
        """Years for which the `holidays` package carries the State Council's schedule,
        i.e. its table of substituted days off and adjusted working weekends.  Any other
        year the package only estimates (statutory days plus a generic "observed" rule)."""
        from holidays.countries.china import ChinaStaticHolidays
        return {year for year, rows in ChinaStaticHolidays.special_public_holidays.items() if rows}

    @staticmethod
    def seed_entries(years: Iterable[int]) -> list[DayEntry]:
        """What the `holidays` package says for the published ones among `years`: days
        off and adjusted working weekends, as entries to store.  Unpublished years give
        nothing, so they fall back to weekends-only."""
        import holidays
        published = WorkingCalendar.seed_published_years()
        wanted = {_year(y) for y in years} & published
        if not wanted:
            return []
        # next year's schedule can make a late-December weekend of this year a working day
        load = sorted(wanted | ({y + 1 for y in wanted} & published))
        package = holidays.China(years=load, language="zh_CN")
        entries = [DayEntry(d, False, name, "seed") for d, name in package.items() if d.year in wanted]
        for d in package.weekend_workdays:
            if d.year in wanted:
                entries.append(DayEntry(d, True, _adjusted_working_day_name(d, package), "seed"))
        return sorted(entries, key=lambda e: e.day)

    def with_overrides(self, entries: Iterable[DayEntry],
                       published_years: Iterable[int] = ()) -> "WorkingCalendar":
        """A new calendar with `entries` layered over this one's (this one is unchanged)."""
        return WorkingCalendar(self.calendar_id, [*self._entries.values(), *entries],
                               self.published_years | {_year(y) for y in published_years},
                               self.tz, self.office_hours)

    @property
    def entries(self) -> tuple[DayEntry, ...]:
        """The resolved entries, one per date, in date order."""
        return tuple(self._entries[d] for d in sorted(self._entries))

    # ----- single days ------------------------------------------------------------

    def is_working_day(self, d: date | datetime) -> bool:
        day = self._local_date(d, "d")
        entry = self._entries.get(day)
        return entry.working if entry else day.weekday() < 5

    def day_info(self, d: date | datetime) -> DayInfo:
        day = self._local_date(d, "d")
        provisional = day.year not in self.published_years
        entry = self._entries.get(day)
        if entry:
            return DayInfo(day, entry.working, entry.name, entry.source, provisional)
        weekday = day.weekday() < 5
        return DayInfo(day, weekday, None, "weekday" if weekday else "weekend", provisional)

    # ----- deadlines ----------------------------------------------------------------

    def add_working_days(self, start: date | datetime, n: int) -> Deadline:
        """The deadline of a limit of `n` working days accepted on `start`: the nth
        working day after the start day, at 23:59:59.  The start day is not counted
        even when it is a working day (民法典 第201条); n=0 is the start day itself."""
        n = _count(n, "n (working days)")
        day = self._local_date(start, "start")
        self._check_in_range(day, "start")
        if n == 0:
            return Deadline(day, self._end_of(day), False)
        index = bisect_right(self._working, day.toordinal()) + n - 1
        last = self._working_day_at(index, f"{n} working days after {day}")
        return Deadline(last, self._end_of(last), self._provisional(day + timedelta(days=1), last))

    def add_natural_days(self, start: date | datetime, n: int, *,
                         extend_past_days_off: bool = False) -> Deadline:
        """The deadline of a limit of `n` natural days (自然日): start day + n, 23:59:59.
        With `extend_past_days_off`, a last day that is not a working day moves to the
        next working day (民法典 第203条, 民事诉讼法 第85条); off by default."""
        n = _count(n, "n (natural days)")
        day = self._local_date(start, "start")
        self._check_in_range(day, "start")
        last = day + timedelta(days=n)
        if not extend_past_days_off or n == 0:
            return Deadline(last, self._end_of(last), False)
        return self.past_days_off(self._end_of(last))

    def past_days_off(self, end: datetime) -> Deadline:
        """Where a period in natural days whose last instant is `end` ends: at `end` when its
        day is a working day, else at 23:59:59 of the next working day.  A period whose last
        day is a statutory day off (a weekend, a holiday; an adjusted working weekend, 调休,
        is none) ends on the first day after it (民法典 第203条, 民事诉讼法 第85条)."""
        moment = self._local_datetime(end, "end")
        last = moment.date()
        self._check_in_range(last, "the last natural day")
        moved = self._working_day_at(bisect_left(self._working, last.toordinal()), f"the working day after {last}")
        if moved == last:
            return Deadline(last, moment, self._provisional(last, last))
        return Deadline(moved, self._end_of(moved), self._provisional(last, moved))

    def add_working_hours(self, start: datetime, hours: float) -> Deadline:
        """The instant `hours` of office time after `start`, counting only office periods
        of working days.  A start outside office hours begins at the next period; a
        result that lands exactly on the end of a period stays there (e.g. 17:30)."""
        remaining = _duration_us(hours, "hours", MAX_DAYS * self._day_us)
        moment = self._local_datetime(start, "start")
        day = moment.date()
        self._check_in_range(day, "start")
        if self.is_working_day(day):
            position = _time_us(moment.time())
            for begin, end in self._spans:
                if position < end:
                    available = end - max(position, begin)
                    if remaining <= available:
                        return self._instant(day, max(position, begin) + remaining, day)
                    remaining -= available
        # jump whole office days at once, then place the rest inside the last day
        full_days = max(0, (remaining - 1) // self._day_us)
        index = bisect_right(self._working, day.toordinal()) + full_days
        last = self._working_day_at(index, f"{hours} working hours after {moment.isoformat()}")
        remaining -= full_days * self._day_us
        for begin, end in self._spans:
            if remaining <= end - begin:
                return self._instant(last, begin + remaining, day)
            remaining -= end - begin
        raise AssertionError("unreachable: the remainder is at most one office day")

    def add_working_days_fractional(self, start: datetime, days: float) -> Deadline:
        """A limit in fractions of a working day, expressed as office time: 0.5 is half
        of one day's office hours (3.5 h by default), counted from the instant `start`
        by `add_working_hours` (so, unlike `add_working_days`, the start day counts)."""
        if not _is_number(days):
            raise ValueError(f"days must be a number of working days, got {days!r}")
        if not 0 <= days <= MAX_DAYS:
            raise ValueError(f"days must be between 0 and {MAX_DAYS}, got {days!r}")
        return self.add_working_hours(start, days * self.office_hours.day_hours)

    # ----- counting -------------------------------------------------------------------

    def working_days_between(self, a: date | datetime, b: date | datetime) -> int:
        """How many working days d satisfy a < d <= b (how many working days a pause
        lasted); 0 when b is not after a."""
        first, last = self._local_date(a, "a"), self._local_date(b, "b")
        self._check_in_range(first, "a")
        self._check_in_range(last, "b")
        if last <= first:
            return 0
        return bisect_right(self._working, last.toordinal()) - bisect_right(self._working, first.toordinal())

    def working_seconds_between(self, a: datetime, b: datetime) -> float:
        """Seconds of office time on working days between two instants; 0.0 when b is
        not after a."""
        first, last = self._local_datetime(a, "a"), self._local_datetime(b, "b")
        self._check_in_range(first.date(), "a")
        self._check_in_range(last.date(), "b")
        if last <= first:
            return 0.0
        return (self._office_us_until(last) - self._office_us_until(first)) / _US

    def working_days_after(self, start: date | datetime, end: datetime) -> float:
        """Working days of office time from the end of `start`'s day to `end`: how much
        of a limit in working days accepted at `start` is used at `end`, counted as
        add_working_days counts (the start day is not, 民法典 第201条), so a limit of n
        used up to its deadline is n.  0.0 when `end` is not after the start day."""
        return self.working_seconds_between(self.day_after(start), end) * _US / self._day_us

    def day_after(self, start: date | datetime) -> datetime:
        """Local midnight after `start`'s day: where a limit counted in days begins to run,
        the day of acceptance not counted (民法典 第201条)."""
        day = self._local_date(start, "start")
        self._check_in_range(day, "start")
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.tz)

    def __repr__(self) -> str:
        years = sorted(self.published_years)
        span = f"{years[0]}..{years[-1]}" if years else "none"
        return (f"WorkingCalendar({self.calendar_id!r}, tz={self.tz.key!r}, entries={len(self._entries)}, "
                f"published={span})")

    # ----- internals ------------------------------------------------------------------

    def _office_us_until(self, moment: datetime) -> int:
        """Office microseconds from the start of the window up to `moment`."""
        ordinal = moment.date().toordinal()
        index = bisect_left(self._working, ordinal)
        total = index * self._day_us
        if index < len(self._working) and self._working[index] == ordinal:
            position = _time_us(moment.time())
            total += sum(min(max(position - begin, 0), end - begin) for begin, end in self._spans)
        return total

    def _working_day_at(self, index: int, what: str) -> date:
        if index >= len(self._working):
            raise ValueError(f"{what} falls after {self._last}, the end of calendar {self.calendar_id!r}; "
                             "check the time limit")
        return date.fromordinal(self._working[index])

    def _provisional(self, first: date, last: date) -> bool:
        return any(year not in self.published_years for year in range(first.year, last.year + 1))

    def _end_of(self, day: date) -> datetime:
        return datetime.combine(day, _END_OF_DAY, tzinfo=self.tz)

    def _instant(self, day: date, us_since_midnight: int, walked_from: date) -> Deadline:
        moment = datetime.combine(day, time(0), tzinfo=self.tz) + timedelta(microseconds=us_since_midnight)
        return Deadline(day, moment, self._provisional(walked_from, day))

    def _check_in_range(self, day: date, what: str) -> None:
        if not self._first <= day <= self._last_input:
            raise ValueError(f"{what} {day} is outside calendar {self.calendar_id!r}, which covers "
                             f"{self._first} to {self._last_input}")

    def _local_datetime(self, value: datetime, what: str) -> datetime:
        """An aware datetime in the calendar's zone; a naive one is read as local time."""
        if not isinstance(value, datetime):
            raise ValueError(f"{what} must be a datetime (a date and a time of day), got {value!r}")
        return value.replace(tzinfo=self.tz) if value.tzinfo is None else value.astimezone(self.tz)

    def _local_date(self, value: date | datetime, what: str) -> date:
        if isinstance(value, datetime):
            return self._local_datetime(value, what).date()
        if isinstance(value, date):
            return value
        raise ValueError(f"{what} must be a date or a datetime, got {type(value).__name__} {value!r}")


def _working_ordinals(entries: dict[date, DayEntry], first: date, last: date) -> tuple[int, ...]:
    """Ordinals of every working day from `first` to `last`: Monday to Friday, then the entries."""
    worked = {d.toordinal() for d, e in entries.items() if e.working}
    off = {d.toordinal() for d, e in entries.items() if not e.working}
    # ordinal 1 (0001-01-01) is a Monday, so ordinal % 7 is 6 on Saturdays and 0 on Sundays
    return tuple(o for o in range(first.toordinal(), last.toordinal() + 1)
                 if (o % 7 not in (0, 6) or o in worked) and o not in off)


def _resolve(entries: Iterable[DayEntry]) -> dict[date, DayEntry]:
    """One entry per date: an admin entry beats a seed one; within one source the last given wins."""
    resolved: dict[date, DayEntry] = {}
    for entry in entries:
        if not isinstance(entry, DayEntry):
            raise ValueError(f"calendar entries must be DayEntry values, got {entry!r}")
        current = resolved.get(entry.day)
        if current is None or not (current.source == "admin" and entry.source == "seed"):
            resolved[entry.day] = entry
    return resolved


def _adjusted_working_day_name(day: date, package) -> str:
    """The package names the day off "休息日（由 2025-01-26 调休）"; name the worked weekend after it."""
    pattern = re.compile(re.escape(day.isoformat()))
    swapped = sorted(d for d, name in package.items() if pattern.search(name))
    return f"调休上班（{swapped[0].isoformat()} 休息）" if swapped else "调休上班"


def _zone(tz: str | tzinfo) -> tzinfo:
    if isinstance(tz, ZoneInfo):
        return tz
    if not isinstance(tz, str):
        raise ValueError(f"tz must be an IANA time zone name such as 'Asia/Shanghai', got {tz!r}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {tz!r}: use an IANA name such as 'Asia/Shanghai' ({error})") from None


def _year(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"a year must be an int such as 2026, got {value!r}")
    return value


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _count(n, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"{what} must be a whole number, got {type(n).__name__} {n!r}; "
                         "use add_working_days_fractional or add_working_hours for fractions")
    if n < 0:
        raise ValueError(f"{what} must not be negative, got {n}")
    if n > MAX_DAYS:
        raise ValueError(f"{what} = {n} is more than the {MAX_DAYS} this calendar accepts; "
                         "check the unit of the time limit (days, hours or minutes)")
    return n


def _duration_us(hours, what: str, max_us: int) -> int:
    if not _is_number(hours):
        raise ValueError(f"{what} must be a finite number, got {type(hours).__name__} {hours!r}")
    if hours < 0:
        raise ValueError(f"{what} must not be negative, got {hours}")
    us = round(hours * 3600 * _US)
    if us > max_us:
        raise ValueError(f"{what} = {hours} is more than {MAX_DAYS} working days of office time; "
                         "check the unit of the time limit")
    return us


def _time_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _US + t.microsecond
