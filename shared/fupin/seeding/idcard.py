"""Resident ID numbers (GB 11643-1999): 6-digit region, 8-digit birth date, 3-digit sequence whose last
digit is odd for men, and an ISO 7064 MOD 11-2 check character."""

from __future__ import annotations

from datetime import date

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"


def check_char(first17: str) -> str:
    return CHECK[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def make_id(region: str, birth: date, seq: int) -> str:
    """`seq` 1..999; odd for a man, even for a woman."""
    body = f"{region}{birth:%Y%m%d}{seq:03d}"
    return body + check_char(body)


def is_valid(number: str) -> bool:
    return len(number) == 18 and number[:17].isdigit() and check_char(number[:17]) == number[17].upper()


def sex_of(number: str) -> str:
    return "M" if int(number[16]) % 2 else "F"
