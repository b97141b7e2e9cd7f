"""``augment compare`` on the command line: the budgets' help and models, and the condition options."""

from __future__ import annotations

import pytest

from augment import compare
from tests.augment.compare.helpers import TINY
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("quiet")


def test_budget_help_lists_every_budget():
    import typer

    from augment.cli import app

    command = typer.main.get_command(app).commands["compare"]
    [budget] = [p for p in command.params if p.name == "budget"]
    for b in compare.BUDGETS.values():
        if b.name == TINY.name:  # added by this module's fixture, after the help was made
            continue
        assert b.about and f"{b.name} ({b.about})" in budget.help, b.name


def test_compare_cli_takes_the_budgets_models_and_the_condition_options(
    demo_dir, tiny_gan_run, tmp_path, capsys, monkeypatch
):
    got = []
    monkeypatch.setattr(
        compare, "run_compare", lambda data, gen, out, s, transfer_run=None: got.append(s) or {"runs": []}
    )
    base = ("compare", demo_dir, "--generator", tiny_gan_run, "--out", tmp_path / "r")
    code, _, err = run_cli(
        capsys,
        *base,
        "--budget",
        "cpu",
        "--conditions",
        "gan-cap0.5,gan-w,refit",
        "--eval-split",
        "val",
        "--synthetic-weight",
        "0.3",
        "--refit-epochs",
        "2",
        "--max-ratio",
        "2",
    )
    assert code == 0, err
    s = got[-1]
    assert s.models == ["fer-cnn"] and s.conditions == ["baseline", "gan-cap0.5", "gan-w", "refit"]
    assert (s.eval_split, s.synthetic_weight, s.refit_epochs, s.max_ratio) == ("val", 0.3, 2, 2.0)
    code, _, err = run_cli(capsys, *base, "--budget", "cpu-small")
    assert code == 0, err
    assert got[-1].models == list(compare.DEFAULT_MODELS) and got[-1].eval_split == "test"

    # without --generator the default conditions shrink to the real-only ones; a named GAN condition stays
    # (and run_compare refuses it)
    no_gen = ("compare", demo_dir, "--out", tmp_path / "r2")
    code, out, err = run_cli(capsys, *no_gen)
    assert code == 0, err
    assert got[-1].conditions == ["baseline", "oversample", "weighted"] and "no --generator" in out
    code, _, err = run_cli(capsys, *no_gen, "--conditions", "baseline,gan")
    assert code == 0, err
    assert got[-1].conditions == ["baseline", "gan"]
