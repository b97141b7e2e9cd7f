"""Setting checks shared by the settings dataclasses: one rule per setting, one line naming the option
when it fails, checked before anything is read or written."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from augment.core.errors import UserError
from augment.core.labels import CANONICAL_CLASSES

# (setting name, test of its value, what to give instead)
Rule = tuple[str, Callable[[Any], bool], str]


def option_name(setting: str) -> str:
    """The command-line option of a setting: ``lr_g`` -> ``--lr-g``."""
    return "--" + setting.replace("_", "-")


def shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: math.isfinite(v) and v >= low


def positive(v: Any) -> bool:
    return math.isfinite(v) and v > 0


def below_one(v: Any) -> bool:
    """In [0, 1): decays, momenta, shares."""
    return math.isfinite(v) and 0 <= v < 1


def one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda v: v in choices


def check_rules(settings: Any, rules: Iterable[Rule]) -> None:
    """Raise a UserError for the first setting of ``settings`` that breaks its rule."""
    for name, ok, need in rules:
        value = getattr(settings, name)
        try:
            good = ok(value)
        except TypeError:  # e.g. a string where a number belongs, from a JSON config
            good = False
        if not good:
            raise UserError(f"{option_name(name)} {shown(value)}: {need}")


def check_class_names(names: Iterable[str]) -> None:
    """Class names must be canonical (``--classes`` on the command line is mapped to them first)."""
    unknown = [str(c) for c in names if c not in CANONICAL_CLASSES]
    if unknown:
        raise UserError(f"--classes {','.join(unknown)}: not a known class; use some of {', '.join(CANONICAL_CLASSES)}")
