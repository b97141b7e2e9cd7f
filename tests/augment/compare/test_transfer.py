"""compare's expression-transfer conditions: a second pool from --transfer beside the noise generator's, in
one report folder, and the refusals of a run of the wrong family."""

from __future__ import annotations

import json

import pytest

from augment.compare import run_compare
from augment.core.errors import UserError
from tests.augment.compare.helpers import spec
from tests.conftest import assert_one_line_error, run_cli

pytestmark = pytest.mark.usefixtures("quiet")


def test_transfer_conditions_join_a_folder_of_gan_conditions(planted, tiny_gan_run, tiny_transfer_run, tmp_path):
    report = tmp_path / "report"
    first = run_compare(planted, tiny_gan_run, report, spec(conditions=["baseline", "gan"], seeds=1), progress=False)
    assert first["transfer_run"] is None and not (report / "transfer.npz").exists()
    both = spec(conditions=["baseline", "gan", "transfer", "transfer+oversample"], seeds=1)
    summary = run_compare(planted, tiny_gan_run, report, both, progress=False, transfer_run=tiny_transfer_run)
    runs = {r["condition"]: r for r in summary["runs"]}
    assert set(runs) == {"baseline", "gan", "transfer", "transfer+oversample"}
    assert summary["transfer_run"] == str(tiny_transfer_run) and summary["transfer_synthesis"]["recipe"] == "transfer"
    assert summary["synthesis"]["recipe"] == "full"
    ident = json.loads((report / "compare.json").read_text())
    assert ident["transfer_run"] == str(tiny_transfer_run.resolve()) and ident["generator_run"]
    md = (report / "REPORT.md").read_text()
    assert "transfer_samples.png" in md and "synthetic_samples.png" in md and "expression transfer" in md
    assert (report / "transfer_samples.png").exists()
    # a later call with the generator only keeps the folder's transfer run
    again = run_compare(planted, tiny_gan_run, report, spec(conditions=["baseline", "gan"], seeds=1), progress=False)
    assert again["runs"][0]["seconds"] == first["runs"][0]["seconds"]  # kept, not retrained
    assert json.loads((report / "compare.json").read_text())["transfer_run"] == ident["transfer_run"]


def test_each_pool_refuses_a_run_of_the_other_family(planted, tiny_gan_run, tiny_transfer_run, tmp_path):
    s = spec(conditions=["baseline", "transfer"], seeds=1)
    with pytest.raises(UserError, match="pass --transfer"):
        run_compare(planted, None, tmp_path / "a", s, progress=False)
    with pytest.raises(UserError, match="--transfer .* is a full-recipe run.*pass this one as --generator"):
        run_compare(planted, None, tmp_path / "b", s, progress=False, transfer_run=tiny_gan_run)
    g = spec(conditions=["baseline", "gan"], seeds=1)
    with pytest.raises(UserError, match="--generator .* is a transfer-recipe run.*pass this one as --transfer"):
        run_compare(planted, tiny_transfer_run, tmp_path / "c", g, progress=False)
    assert not any((tmp_path / d).exists() for d in "abc")


def test_cli_transfer_refusals_exit_2_and_write_nothing(demo_dir, tiny_gan_run, tmp_path, capsys):
    out = tmp_path / "report"
    code, _, err = run_cli(capsys, "compare", demo_dir, "--out", out, "--conditions", "baseline,transfer")
    assert_one_line_error(code, err, "--conditions transfer", "--transfer")
    code, _, err = run_cli(
        capsys, "compare", demo_dir, "--out", out, "--conditions", "baseline,transfer", "--transfer", tiny_gan_run
    )
    assert_one_line_error(code, err, "--transfer", "pass this one as --generator")
    assert not out.exists()


def test_cli_transfer_alone_runs_the_real_only_and_transfer_conditions(
    demo_dir, tiny_transfer_run, tmp_path, capsys, monkeypatch
):
    from augment import compare

    got = []
    monkeypatch.setattr(
        compare,
        "run_compare",
        lambda data, gen, out, s, transfer_run=None: got.append((s, transfer_run)) or {"runs": []},
    )
    code, out, err = run_cli(capsys, "compare", demo_dir, "--out", tmp_path / "r", "--transfer", tiny_transfer_run)
    assert code == 0, err
    s, run = got[-1]
    assert s.conditions == ["baseline", "oversample", "weighted", "transfer"] and run == tiny_transfer_run
    assert "real-only and transfer conditions" in " ".join(out.split())
