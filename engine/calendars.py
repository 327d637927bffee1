"""Working-day calendars in the database.

`engine.calendar.WorkingCalendar` computes; this module stores.  The national calendar
(`CN`) is seeded from the `holidays` package the first time it is needed; an
administrator overrides single days, imports a newly published year, or creates a
region's or service hall's own calendar (copied from `CN`).  Every change bumps the
calendar's `revision`, which is the cache key: each server process rebuilds its
in-memory calendar when the revision it holds is stale.
"""
from __future__ import annotations

import threading
from functools import cache
from datetime import date, time

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from .calendar import DayEntry, OfficeHours, WorkingCalendar
from .clock import utcnow
from .errors import BadRequest, NotFound
from .models import Calendar, CalendarDay

DEFAULT = "CN"
DEFAULT_OFFICE_HOURS = [["09:00", "12:00"], ["13:30", "17:30"]]


def office_hours_of(periods: list) -> OfficeHours:
    try:
        return OfficeHours(tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in periods))
    except (TypeError, ValueError) as err:
        raise BadRequest(f"office hours {periods!r} are not valid: {err}; "
                         'write them as [["09:00", "12:00"], ["13:30", "17:30"]]') from err


def _entry(row) -> DayEntry:
    return DayEntry(row.day, row.working, row.name, "seed" if row.source == "seed" else "admin")


class CalendarStore:
    """Per-process cache of built calendars, keyed by (id, revision)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self._built: dict[str, tuple[int, WorkingCalendar]] = {}
        self._lock = threading.Lock()

    def get(self, session, calendar_id: str | None = None) -> WorkingCalendar:
        """The calendar built, from the cache while its revision is current; on a session
        or a bare connection."""
        calendar_id = calendar_id or DEFAULT
        row = session.execute(select(Calendar.revision, Calendar.timezone, Calendar.office_hours,
                                     Calendar.published_years).where(Calendar.id == calendar_id)).first()
        if row is None:
            raise NotFound(f"no calendar with id '{calendar_id}' (known: {', '.join(known_ids(session)) or 'none'})")
        cached = self._built.get(calendar_id)
        if cached and cached[0] == row.revision:
            return cached[1]
        days = session.execute(select(CalendarDay.__table__).where(CalendarDay.calendar_id == calendar_id))
        built = WorkingCalendar(calendar_id, [_entry(d) for d in days], row.published_years or [],
                                row.timezone, office_hours_of(row.office_hours or DEFAULT_OFFICE_HOURS))
        with self._lock:
            self._built[calendar_id] = (row.revision, built)
        return built

    def seed(self) -> None:
        """Store the national calendar from the `holidays` package (once per database;
        the engine does this at start-up)."""
        try:
            with self.engine.uow() as uow:
                if uow.session.get(Calendar, DEFAULT) is not None:
                    return
                years, entries = _national_seed()
                uow.session.add(Calendar(id=DEFAULT, name="中华人民共和国 国务院节假日安排", timezone=self.engine.settings.timezone,
                                         office_hours=DEFAULT_OFFICE_HOURS, published_years=list(years),
                                         revision=1, updated=utcnow()))
                uow.session.flush()
                if entries:         # one executemany: ~300 days, a fifth of the time the ORM's objects took
                    uow.session.execute(insert(CalendarDay.__table__), [
                        dict(calendar_id=DEFAULT, day=e.day, working=e.working, name=e.name, source="seed")
                        for e in entries])
                uow.commit()
        except IntegrityError:
            pass                                    # another process seeded it first


@cache
def _national_seed() -> tuple[tuple[int, ...], tuple[DayEntry, ...]]:
    """The published years and their days from the `holidays` package: the same for every
    engine of the process (the package is pinned), read once."""
    years = tuple(sorted(WorkingCalendar.seed_published_years()))
    return years, tuple(WorkingCalendar.seed_entries(years))


def known_ids(session) -> list[str]:
    return list(session.execute(select(Calendar.id).order_by(Calendar.id)).scalars())


def _calendar_row(session, calendar_id: str) -> Calendar:
    row = session.get(Calendar, calendar_id)
    if row is None:
        raise NotFound(f"no calendar with id '{calendar_id}' (known: {', '.join(known_ids(session))})")
    return row


def _bump(session, calendar_id: str) -> None:
    session.execute(update(Calendar).where(Calendar.id == calendar_id)
                    .values(revision=Calendar.revision + 1, updated=utcnow()))


def create_calendar(store: CalendarStore, uow, calendar_id: str, name: str | None, base: str | None,
                    timezone: str | None, office_hours: list | None) -> Calendar:
    """A region's or hall's own calendar, starting as a copy of `base` (default CN)."""
    session = uow.session
    if not calendar_id or len(calendar_id) > 64:
        raise BadRequest("a calendar needs an id of 1 to 64 characters")
    if session.get(Calendar, calendar_id) is not None:
        raise BadRequest(f"calendar '{calendar_id}' already exists")
    store.get(session, base or DEFAULT)                # 404 for an unknown base
    source = _calendar_row(session, base or DEFAULT)
    hours = office_hours if office_hours is not None else source.office_hours
    office_hours_of(hours)
    zone = timezone or source.timezone
    try:
        WorkingCalendar(calendar_id, tz=zone)
    except ValueError as err:
        raise BadRequest(str(err)) from err
    row = Calendar(id=calendar_id, name=name, timezone=zone, office_hours=hours,
                   published_years=list(source.published_years), revision=1, updated=utcnow())
    session.add(row)
    session.flush()
    days = session.execute(select(CalendarDay).where(CalendarDay.calendar_id == source.id)).scalars().all()
    session.add_all(CalendarDay(calendar_id=calendar_id, day=d.day, working=d.working, name=d.name,
                                source=d.source) for d in days)
    return row


def set_day(store: CalendarStore, uow, calendar_id: str, day: date, working: bool, name: str | None) -> None:
    """An administrator's word on one date: beats the seed, survives re-seeding."""
    session = uow.session
    store.get(session, calendar_id)
    session.execute(delete(CalendarDay).where(CalendarDay.calendar_id == calendar_id, CalendarDay.day == day))
    session.add(CalendarDay(calendar_id=calendar_id, day=day, working=working, name=name, source="admin"))
    _bump(session, calendar_id)


