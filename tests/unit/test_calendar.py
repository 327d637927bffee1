"""The working-day calendar (工作日历): legal time limits counted on China's official calendar.

Dates come from the State Council's schedules as the pinned `holidays` package (0.109)
carries them: 2025 National Day + Mid-Autumn 10-01..08 off with Sunday 09-28 and Saturday
10-11 worked; 2026 Spring Festival 02-15..23 off with Saturdays 02-14 and 02-28 worked.
The package has no schedule for 2027, so 2027 is weekends-only and provisional.
"""
from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.calendar import DayEntry, Deadline, OfficeHours, WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = WorkingCalendar.from_holidays()


def at(y, m, d, hh=0, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def end_of(y, m, d) -> datetime:
    return datetime(y, m, d, 23, 59, 59, tzinfo=SHANGHAI)


# ----- working days ------------------------------------------------------------------

def test_three_working_days_from_friday_26_september_2025_end_on_tuesday_because_sunday_28_is_worked():
    assert CN.add_working_days(date(2025, 9, 26), 3) == Deadline(date(2025, 9, 30), end_of(2025, 9, 30), False)


def test_four_working_days_from_friday_26_september_2025_jump_national_day_and_mid_autumn_to_thursday_9_october():
    assert CN.add_working_days(date(2025, 9, 26), 4).date == date(2025, 10, 9)
    assert CN.add_working_days(date(2025, 9, 26), 5).date == date(2025, 10, 10)
    assert CN.add_working_days(date(2025, 9, 26), 6).date == date(2025, 10, 11)   # Saturday, worked


def test_the_day_of_acceptance_is_not_counted_even_when_it_is_a_working_day():
    assert CN.add_working_days(date(2025, 9, 22), 1).date == date(2025, 9, 23)      # Monday -> Tuesday
    assert CN.add_working_days(at(2025, 9, 22, 8, 30), 1).date == date(2025, 9, 23)


def test_acceptance_during_the_national_day_holiday_counts_from_the_first_working_day_after_it():
    assert CN.add_working_days(date(2025, 10, 3), 1).date == date(2025, 10, 9)


def test_zero_working_days_is_the_start_day_itself_at_23_59_59_even_on_a_holiday():
    assert CN.add_working_days(date(2025, 10, 1), 0) == Deadline(date(2025, 10, 1), end_of(2025, 10, 1), False)


def test_deadlines_run_out_at_23_59_59_shanghai_time():
    result = CN.add_working_days(date(2025, 9, 26), 3)
    assert result.deadline.utcoffset() == timedelta(hours=8)
    assert result.as_dict() == {"date": "2025-09-30", "deadline": "2025-09-30T23:59:59+08:00", "provisional": False}


def test_a_utc_start_is_read_in_shanghai_time_and_a_naive_one_as_shanghai_local_time():
    friday_17_utc_is_saturday_01_local = datetime(2025, 9, 26, 17, 0, tzinfo=timezone.utc)
    assert CN.add_working_days(friday_17_utc_is_saturday_01_local, 1).date == date(2025, 9, 28)
    assert CN.add_working_days(datetime(2025, 9, 26, 23, 30), 1).date == date(2025, 9, 28)


def test_the_time_zone_is_configurable():
    berlin = WorkingCalendar.from_holidays(tz="Europe/Berlin")
    assert berlin.add_working_days(date(2025, 9, 26), 3).deadline.isoformat() == "2025-09-30T23:59:59+02:00"


# ----- 2026 Spring Festival ---------------------------------------------------------------

def test_2026_spring_festival_is_off_from_sunday_15_to_monday_23_february_with_saturdays_14_and_28_worked():
    off = [date(2026, 2, 15) + timedelta(days=k) for k in range(9)]
    assert not any(CN.is_working_day(d) for d in off)
    assert CN.is_working_day(date(2026, 2, 14)) and CN.is_working_day(date(2026, 2, 28))
    assert CN.day_info(date(2026, 2, 17)).name == "春节"
    assert CN.day_info(date(2026, 2, 14)).name == "调休上班（2026-02-20 休息）"


def test_one_working_day_from_friday_13_february_2026_is_the_worked_saturday_14():
    assert CN.add_working_days(date(2026, 2, 13), 1).date == date(2026, 2, 14)


def test_one_working_day_from_the_worked_saturday_14_february_2026_jumps_the_festival_to_tuesday_24():
    assert CN.add_working_days(date(2026, 2, 14), 1).date == date(2026, 2, 24)
    assert CN.add_working_days(date(2026, 2, 14), 4).date == date(2026, 2, 27)
    assert CN.add_working_days(date(2026, 2, 14), 5).date == date(2026, 2, 28)   # Saturday, worked
    assert CN.add_working_days(date(2026, 2, 14), 6).date == date(2026, 3, 2)


# ----- published schedules and provisional results -----------------------------------------

def test_the_pinned_holidays_package_publishes_china_schedules_for_2001_to_2026():
    # Update with the `holidays` pin: a new release adds next year's schedule in December.
    assert WorkingCalendar.seed_published_years() == set(range(2001, 2027))


def test_2027_has_no_published_schedule_so_national_day_is_a_working_friday_and_the_result_provisional():
    result = CN.add_working_days(date(2027, 9, 30), 1)
    assert result.date == date(2027, 10, 1)
    assert result.provisional is True
    assert CN.day_info(date(2027, 10, 1)).as_dict() == {
        "date": "2027-10-01", "working": True, "name": None, "source": "weekday", "provisional": True}
    assert CN.add_working_days(date(2027, 2, 5), 1).date == date(2027, 2, 8)   # eve of Spring Festival: Friday


def test_a_limit_that_runs_from_2026_into_2027_is_provisional_and_one_inside_2026_is_not():
    assert CN.add_working_days(date(2026, 12, 28), 10).provisional is True
    assert CN.add_working_days(date(2026, 12, 1), 10).provisional is False


def test_a_year_left_out_of_from_holidays_is_weekends_only_and_provisional():
    only_2026 = WorkingCalendar.from_holidays(years=[2026])
    result = only_2026.add_working_days(date(2025, 9, 30), 1)
    assert (result.date, result.provisional) == (date(2025, 10, 1), True)


def test_a_worked_weekend_from_next_years_schedule_is_seeded_into_this_year():
    # The 2002 New Year schedule made Saturday 29 December 2001 a working day.
    assert DayEntry(date(2001, 12, 29), True, "调休上班（2002-01-02 休息）", "seed") in WorkingCalendar.seed_entries([2001])


# ----- administrator overrides -------------------------------------------------------------

def test_an_administrator_closing_monday_29_september_2025_moves_the_three_day_deadline_to_9_october():
    typhoon = DayEntry(date(2025, 9, 29), False, "台风停工", "admin")
    closed = CN.with_overrides([typhoon])
    assert closed.add_working_days(date(2025, 9, 26), 3).date == date(2025, 10, 9)
    assert CN.add_working_days(date(2025, 9, 26), 3).date == date(2025, 9, 30)   # the original is unchanged
    assert closed.day_info(date(2025, 9, 29)).source == "admin"


def test_an_administrator_entry_wins_over_the_seed_whatever_the_order():
    admin = DayEntry(date(2025, 9, 28), False, "不调休", "admin")
    seed = DayEntry(date(2025, 9, 28), True, "调休上班", "seed")
    assert not CN.with_overrides([admin]).is_working_day(date(2025, 9, 28))
    assert not WorkingCalendar(entries=[admin, seed], published_years=[2025]).is_working_day(date(2025, 9, 28))
    assert CN.with_overrides([admin]).add_working_days(date(2025, 9, 26), 1).date == date(2025, 9, 29)


def test_an_administrator_importing_the_2027_national_day_schedule_makes_2027_results_final():
    national_day = [DayEntry(date(2027, 10, 1) + timedelta(days=k), False, "国庆节", "admin") for k in range(7)]
    declared = CN.with_overrides(national_day, published_years=[2027])
    result = declared.add_working_days(date(2027, 9, 30), 1)
    assert (result.date, result.provisional) == (date(2027, 10, 8), False)


def test_from_holidays_takes_overrides_and_extra_published_years():
    calendar = WorkingCalendar.from_holidays(
        years=[2027], overrides=[DayEntry(date(2027, 10, 1), False, "国庆节", "admin")], extra_published_years=[2027])
    assert calendar.day_info(date(2027, 10, 1)).as_dict() == {
        "date": "2027-10-01", "working": False, "name": "国庆节", "source": "admin", "provisional": False}


# ----- working hours --------------------------------------------------------------------------

def test_two_working_hours_from_monday_11_00_skip_the_lunch_break_and_end_at_14_30():
    assert CN.add_working_hours(at(2025, 9, 22, 11), 2).deadline == at(2025, 9, 22, 14, 30)


def test_one_working_hour_from_monday_17_00_runs_over_the_evening_to_tuesday_09_30():
    assert CN.add_working_hours(at(2025, 9, 22, 17), 1).deadline == at(2025, 9, 23, 9, 30)


def test_one_working_hour_from_tuesday_30_september_2025_17_00_runs_over_national_day_to_9_october_09_30():
    assert CN.add_working_hours(at(2025, 9, 30, 17), 1) == Deadline(date(2025, 10, 9), at(2025, 10, 9, 9, 30), False)


def test_two_working_hours_from_friday_26_september_2025_16_00_end_on_the_worked_sunday_morning():
    # 16:00-17:30 is 1.5 h, the last half hour is Sunday 09:00-09:30.
    assert CN.add_working_hours(at(2025, 9, 26, 16), 2).deadline == at(2025, 9, 28, 9, 30)
    closing_at_17 = WorkingCalendar.from_holidays(office_hours=OfficeHours(((time(9), time(12)), (time(13), time(17)))))
    assert closing_at_17.add_working_hours(at(2025, 9, 26, 16), 2).deadline == at(2025, 9, 28, 10)


def test_a_start_outside_office_hours_begins_at_the_next_office_period():
    assert CN.add_working_hours(at(2025, 9, 27, 8), 1).deadline == at(2025, 9, 28, 10)        # Saturday, off
    assert CN.add_working_hours(at(2025, 9, 22, 12, 15), 1).deadline == at(2025, 9, 22, 14, 30)  # lunch
    assert CN.add_working_hours(at(2025, 9, 22, 7), 0).deadline == at(2025, 9, 22, 9)


def test_a_limit_that_ends_exactly_at_closing_time_stays_on_that_day():
    assert CN.add_working_hours(at(2025, 9, 22, 16), 1.5).deadline == at(2025, 9, 22, 17, 30)
    assert CN.add_working_hours(at(2025, 9, 22, 9), 7 * 3).deadline == at(2025, 9, 24, 17, 30)


def test_half_a_working_day_is_half_of_the_7_office_hours():
    assert CN.office_hours.day_hours == 7
    assert CN.add_working_days_fractional(at(2025, 9, 22, 9), 0.5).deadline == at(2025, 9, 22, 14)
    assert CN.add_working_days_fractional(at(2025, 9, 22, 9), 2.5).deadline == at(2025, 9, 24, 14)


def test_working_hours_into_2027_are_provisional():
    assert CN.add_working_hours(at(2026, 12, 31, 17), 1).provisional is True
    assert CN.add_working_hours(at(2026, 12, 30, 17), 1).provisional is False


# ----- natural days ----------------------------------------------------------------------------

def test_ten_natural_days_from_26_september_2025_end_on_6_october_even_though_it_is_a_holiday():
    assert CN.add_natural_days(date(2025, 9, 26), 10) == Deadline(date(2025, 10, 6), end_of(2025, 10, 6), False)


def test_natural_days_ending_on_a_day_off_can_be_extended_to_the_next_working_day():
    extended = CN.add_natural_days(date(2025, 9, 26), 10, extend_past_days_off=True)
    assert (extended.date, extended.deadline) == (date(2025, 10, 9), end_of(2025, 10, 9))


# ----- counting --------------------------------------------------------------------------------

def test_a_pause_from_26_september_to_9_october_2025_lasted_four_working_days():
    assert CN.working_days_between(date(2025, 9, 26), date(2025, 10, 9)) == 4
    assert CN.working_days_between(date(2025, 9, 30), date(2025, 10, 8)) == 0
    assert CN.working_days_between(date(2025, 9, 26), date(2025, 9, 26)) == 0
    assert CN.working_days_between(date(2025, 10, 9), date(2025, 9, 26)) == 0


def test_working_seconds_count_only_office_hours_of_working_days():
    assert CN.working_seconds_between(at(2025, 9, 22, 10), at(2025, 9, 22, 15)) == 3.5 * 3600
    assert CN.working_seconds_between(at(2025, 9, 26, 17), at(2025, 9, 28, 10)) == 1.5 * 3600
    assert CN.working_seconds_between(at(2025, 9, 30, 17), at(2025, 10, 9, 9, 30)) == 3600
    assert CN.working_seconds_between(at(2025, 9, 22, 18), at(2025, 9, 23, 8)) == 0
    utc_start = datetime(2025, 9, 22, 2, 0, tzinfo=timezone.utc)                   # 10:00 in Shanghai
    assert CN.working_seconds_between(utc_start, at(2025, 9, 22, 11)) == 3600


def test_adding_then_counting_working_days_gives_back_n_for_starts_across_2025_and_2026():
    for offset in range(0, 730, 3):
        start = date(2025, 1, 1) + timedelta(days=offset)
        for n in (0, 1, 2, 3, 5, 7, 10, 15, 20, 30, 60):
            result = CN.add_working_days(start, n)
            assert CN.working_days_between(start, result.date) == n, (start, n)
            if n:
                assert CN.is_working_day(result.date), (start, n)
                assert CN.working_days_between(start, result.date - timedelta(days=1)) == n - 1, (start, n)


def test_a_limit_used_up_to_its_deadline_used_n_working_days_whatever_the_hour_of_acceptance():
    for offset in range(0, 730, 3):
        start = at(2025, 1, 1, 10) + timedelta(days=offset, hours=offset % 9)
        for n in (1, 3, 5, 10, 30):
            deadline = CN.add_working_days(start, n).deadline
            assert CN.working_days_after(start, deadline) == n, (start, n)
    assert CN.working_days_after(at(2025, 9, 26, 10), at(2025, 9, 26, 16)) == 0.0        # the day of acceptance
    assert CN.working_days_after(at(2025, 9, 26, 10), at(2025, 9, 28, 10)) == 1 / 7      # the worked Sunday's first hour
    assert CN.working_days_after(date(2025, 9, 30), at(2025, 10, 9, 12)) == 3 / 7          # over National Day


def test_adding_then_counting_working_hours_gives_back_the_hours_for_starts_at_any_time_of_day():
    for offset in range(0, 400, 5):
        start = at(2025, 9, 1) + timedelta(hours=offset * 7 + 0.25 * offset)
        for hours in (0, 0.5, 1, 3.5, 7, 8, 20.25, 70):
            result = CN.add_working_hours(start, hours)
            assert math.isclose(CN.working_seconds_between(start, result.deadline), hours * 3600), (start, hours)


# ----- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("n, message", [
    (-1, "must not be negative"),
    (3651, "more than the 3650"),
    (2.5, "must be a whole number"),
    (True, "must be a whole number"),
    ("3", "must be a whole number"),
])
def test_a_bad_number_of_working_days_is_refused_with_a_clear_message(n, message):
    with pytest.raises(ValueError, match=message):
        CN.add_working_days(date(2025, 9, 26), n)


