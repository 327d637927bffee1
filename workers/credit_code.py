"""The unified social credit code (统一社会信用代码), GB 32100-2015.

Eighteen characters: registration authority (登记管理部门, 1), entity category (机构类别, 1),
administrative division (登记管理机关行政区划码, 6), the entity's identifier (主体标识码, 9 —
an organization code per GB 11714-1997 with its own check character) and a check character
(校验码, 1).  The market-registration sandbox issues codes with this module and the
`market.registration` connector refuses a code from a department system that fails it.
"""
from __future__ import annotations

import hashlib

# GB 32100-2015 §4.2: digits and capital letters without I, O, Z, S, V (31 characters).
CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(CHARSET)}
# Weight of position i is 3**i mod 31 (GB 32100-2015 §5, table 3).
_WEIGHTS = [pow(3, i, 31) for i in range(17)]
# GB 11714-1997: organization code body of 8 digits/capital letters, weights and mod 11.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_BODY = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# GB 32100-2015 table 1: registration authorities (1 机构编制, 5 民政, 9 工商, Y 其他, …).
_AUTHORITIES = "123456789ABCDEFGNY"


def check_character(first17: str) -> str:
    """The 18th character for the first 17 (GB 32100-2015 §5)."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS))
    return CHARSET[(31 - total % 31) % 31]


def organization_check(body8: str) -> str:
    """The 9th character of an organization code (GB 11714-1997): 11 - sum mod 11, 10 -> X, 11 -> 0."""
    total = sum(_ORG_BODY.index(c) * w for c, w in zip(body8, _ORG_WEIGHTS))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def problem(code: object) -> str | None:
    """Why `code` is not a valid unified social credit code, or None when it is."""
    if not isinstance(code, str) or len(code) != 18:
        return f"{code!r} is not 18 characters long"
    bad = sorted({c for c in code if c not in _VALUE})
    if bad:
        return f"{code!r} contains characters outside GB 32100-2015's set: {''.join(bad)}"
    if code[0] not in _AUTHORITIES:
        return f"{code!r}: {code[0]!r} is not a registration-authority code"
    if not code[2:8].isdigit():
        return f"{code!r}: positions 3-8 must be a 6-digit administrative division code"
    body = code[8:16]
    if any(c not in _ORG_BODY for c in body) or organization_check(body) != code[16]:
        return f"{code!r}: positions 9-17 are not an organization code with a valid GB 11714 check character"
    expected = check_character(code[:17])
    if code[17] != expected:
        return f"{code!r}: check character is {code[17]!r}, expected {expected!r}"
    return None


def is_valid(code: object) -> bool:
    return problem(code) is None


def issue(seed: str, division: str = "320500", authority: str = "9", category: str = "1") -> str:
    """A valid code derived from `seed` (the same seed gives the same code).

    New enterprises' identifiers start with `MA` (assigned by market regulation); the
    remaining six characters come from the seed's hash."""
    if len(division) != 6 or not division.isdigit():
        raise ValueError(f"administrative division must be 6 digits, got {division!r}")
    digest = hashlib.sha256(seed.encode()).digest()
    body = "MA" + "".join(CHARSET[b % len(CHARSET)] for b in digest[:6])
    first17 = authority + category + division + body + organization_check(body)
    return first17 + check_character(first17)