def clear_day(store: CalendarStore, uow, calendar_id: str, day: date) -> None:
    session = uow.session
    store.get(session, calendar_id)
    result = session.execute(delete(CalendarDay).where(CalendarDay.calendar_id == calendar_id,
                                                       CalendarDay.day == day, CalendarDay.source == "admin"))
    if result.rowcount == 0:
        raise NotFound(f"calendar '{calendar_id}' has no administrator entry for {day.isoformat()}")
    _bump(session, calendar_id)


def import_year(store: CalendarStore, uow, calendar_id: str, year: int, days: list[dict]) -> int:
    """A newly published year (国务院办公厅 notice): its holidays and adjusted working
    weekends replace whatever the year had; the year counts as published from now on."""
    session = uow.session
    store.get(session, calendar_id)
    seen = set()
    for item in days:
        if item["date"].year != year:
            raise BadRequest(f"day {item['date'].isoformat()} is not in year {year}")
        if item["date"] in seen:
            raise BadRequest(f"day {item['date'].isoformat()} is listed twice")
        seen.add(item["date"])
    session.execute(delete(CalendarDay).where(CalendarDay.calendar_id == calendar_id,
                                              CalendarDay.day >= date(year, 1, 1),
                                              CalendarDay.day <= date(year, 12, 31)))
    session.add_all(CalendarDay(calendar_id=calendar_id, day=item["date"], working=item["working"],
                                name=item.get("name"), source="admin") for item in days)
    row = _calendar_row(session, calendar_id)
    row.published_years = sorted(set(row.published_years or []) | {year})
    _bump(session, calendar_id)
    return len(days)
