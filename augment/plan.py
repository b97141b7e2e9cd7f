"""How many synthetic images each class gets: the arithmetic behind ``rebalance``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from augment.core.errors import UserError
from augment.core.labels import canonical


@dataclass
class ClassPlan:
    name: str
    real: int
    target: int
    add: int

    @property
    def final(self) -> int:
        return self.real + self.add


def share(fraction: float, n: int) -> int:
    """``fraction`` of ``n`` images, rounded half up (Python's ``round`` would give 0.5 × 1 → 0, 0.5 × 5 → 2)."""
    return int(math.floor(fraction * n + 0.5 + 1e-9))


def parse_target(text: str, counts: dict[str, int]) -> dict[str, int]:
    """``max``, ``median``, ``N`` or ``class=N,...`` → a target count per class."""
    text = text.strip().lower()
    values = list(counts.values())
    if text == "max":
        return {c: max(values) for c in counts}
    if text == "median":
        return {c: int(math.ceil(float(np.median(values)))) for c in counts}
    if text.isdigit():
        return {c: int(text) for c in counts}
    if "=" in text:
        out = {c: 0 for c in counts}
        for part in (p.strip() for p in text.split(",") if p.strip()):
            name, _, num = part.partition("=")
            canon = canonical(name)
            if canon is None or canon not in counts:
                raise UserError(f"--target {part}: '{name}' is not a class of this dataset ({', '.join(counts)})")
            if not num.strip().isdigit():
                raise UserError(f"--target {part}: the count must be a whole number")
            out[canon] = int(num)
        return out
    raise UserError(f"--target {text}: use max, median, a number, or class=N,...")


def plan_rebalance(
    counts: dict[str, int],
    target: str = "max",
    classes: list[str] | None = None,
    fraction: float = 1.0,
    available: list[str] | None = None,
    max_ratio: float = 0.0,
) -> list[ClassPlan]:
    """Synthetic images per class: ``fraction`` of the shortfall below the target.

    ``classes`` limits which classes get synthetic images; ``available`` is what the
    generator can make (asking for another class is an error). ``max_ratio`` > 0 caps each
    class at that many times its real count (``capped``), on top of the target and fraction.
    """
    if not 0 <= fraction <= 1:
        raise UserError(f"--fraction {fraction}: must be between 0 and 1")
    if max_ratio < 0:
        raise UserError(f"--max-ratio {max_ratio}: use 0 (no cap) or a positive ratio such as 1")
    targets = parse_target(target, counts)
    chosen = list(counts) if not classes else classes
    for c in chosen:
        if c not in counts:
            raise UserError(f"--classes {c}: not a class of this dataset ({', '.join(counts)})")
        if available is not None and c not in available and targets[c] > counts[c]:
            raise UserError(f"the generator cannot make '{c}' (it knows {', '.join(available)})")
    plan = []
    for c, real in counts.items():
        shortfall = max(0, targets[c] - real) if c in chosen else 0
        add = capped(share(fraction, shortfall), real, max_ratio)
        plan.append(ClassPlan(c, real, targets[c] if c in chosen else real, add))
    return plan


def capped(add: int, real: int, max_ratio: float) -> int:
    """``add`` synthetic images of a class with ``real`` real ones, at most ``max_ratio`` × ``real`` of them
    (rounded half up, as ``share``); ``max_ratio`` 0 means no cap."""
    return min(add, share(max_ratio, real)) if max_ratio > 0 else add
