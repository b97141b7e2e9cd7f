"""``compare --curve``: one comparison per N under one folder, resumable as a whole, curve.png and REPORT.md."""

from __future__ import annotations

import json

import pytest

from augment.compare import real_only, scheduler
from augment.compare.curve import parse_curve, parse_generators, run_curve
from augment.core.errors import UserError
from tests.augment.compare.helpers import spec
from tests.conftest import assert_one_line_error, run_cli

pytestmark = pytest.mark.usefixtures("quiet")
REAL_ONLY = ["baseline", "oversample"]


def _counting(monkeypatch, fail_at: int | None = None) -> list:
    """Count the runs trained; with ``fail_at``, the run of that number dies (a kill mid-curve)."""
    calls: list = []
    real = scheduler.one_run

    def one_run(cmp, key, slot):
        calls.append((cmp.report_dir.name, key))
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt
        return real(cmp, key, slot)

    monkeypatch.setattr(scheduler, "one_run", one_run)
    return calls


def test_parse_curve_and_generators():
    assert parse_curve("all, 100,25,25") == [25, 100, None]
    for bad in ("0", "ten", ","):
        with pytest.raises(UserError, match="--curve"):
            parse_curve(bad)
    gens = parse_generators("25=a, n100=b,ALL=c", [25, 100, None])
    assert {k: str(v) for k, v in gens.items()} == {"n25": "a", "n100": "b", "all": "c"}
    with pytest.raises(UserError, match="--generators 50=a: 50 is not a point of --curve"):
        parse_generators("50=a", [25, None])


def test_an_interrupted_curve_continues_and_a_finished_one_trains_nothing(planted, tmp_path, monkeypatch):
    out = tmp_path / "curve"
    s = spec(conditions=REAL_ONLY, seeds=1)
    calls = _counting(monkeypatch, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        run_curve(planted, out, s, ["fear", "disgust"], [3, None], progress=False)
    assert len(calls) == 3 and (out / "n3" / "results.json").exists() and not (out / "REPORT.md").exists()

    calls = _counting(monkeypatch)
    result = run_curve(planted, out, s, ["fear", "disgust"], [3, None], progress=False)
    assert calls == [("all", ("simple-cnn", "baseline", 0)), ("all", ("simple-cnn", "oversample", 0))]
    first = (out / "curve_results.json").read_text()

    calls = _counting(monkeypatch)
    again = run_curve(planted, out, s, ["fear", "disgust"], [3, None], progress=False)
    assert calls == [] and again == result and (out / "curve_results.json").read_text() == first

    assert {p["name"]: p["limit"] for p in result["points"]} == {"n3": {"fear": 3, "disgust": 3}, "all": {}}
    assert len(result["rows"]) == 4  # 2 points × 2 conditions × 1 model
    n3 = [r for r in result["rows"] if r["point"] == "n3"]
    assert all(r["real_train"] == {"fear": 3, "disgust": 3} for r in n3)
    lo, mean, hi = n3[0]["macro_f1"][1], n3[0]["macro_f1"][0], n3[0]["macro_f1"][2]
    assert lo <= mean <= hi and set(n3[0]["recall"]) == {"fear", "disgust"}
    assert (out / "curve.png").stat().st_size > 0
    report = (out / "REPORT.md").read_text()
    assert "| 3 | baseline |" in report and "| all (" in report and "Δ macro-F1 vs oversample" in report
    assert json.loads((out / "n3" / "compare.json").read_text())["limit"] == {"fear": 3, "disgust": 3}


def test_a_curve_refuses_before_writing_anything(planted, tiny_gan_run, tmp_path):
    out = tmp_path / "curve"
    gan = spec(conditions=["baseline", "gan", "oversample"], seeds=1)
    with pytest.raises(UserError, match="give point n3 a run trained on its data \\(--generators n3=RUN"):
        run_curve(planted, out, gan, ["fear"], [3, None], {"all": tiny_gan_run}, progress=False)
    transfer = spec(conditions=["baseline", "transfer"], seeds=1)
    with pytest.raises(UserError, match="transfer faces: give point n3 a run .*--transfers n3=RUN.*--recipe transfer"):
        run_curve(planted, out, transfer, ["fear"], [3], progress=False)
    with pytest.raises(UserError, match="trained on the full train split"):
        run_curve(planted, out, gan, ["fear"], [3, None], {"n3": tiny_gan_run, "all": tiny_gan_run}, progress=False)
    with pytest.raises(UserError, match="--curve fear=99: the train split has only"):
        run_curve(planted, out, spec(conditions=REAL_ONLY), ["fear"], [99], progress=False)
    assert not out.exists()


def test_curve_options_on_the_command_line(demo_dir, tiny_gan_run, tmp_path, capsys, monkeypatch):
    from augment.compare import curve

    got = []
    monkeypatch.setattr(curve, "run_curve", lambda *a: got.append(a))
    out = tmp_path / "c"
    base = ("compare", demo_dir, "--out", out, "--seeds", "1")
    code, _, err = run_cli(capsys, *base, "--curve", "3,all", "--limit-classes", "fear,disgust")
    assert code == 0, err
    _, _, s, classes, points, gens, _, transfers = got[-1]
    assert classes == ["fear", "disgust"] and points == [3, None] and gens == {} and transfers == {}
    assert s.conditions == real_only(s.conditions) and "oversample" in s.conditions  # no --generators: real-only
    for args, words in [
        (("--curve", "3,all"), ["--curve needs --limit-classes"]),
        (("--curve", "3", "--limit-classes", "fear", "--generator", tiny_gan_run), ["--generators"]),
        (("--limit-classes", "fear"), ["--limit-classes goes with --curve"]),
        (("--curve", "3", "--limit-classes", "fear", "--limit", "fear=3"), ["not --limit"]),
        (("--curve", "3,x", "--limit-classes", "fear"), ["--curve x"]),
        (("--curve", "3", "--limit-classes", "fear", "--transfer", tiny_gan_run), ["--transfers"]),
        (
            (
                "--transfers",
                f"3={tiny_gan_run}",
            ),
            ["--transfers goes with --curve"],
        ),
        (("--curve", "3", "--limit-classes", "fear", "--transfers", "7=x"), ["--transfers 7=x", "not a point"]),
    ]:
        code, _, err = run_cli(capsys, *base, *args)
        assert_one_line_error(code, err, *words)
    assert not out.exists()
