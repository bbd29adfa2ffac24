"""Money is Decimal yuan. Rounding happens only where a rule says so, half-up to the fen."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

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
