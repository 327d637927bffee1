"""The unified social credit code (统一社会信用代码, GB 32100-2015) the market-registration
sandbox issues and the market.registration connector checks."""
from __future__ import annotations

import pytest

from workers import credit_code

REAL = ["914403001922038216",      # 华为技术有限公司
        "91440300708461136T",      # 深圳市腾讯计算机系统有限公司
        "91350100M000100Y43"]      # the example in GB 32100-2015


@pytest.mark.parametrize("code", REAL)
def test_codes_of_real_enterprises_are_valid(code):
    assert credit_code.problem(code) is None


def test_every_issued_code_passes_both_check_characters():
    codes = {credit_code.issue(f"task-{i}", division="110105") for i in range(500)}
    assert len(codes) == 500
    for code in codes:
        assert credit_code.is_valid(code), credit_code.problem(code)
        assert code.startswith("91110105MA")


def test_the_same_seed_gives_the_same_code():
    assert credit_code.issue("ext-task-42") == credit_code.issue("ext-task-42")


@pytest.mark.parametrize("position", range(18))
def test_changing_any_single_character_is_detected(position):
    code = REAL[0]
    for replacement in credit_code.CHARSET:
        if replacement == code[position]:
            continue
        changed = code[:position] + replacement + code[position + 1:]
        assert not credit_code.is_valid(changed), changed


@pytest.mark.parametrize("code, reason", [
    ("91320500MA1XXXXX0X", "GB 11714"),             # the README's placeholder
    ("9144030019220382", "18 characters"),
    ("914403001922038I16", "outside"),              # I is not in the character set
    ("914403001922038217", "check character is '7', expected '6'"),
    (None, "18 characters"),
])
def test_invalid_codes_say_why(code, reason):
    assert reason in credit_code.problem(code)
