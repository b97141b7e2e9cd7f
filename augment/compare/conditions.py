"""The conditions compare trains: one table, one entry per condition.

An entry is all there is to a condition: its name, its phrase in ``--conditions``' help, its words in
REPORT.md and results.json, and what it trains on and how (the share of each class's shortfall filled
with GAN samples and with duplicates of real images, a cap on the GAN samples, the TrainConfig settings
it changes). A condition without GAN samples is real-only: it runs without a generator. A family of
names (``gan-capR``) is one entry whose name takes a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from augment.core.errors import UserError

if TYPE_CHECKING:
    from augment.compare.spec import CompareSpec

DEFAULT_CONDITIONS = ("baseline", "gan", "oversample", "weighted")


@dataclass
class ConditionSpec:
    """What one condition trains on and how, every number resolved from the CompareSpec (a run's
    result.json keeps it as ``recipe``)."""

    synthetic: float = 0.0  # share of each class's shortfall filled with GAN samples
    max_ratio: float = 0.0  # > 0: at most this × the class's real count of GAN samples (augment.plan.capped)
    duplicates: float = 0.0  # share of the shortfall filled with duplicates of real images (after the GAN's part)
    train: dict[str, Any] = field(default_factory=dict)  # the TrainConfig settings the condition changes


def _no_settings(spec: CompareSpec) -> dict[str, Any]:
    return {}


def _class_weighted(spec: CompareSpec) -> dict[str, Any]:
    return {"class_weighted": True}


def _synthetic_weight(spec: CompareSpec) -> dict[str, Any]:
    return {"synthetic_weight": spec.synthetic_weight}


def _head_refit(spec: CompareSpec) -> dict[str, Any]:
    return {"refit_head_epochs": spec.refit_epochs}


def _cap_ratio(spec: CompareSpec, given: str) -> float:
    """A capped condition's ratio: the number its name carries (gan-cap0.5, transfer-cap0.5), else --max-ratio."""
    name, _, arg = given.partition("-cap")
    ratio = float(arg) if arg else spec.max_ratio
    if ratio <= 0:
        raise UserError(f"--conditions {given}: the cap must be above 0 (e.g. {name}-cap0.5, or --max-ratio 0.5)")
    return ratio


GAN_POOL, TRANSFER_POOL = "gan", "transfer"  # where a condition's synthetic faces come from: --generator, --transfer


@dataclass(frozen=True)
class Condition:
    """One entry of ``CONDITIONS``."""

    name: str
    help: str  # its phrase in --conditions' help ("" when the name says it)
    about: str  # its words, formatted with its ConditionSpec's fields ({synthetic:.0%}, {train[synthetic_weight]:g})
    synthetic: float = 0.0  # share of each class's shortfall filled with GAN samples (0: real-only)
    duplicates: float = 0.0  # share filled with duplicates of real images, after the GAN's part
    train: Callable[[CompareSpec], dict[str, Any]] = _no_settings  # the TrainConfig settings it changes
    cap: Callable[[CompareSpec, str], float] | None = None  # its cap on GAN samples, from the name as given
    param: str = ""  # a family: the pattern of what may follow the name (gan-cap0.5)
    family: str = ""  # the family in words, for a refusal ("gan-capR, e.g. gan-cap0.5")
    pool: str = GAN_POOL  # its synthetic faces: the noise generator's (--generator) or the transfer run's (--transfer)

    @property
    def real_only(self) -> bool:
        return self.synthetic == 0

    def matches(self, given: str) -> bool:
        """Whether a condition name as given on the command line is this entry (gan-cap0.5 is gan-cap's)."""
        return given == self.name or bool(self.param and re.fullmatch(re.escape(self.name) + self.param, given))


# The words of the effects the entries share.
REAL = "real images only"
GAN = "GAN samples fill {synthetic:.0%} of each class's shortfall to the target"
TRANSFER = "real faces of other classes, re-drawn with the class's expression, fill {synthetic:.0%} of its shortfall"
CAP_PARAM = r"(\d+(?:\.\d+)?)?"
CAP = ", at most {max_ratio:g} × the class's real count"
DUPLICATES = "random duplicates of real images fill the shortfall"
REST = "random duplicates of real images fill the rest"
WEIGHTED = "class-weighted cross-entropy"
LOSS = "each synthetic face's loss × {train[synthetic_weight]:g}"
REFIT = "then the head re-fitted for {train[refit_head_epochs]} epochs on class-balanced real faces, body frozen"
REFIT_HELP = "--refit-epochs of head refit on class-balanced real faces"

CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition("baseline", "real only", REAL),
        Condition("gan", "fill the shortfall to --target", GAN, synthetic=1.0),
        Condition("oversample", "duplicates of real images", DUPLICATES, duplicates=1.0),
        Condition("weighted", "class-weighted loss", WEIGHTED, train=_class_weighted),
        Condition("gan+weighted", "", f"{GAN}; {WEIGHTED}", synthetic=1.0, train=_class_weighted),
        Condition("gan25", "a quarter of the shortfall", GAN, synthetic=0.25),
        Condition("gan50", "half of it", GAN, synthetic=0.5),
        Condition(
            "gan-cap",
            "at most --max-ratio × real; gan-cap0.5 names its ratio",
            GAN + CAP,
            synthetic=1.0,
            cap=_cap_ratio,
            param=CAP_PARAM,
            family="gan-capR, e.g. gan-cap0.5",
        ),
        Condition(
            "gan-w", "synthetic loss × --synthetic-weight", f"{GAN}; {LOSS}", synthetic=1.0, train=_synthetic_weight
        ),
        Condition(
            "gan+oversample",
            "half the shortfall GAN samples, the rest duplicates of real images",
            f"{GAN}; {REST}",
            synthetic=0.5,
            duplicates=0.5,
        ),
        Condition("gan-refit", f"gan, then {REFIT_HELP}", f"{GAN}; {REFIT}", synthetic=1.0, train=_head_refit),
        Condition("refit", "real only, then the head refit", REFIT, train=_head_refit),
        Condition(
            "transfer", "expression-transfer faces (--transfer) fill the shortfall", TRANSFER, 1.0, pool=TRANSFER_POOL
        ),
        Condition(
            "transfer+oversample",
            "half the shortfall transfer faces, the rest duplicates",
            f"{TRANSFER}; {REST}",
            synthetic=0.5,
            duplicates=0.5,
            pool=TRANSFER_POOL,
        ),
        Condition(
            "transfer-cap",
            "transfer faces, at most --max-ratio × real; transfer-cap0.5 names its ratio",
            TRANSFER + CAP,
            synthetic=1.0,
            cap=_cap_ratio,
            param=CAP_PARAM,
            family="transfer-capR, e.g. transfer-cap0.5",
            pool=TRANSFER_POOL,
        ),
    )
}


def condition(given: str) -> Condition:
    """The table's entry of a condition name as given on the command line."""
    for c in CONDITIONS.values():
        if c.matches(given):
            return c
    families = "; ".join(c.family for c in CONDITIONS.values() if c.family)
    raise UserError(
        f"--conditions {given}: use some of {', '.join(CONDITIONS)}" + (f" (or {families})" if families else "")
    )


def condition_spec(given: str, spec: CompareSpec) -> ConditionSpec:
    """What condition ``given`` trains on and how under ``spec``."""
    c = condition(given)
    ratio = c.cap(spec, given) if c.cap else 0.0
    return ConditionSpec(synthetic=c.synthetic, max_ratio=ratio, duplicates=c.duplicates, train=c.train(spec))


def describe(given: str, cs: ConditionSpec) -> str:
    """Condition ``given``, trained as ``cs``, in words (REPORT.md's setup section, results.json)."""
    return condition(given).about.format(**asdict(cs))


def real_only(conditions: list[str]) -> list[str]:
    """The conditions that use no GAN faces (what compare can run without a generator)."""
    return [c for c in conditions if condition(c).real_only]


def pools_used(conditions: list[str]) -> list[str]:
    """The synthetic pools (GAN_POOL, TRANSFER_POOL) that ``conditions`` draw from."""
    return sorted({condition(c).pool for c in conditions if not condition(c).real_only})


def condition_help() -> str:
    """--conditions' help: every condition and what it does."""
    return ", ".join(f"{c.name} ({c.help})" if c.help else c.name for c in CONDITIONS.values()) + "."


def condition_table(spec: CompareSpec) -> dict[str, dict[str, Any]]:
    """Each condition of ``spec``: what it means in words and its ConditionSpec (results.json's "conditions")."""
    table = {}
    for c in spec.conditions:
        cs = condition_spec(c, spec)
        table[c] = {"about": describe(c, cs), **asdict(cs)}
    return table


CONDITION_HELP = condition_help()  # as the table stands at import (the CLI's help is made then)
