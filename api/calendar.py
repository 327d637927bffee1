"""Working-day calendars: read, override a day, import a published year, compute deadlines."""
from __future__ import annotations

from datetime import date

import marshmallow as ma

from engine import calendars, legal_service
from engine.audit import record_system
from engine.errors import BadRequest
from engine.identity import require_admin
from engine.models import Calendar, CalendarDay
from sqlalchemy import select

from .auth import engine, principal
from .blueprint import Blueprint

blp = Blueprint("calendar", __name__, url_prefix="/api/v1/calendar",
                description="Working-day calendars (工作日历): holidays and adjusted working weekends (调休)")
# the list of calendars is /api/v1/calendars: a rule "s" under the prefix above would be /api/v1/calendar/s
calendars_blp = Blueprint("calendars", __name__, url_prefix="/api/v1/calendars",
                          description="The working-day calendars (a region's or service hall's own copy)")


class CalendarArg(ma.Schema):
    calendar = ma.fields.String(load_default=calendars.DEFAULT, metadata={"description": "calendar id (default CN)"})


class AddWorkingDaysArgs(CalendarArg):
    start = ma.fields.String(required=True, metadata={"example": "2025-09-26",
                                                      "description": "day of acceptance (not counted), or an instant"})
    days = ma.fields.Float(required=True, metadata={"example": 3, "description": "working days; fractions count office hours"})


class AddWorkingHoursArgs(CalendarArg):
    start = ma.fields.String(required=True, metadata={"example": "2025-09-26T16:00:00+08:00"})
    hours = ma.fields.Float(required=True, metadata={"example": 2})


class DeadlineSchema(ma.Schema):
    date = ma.fields.String()
    deadline = ma.fields.String()
    provisional = ma.fields.Boolean(metadata={"description": "the walk crossed a year with no published schedule"})


class DaysArgs(CalendarArg):
    year = ma.fields.Integer(required=True, validate=ma.validate.Range(1949, 2200))


class DaySchema(ma.Schema):
    date = ma.fields.String()
    working = ma.fields.Boolean()
    name = ma.fields.String(allow_none=True)
    source = ma.fields.String()
    provisional = ma.fields.Boolean()


class WhichCalendar(ma.Schema):
    calendar = ma.fields.String(load_default=None, metadata={"description": "calendar id (default CN); in the "
                                                                            "query or in the body"})


class DayBody(WhichCalendar):
    working = ma.fields.Boolean(required=True)
    name = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=255))


class ImportDay(ma.Schema):
    date = ma.fields.Date(required=True)
    working = ma.fields.Boolean(required=True)
    name = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=255))


class ImportBody(WhichCalendar):
    year = ma.fields.Integer(required=True, validate=ma.validate.Range(1949, 2200))
    days = ma.fields.List(ma.fields.Nested(ImportDay), required=True,
                          metadata={"description": "every holiday and adjusted working weekend of the year"})


class ImportResult(ma.Schema):
    calendar = ma.fields.String()
    year = ma.fields.Integer()
    days = ma.fields.Integer()
    casesRecomputed = ma.fields.Integer()


class CalendarSchema(ma.Schema):
    id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    name = ma.fields.String(allow_none=True)
    timezone = ma.fields.String(allow_none=True)
    officeHours = ma.fields.List(ma.fields.List(ma.fields.String()), allow_none=True,
                                 metadata={"example": [["09:00", "12:00"], ["13:30", "17:30"]]})
    publishedYears = ma.fields.List(ma.fields.Integer(), dump_only=True)
    base = ma.fields.String(load_only=True, allow_none=True, metadata={"description": "copy days from (default CN)"})


def _which(query: dict, body: dict) -> str:
    """The calendar a write names, in the query (as GET and DELETE take it) or in the body:
    a write that named it in the query alone used to change CN."""
    named = {query.get("calendar"), body.get("calendar")} - {None}
    if len(named) > 1:
        raise BadRequest(f"two calendars named: {query['calendar']!r} in the query and {body['calendar']!r} in the body")
    return named.pop() if named else calendars.DEFAULT


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"'{value}' is not a date; write it as YYYY-MM-DD") from None


def _render_calendar(row: Calendar) -> dict:
    return {"id": row.id, "name": row.name, "timezone": row.timezone, "officeHours": row.office_hours,
            "publishedYears": row.published_years}


@calendars_blp.route("", methods=["GET"])
@calendars_blp.response(200, CalendarSchema(many=True))
def list_calendars():
    with engine().uow(write=False) as uow:
        engine().calendars.get(uow.session)          # make sure CN exists
        return [_render_calendar(r) for r in uow.session.execute(select(Calendar).order_by(Calendar.id)).scalars()]


@calendars_blp.route("", methods=["POST"])
@calendars_blp.arguments(CalendarSchema)
@calendars_blp.response(201, CalendarSchema)
def create_calendar(body):
    """A region's or service hall's own calendar, a copy of `base` to override."""
    require_admin(principal(), "creating a calendar")
    with engine().uow() as uow:
        row = calendars.create_calendar(engine().calendars, uow, body["id"], body.get("name"), body.get("base"),
                                        body.get("timezone"), body.get("officeHours"))
        result = _render_calendar(row)
        record_system(uow.session, principal().user_id, "CalendarCreated", {"calendar": body["id"],
                                                                            "base": body.get("base")})
        uow.commit()
    return result


