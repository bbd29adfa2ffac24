"""Money is Decimal yuan. Rounding happens only where a rule says so, half-up to the fen."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

FEN = Decimal("0.01")
ZERO = Decimal("0.00")


def yuan(value: str | int | Decimal) -> Decimal:
    """Parse an amount exactly; floats are refused because they cannot be exact."""
    if isinstance(value, float):  # pragma: no cover - guarded by the type, kept for callers without mypy
        raise TypeError("money is never float")
    return Decimal(value)


def round_fen(value: Decimal) -> Decimal:
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def split_exact(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `total` (to the fen) in proportion to `weights` so the parts sum exactly to `total`.

    Largest remainder: every part is first cut down to the fen, then the leftover fen go one each
    to the parts with the largest cut-off remainder; ties go to the earlier part, so the order of
    `weights` makes the result deterministic.
    """
    if total != total.quantize(FEN):
        raise ValueError("total must be in whole fen")
    weight_sum = sum(weights, Decimal(0))
    if not weights:
        return []
    if weight_sum <= 0:
        raise ValueError("weights must sum to a positive number")
    exact = [total * w / weight_sum for w in weights]
    floors = [e.quantize(FEN, rounding=ROUND_DOWN) for e in exact]
    leftover = int((total - sum(floors, Decimal(0))) / FEN)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:leftover]:
        floors[i] += FEN
    return floors


# --- API types ---------------------------------------------------------------------------------------
# One input and one output shape for money in every route (issue 14/18). Inputs are JSON strings only:
# a JSON number cannot carry its scale ("3200" vs "3200.00") and a float cannot be exact, so numbers —
# integers included — are refused rather than half-accepted. The regex is the whole contract: an optional
# minus only where a signed amount is allowed, 1–12 integer digits without leading zeros, at most two
# places; so exponents ("1.5e6"), NaN, Infinity, separators, "+", ".5", "5." and surrounding whitespace
# never reach Decimal(). Outputs always carry exactly two places, whatever scale the value was computed at.

_MONEY_RE = re.compile(r"^(0|[1-9]\d{0,11})(\.\d{1,2})?$")
_SIGNED_MONEY_RE = re.compile(r"^-?(0|[1-9]\d{0,11})(\.\d{1,2})?$")
MONEY_PATTERN = _MONEY_RE.pattern
SIGNED_MONEY_PATTERN = _SIGNED_MONEY_RE.pattern
MONEY_OUT_PATTERN = r"^-?\d+\.\d{2}$"
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def money_str(value: Decimal) -> str:
    """The wire form of an amount: exactly two places, half-up (values are already whole fen in practice)."""
    return format(round_fen(value), "f")


def _money_checker(signed: bool) -> Callable[[Any], Any]:
    rx = _SIGNED_MONEY_RE if signed else _MONEY_RE

    def check(value: Any) -> Any:
        if isinstance(value, Decimal):  # already parsed (a model built in Python, not from JSON)
            return value
        if not isinstance(value, str):
            raise ValueError('amounts are JSON strings such as "30000.00"; JSON numbers are refused')
        if not rx.fullmatch(value):
            raise ValueError(
                'amounts are decimal strings with at most two places and no exponent, sign or spaces, '
                'such as "30000.00"' if not signed else
                'amounts are decimal strings with at most two places and no exponent or spaces, such as "-120.50"'
            )
        return Decimal(value)
    return check


def _money_schema(*, signed: bool, bound: str, example: str) -> WithJsonSchema:
    return WithJsonSchema({
        "type": "string",
        "pattern": SIGNED_MONEY_PATTERN if signed else MONEY_PATTERN,
        "examples": [example],
        "description": f"Yuan as a decimal string with at most two places, {bound}; JSON numbers are refused.",
    })


_AS_MONEY = PlainSerializer(money_str, return_type=str, when_used="json")
_UNSIGNED = BeforeValidator(_money_checker(signed=False))
_SIGNED = BeforeValidator(_money_checker(signed=True))

# Literal Annotated[...] aliases (not built by a factory) so type checkers accept them as types.
MoneyIn = Annotated[
    Decimal, _UNSIGNED, Field(ge=0, max_digits=14, decimal_places=2), _AS_MONEY,
    _money_schema(signed=False, bound="zero or more", example="30000.00"),
]
"""An amount ≥ 0 in a request."""
PositiveMoney = Annotated[
    Decimal, _UNSIGNED, Field(gt=0, max_digits=14, decimal_places=2), _AS_MONEY,
    _money_schema(signed=False, bound="greater than zero", example="30000.00"),
]
"""An amount > 0 in a request."""
SignedMoneyIn = Annotated[
    Decimal, _SIGNED, Field(max_digits=14, decimal_places=2), _AS_MONEY,
    _money_schema(signed=True, bound="possibly negative", example="-120.50"),
]
"""An amount that may be negative (corrections)."""

Money = Annotated[
    Decimal, _AS_MONEY,
    WithJsonSchema({"type": "string", "pattern": MONEY_OUT_PATTERN, "examples": ["30000.00"],
                    "description": "Yuan with exactly two places"}),
]
"""An amount in a response: always a string with exactly two places ("3200.00", never "3200")."""

def decimal_string(pattern: str, what: str) -> BeforeValidator:
    """A validator taking a decimal only as a JSON string matching `pattern` (numbers, exponents and spaces
    refused), so no float's binary rounding ever reaches a stored value. `what` completes the error message."""
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, Decimal):
            return value
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise ValueError(f"{what}; JSON numbers, exponents and spaces are refused")
        return Decimal(value)

    return BeforeValidator(check)


RATE_PATTERN = r"^\d{1,3}(\.\d{1,6})?$"


RATE_STRING = decimal_string(RATE_PATTERN, 'rates are decimal strings with at most 6 places, such as "0.050000"')
"""Put first in a rate's Annotated[Decimal, RATE_STRING, Field(bounds), rate_schema(...)]."""


def rate_schema(example: str, bounds: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": RATE_PATTERN, "examples": [example],
                           "description": f"A decimal string with at most 6 places, {bounds}; JSON numbers are refused"})


def _day(value: Any) -> Any:
    # pydantic alone would take "2026-06-01T00:00:00" (a datetime at midnight) or a Unix timestamp for a date.
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DAY_RE.fullmatch(value):
        raise ValueError("dates are strings YYYY-MM-DD, such as \"2026-06-01\"")
    return value


Day = Annotated[date, BeforeValidator(_day), WithJsonSchema({"type": "string", "format": "date",
                                                              "examples": ["2026-06-01"]})]
"""A calendar date, strictly YYYY-MM-DD."""
