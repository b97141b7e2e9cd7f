"""``augment compare``: model × condition × seed, trained the same way, scored on real images only.

The conditions are one table (:mod:`augment.compare.conditions`): baseline (real images only), the
GAN conditions (GAN samples filling some or all of each class's shortfall, capped, down-weighted, or
followed by a head refit) and the real-only fixes (oversampling, class weights, the head refit alone).
A budget (:mod:`augment.compare.budgets`) says how far every run trains, in images seen.
``--eval-split val`` scores every run on the real validation split (screening) and never loads test.

Modules: ``spec`` (what is asked, checked), ``conditions``, ``budgets``, ``data`` (the real splits and
each condition's training images), ``pool`` (the filtered synthetic faces), ``identity`` (what a report
folder is tied to), ``scheduler`` (the grid of runs), ``scoring`` (metrics, results.json), ``run`` and
``curve`` (``--curve``: one comparison per number of real faces of the ``--limit``-ed classes).
"""

from augment.compare.budgets import BUDGETS, DEFAULT_MODELS, Budget, budget_help, budget_models, budget_train_config
from augment.compare.conditions import (
    CONDITION_HELP,
    CONDITIONS,
    DEFAULT_CONDITIONS,
    Condition,
    ConditionSpec,
    condition_help,
    condition_spec,
    condition_table,
    describe,
    real_only,
)
from augment.compare.curve import parse_curve, parse_generators, run_curve
from augment.compare.data import (
    CompareData,
    Comparison,
    clean_split,
    clean_test,
    condition_amounts,
    condition_data,
    oversample,
    prepare_data,
    take_synthetic,
)
from augment.compare.identity import check_report_dir, identity
from augment.compare.pool import synthetic_pool
from augment.compare.run import run_compare
from augment.compare.scheduler import RunClock, child_config, child_visible_gpu, run_grid
from augment.compare.scoring import PREDICTIONS, predict_test
from augment.compare.spec import EVAL_SPLITS, CompareSpec, validate_spec

__all__ = [
    "BUDGETS",
    "CONDITION_HELP",
    "DEFAULT_CONDITIONS",
    "DEFAULT_MODELS",
    "EVAL_SPLITS",
    "PREDICTIONS",
    "CONDITIONS",
    "Budget",
    "CompareData",
    "CompareSpec",
    "Comparison",
    "Condition",
    "ConditionSpec",
    "RunClock",
    "budget_help",
    "budget_models",
    "budget_train_config",
    "check_report_dir",
    "child_config",
    "child_visible_gpu",
    "clean_split",
    "clean_test",
    "condition_amounts",
    "condition_data",
    "condition_help",
    "condition_spec",
    "condition_table",
    "describe",
    "identity",
    "oversample",
    "predict_test",
    "prepare_data",
    "real_only",
    "parse_curve",
    "parse_generators",
    "run_compare",
    "run_curve",
    "run_grid",
    "synthetic_pool",
    "take_synthetic",
    "validate_spec",
]