@pytest.mark.parametrize("hours, message", [
    (-0.5, "must not be negative"),
    (float("nan"), "finite number"),
    (7 * 3650 + 1, "more than 3650 working days"),
    ("2", "finite number"),
])
def test_a_bad_number_of_working_hours_is_refused_with_a_clear_message(hours, message):
    with pytest.raises(ValueError, match=message):
        CN.add_working_hours(at(2025, 9, 26, 10), hours)


def test_a_start_that_is_not_a_date_or_lies_outside_the_calendar_is_refused():
    with pytest.raises(ValueError, match="must be a date or a datetime, got str"):
        CN.add_working_days("2025-09-26", 3)
    with pytest.raises(ValueError, match="must be a datetime"):
        CN.add_working_hours(date(2025, 9, 26), 2)
    with pytest.raises(ValueError, match="outside calendar 'CN', which covers 2000-01-01"):
        CN.add_working_days(date(1999, 12, 31), 3)
    with pytest.raises(ValueError, match="negative"):
        CN.add_natural_days(date(2025, 9, 26), -1)
    with pytest.raises(ValueError, match="between 0 and 3650"):
        CN.add_working_days_fractional(at(2025, 9, 26, 10), -0.5)


def test_a_bad_calendar_definition_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="unknown time zone 'Asia/Peking'"):
        WorkingCalendar(tz="Asia/Peking")
    with pytest.raises(ValueError, match="source .* must be one of"):
        DayEntry(date(2025, 10, 1), False, "国庆节", source="manual")
    with pytest.raises(ValueError, match="must be True or False"):
        DayEntry(date(2025, 10, 1), "no")
    with pytest.raises(ValueError, match="overlaps"):
        OfficeHours(((time(9), time(12)), (time(11), time(17))))
    with pytest.raises(ValueError, match="ends before it starts"):
        OfficeHours(((time(12), time(9)),))
    with pytest.raises(ValueError, match="must be DayEntry values"):
        WorkingCalendar(entries=[(date(2025, 10, 1), False)])


def test_a_built_calendar_cannot_be_changed_in_place():
    with pytest.raises(AttributeError, match="use with_overrides"):
        CN.published_years = frozenset({2027})
    with pytest.raises(AttributeError):
        CN.office_hours.periods = ()
    assert isinstance(CN.entries, tuple) and isinstance(CN.published_years, frozenset)
