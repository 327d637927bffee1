"""Dates on the wire: Camunda's yyyy-MM-dd'T'HH:mm:ss.SSSZ in the display zone."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from engine import variables
from engine.variables import format_date, parse_date


def reference(value: datetime) -> str:
    """The format spelled out with strftime, as engine.variables wrote it before isoformat."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    local = value.astimezone(variables._ZONE)
    return (f"{local.year:04d}" + local.strftime("-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}"
            + local.strftime("%z"))


@pytest.fixture(params=["Asia/Shanghai", "Europe/Berlin", "America/St_Johns", "UTC"])
def zone(request):
    before = variables._ZONE
    variables.set_display_zone(request.param)
    yield request.param
    variables._ZONE = before


def test_dates_are_written_as_camunda_writes_them(zone):
    draw = random.Random(7)
    start = datetime(1850, 1, 1, tzinfo=timezone.utc)
    values = [start + timedelta(seconds=draw.uniform(0, 250 * 365 * 86400)) for _ in range(3000)]
    values += [datetime(2026, 3, 29, 0, 59, 59, 999999), datetime(2026, 10, 25, 1, 0), datetime(1900, 1, 1),
               datetime(999, 6, 1, tzinfo=timezone.utc), datetime(2026, 12, 6, 8, 1, 2, 345678)]
    for value in values:
        assert format_date(value) == reference(value), value
    assert format_date(None) is None


def test_a_written_date_reads_back_to_the_millisecond(zone):
    value = datetime(2026, 12, 6, 8, 1, 2, 345678, tzinfo=timezone.utc)
    assert parse_date(format_date(value)) == value.replace(microsecond=345000)


@pytest.mark.parametrize("year", [1, 99, 999])
def test_a_year_before_1000_is_written_in_four_digits_and_reads_back(zone, year):
    value = datetime(year, 6, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)
    text = format_date(value)
    assert text.startswith(f"{year:04d}-"), text
    assert parse_date(text) == value


def test_shanghai_dates_carry_the_offset_without_a_colon():
    assert format_date(datetime(2026, 12, 6, 8, 1, 2, 345678)) == "2026-12-06T16:01:02.345+0800"