@blp.route("/add-working-days")
@blp.arguments(AddWorkingDaysArgs, location="query")
@blp.response(200, DeadlineSchema)
def add_working_days(args):
    """N working days after the day of acceptance: ends 23:59:59 of the Nth working day."""
    with engine().uow(write=False) as uow:
        cal = engine().calendars.get(uow.session, args["calendar"])
    days = args["days"]
    try:
        start = _instant_or_day(args["start"], cal)
        if days == int(days):
            return cal.add_working_days(start, int(days)).as_dict()
        return cal.add_working_days_fractional(start, days).as_dict()
    except ValueError as err:
        raise BadRequest(str(err)) from err


@blp.route("/add-working-hours")
@blp.arguments(AddWorkingHoursArgs, location="query")
@blp.response(200, DeadlineSchema)
def add_working_hours(args):
    """`hours` of office time after `start` (office hours of the calendar)."""
    with engine().uow(write=False) as uow:
        cal = engine().calendars.get(uow.session, args["calendar"])
    try:
        return cal.add_working_hours(_instant_or_day(args["start"], cal), args["hours"]).as_dict()
    except ValueError as err:
        raise BadRequest(str(err)) from err


def _instant_or_day(value: str, cal):
    from datetime import datetime
    try:
        if len(value) <= 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=cal.tz)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=cal.tz)
    except ValueError:
        raise BadRequest(f"start '{value}' is neither a date (YYYY-MM-DD) nor an ISO-8601 instant") from None


@blp.route("/days")
@blp.arguments(DaysArgs, location="query")
@blp.response(200, DaySchema(many=True))
def list_days(args):
    """Every day of `year` that is not a plain weekday/weekend (holidays, 调休), as the calendar sees it."""
    with engine().uow(write=False) as uow:
        cal = engine().calendars.get(uow.session, args["calendar"])
        rows = uow.session.execute(select(CalendarDay.day).where(
            CalendarDay.calendar_id == args["calendar"], CalendarDay.day >= date(args["year"], 1, 1),
            CalendarDay.day <= date(args["year"], 12, 31)).order_by(CalendarDay.day)).scalars()
        return [cal.day_info(d).as_dict() for d in rows]


@blp.route("/days/<day>")
@blp.arguments(CalendarArg, location="query")
@blp.response(200, DaySchema)
def get_day(args, day):
    with engine().uow(write=False) as uow:
        cal = engine().calendars.get(uow.session, args["calendar"])
    try:
        return cal.day_info(_day(day)).as_dict()
    except ValueError as err:
        raise BadRequest(str(err)) from err


@blp.route("/days/<day>", methods=["PUT"])
@blp.arguments(WhichCalendar, location="query")
@blp.arguments(DayBody)
@blp.response(200, DaySchema)
def put_day(query, body, day):
    """Override one day (an administrator's word beats the published seed); open deadlines
    on this calendar are recomputed."""
    require_admin(principal(), "changing the calendar")
    eng, when, calendar = engine(), _day(day), _which(query, body)
    with eng.uow() as uow:
        calendars.set_day(eng.calendars, uow, calendar, when, body["working"], body.get("name"))
        record_system(uow.session, principal().user_id, "CalendarDaySet", {
            "calendar": calendar, "day": when.isoformat(), "working": body["working"], "name": body.get("name")})
        uow.commit()
    legal_service.recompute_calendar(eng, calendar, principal())
    with eng.uow(write=False) as uow:
        return eng.calendars.get(uow.session, calendar).day_info(when).as_dict()


@blp.route("/days/<day>", methods=["DELETE"])
@blp.arguments(CalendarArg, location="query")
@blp.response(204)
def delete_day(args, day):
    """Drop an administrator's override (the seed, if any, applies again)."""
    require_admin(principal(), "changing the calendar")
    eng = engine()
    with eng.uow() as uow:
        calendars.clear_day(eng.calendars, uow, args["calendar"], _day(day))
        record_system(uow.session, principal().user_id, "CalendarDayCleared", {"calendar": args["calendar"],
                                                                               "day": day})
        uow.commit()
    legal_service.recompute_calendar(eng, args["calendar"], principal())


@blp.route("/import", methods=["POST"])
@blp.arguments(WhichCalendar, location="query")
@blp.arguments(ImportBody)
@blp.response(200, ImportResult)
def import_year(query, body):
    """Import a newly published year (国务院办公厅 notice): its days replace the year's,
    the year stops being provisional, and open deadlines on this calendar are recomputed."""
    require_admin(principal(), "importing a calendar year")
    eng, calendar = engine(), _which(query, body)
    with eng.uow() as uow:
        n = calendars.import_year(eng.calendars, uow, calendar, body["year"], body["days"])
        record_system(uow.session, principal().user_id, "CalendarYearImported", {
            "calendar": calendar, "year": body["year"], "days": n})
        uow.commit()
    touched = legal_service.recompute_calendar(eng, calendar, principal())
    return {"calendar": calendar, "year": body["year"], "days": n, "casesRecomputed": touched}
