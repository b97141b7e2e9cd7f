"""The low-data curve's table (OUT/REPORT.md) and picture (OUT/curve.png), from each point's results.json
(its paired bootstrap: ``augment.report.aggregate`` and ``paired``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from augment.core.atomic import save_figure, write_text
from augment.report import _diff, _fmt, _plt, aggregate, paired, synthetic_conditions

REFERENCE = "oversample"  # what every condition is set against: the real-only fix to beat


def curve_rows(summaries: dict[str, dict[str, Any]], plan: list[Any], classes: list[str]) -> list[dict[str, Any]]:
    """One row per model × condition × point: macro-F1 and the limited classes' recall (mean, lo, hi), the
    real training faces each limited class kept, and the paired macro-F1 difference against oversampling."""
    rows = []
    for p in plan:
        summary = summaries[p.name]
        synthetic = set(synthetic_conditions(summary))
        for model, conds in aggregate(summary).items():
            for cond, agg in conds.items():
                vs = paired(summary, model, cond, REFERENCE, "macro_f1") if cond != REFERENCE else None
                rows.append(
                    {
                        "model": model,
                        "condition": cond,
                        "point": p.name,
                        "n": p.n,
                        "synthetic": cond in synthetic,
                        "real_train": {c: summary["train_counts"].get(c) for c in classes},
                        "macro_f1": list(agg["macro_f1"]),
                        "recall": {c: list(agg["recall"][c]) for c in classes if c in agg["recall"]},
                        "vs_oversample": vs,
                    }
                )
    return rows


def _triple(v: list[float | None]) -> tuple[float, float, float]:
    return tuple(np.nan if x is None else float(x) for x in v)  # type: ignore[return-value]


def _models(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["model"] for r in rows))


def _points(result: dict[str, Any]) -> list[str]:
    return [p["name"] for p in result["points"]]


def point_label(row: dict[str, Any]) -> str:
    """A point as the table and the picture name it: N, or all with the real counts it kept."""
    if row["n"] is not None:
        return str(row["n"])
    return "all (" + "/".join(str(v) for v in row["real_train"].values()) + ")"


def crossover_line(rows: list[dict[str, Any]], model: str) -> str:
    """At which points, if any, a synthetic condition beat oversampling on macro-F1, significantly."""
    wins = [
        f"{r['condition']} at N = {point_label(r)}"
        for r in rows
        if r["model"] == model
        and r["synthetic"]
        and r["vs_oversample"]
        and r["vs_oversample"]["significant"]
        and r["vs_oversample"]["diff"] > 0
    ]
    if wins:
        return f"- **{model}**: a synthetic condition beat oversampling on macro-F1, significantly: {'; '.join(wins)}."
    if not any(r["synthetic"] for r in rows if r["model"] == model):
        return f"- **{model}**: no synthetic condition was compared (no --generators)."
    return f"- **{model}**: no synthetic condition beat oversampling on macro-F1 at any N."


def curve_table(result: dict[str, Any], model: str) -> list[str]:
    """The model's table: one row per point × condition."""
    classes = result["limit_classes"]
    head = ["N", "condition", "macro-F1", f"Δ macro-F1 vs {REFERENCE}"] + [f"{c} recall" for c in classes]
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = [r for r in result["rows"] if r["model"] == model]
    for name in _points(result):
        for r in (r for r in rows if r["point"] == name):
            cells = [point_label(r), r["condition"], _fmt(_triple(r["macro_f1"])), _diff(r["vs_oversample"])]
            cells += [_fmt(_triple(r["recall"][c])) if c in r["recall"] else "–" for c in classes]
            md.append("| " + " | ".join(cells) + " |")
    return md


def write_curve_report(out_dir: Path, result: dict[str, Any]) -> None:
    """OUT/REPORT.md (the verdict per model and the tables) and OUT/curve.png."""
    rows, classes = result["rows"], result["limit_classes"]
    plot_curve(result, out_dir / "curve.png")
    md = [f"# The low-data curve: {', '.join(classes)} limited to N real training faces", ""]
    md += [
        f"Data: {result['data']}. Each point is a comparison of its own (`{'/`, `'.join(_points(result))}/`, each "
        "with its REPORT.md): the limited classes keep N real training faces (all: every one); validation and the "
        "scored faces are the same at every point. Mean over seeds [95% interval of a paired bootstrap over seeds "
        f"and test images]; Δ is the paired difference against {REFERENCE} at the same point, with its p-value.",
        "",
        "## Does a synthetic condition beat oversampling?",
        "",
    ]
    md += [crossover_line(rows, m) for m in _models(rows)] + [""]
    for model in _models(rows):
        md += [f"## {model}", ""] + curve_table(result, model) + [""]
    md += ["![macro-F1 and recall of the limited classes against N](curve.png)", ""]
    write_text(out_dir / "REPORT.md", "\n".join(md))


def plot_curve(result: dict[str, Any], path: Path) -> None:
    """Per model: macro-F1 and each limited class's recall against N, one line per condition, with the 95%
    intervals as bars."""
    plt = _plt()
    rows, classes, points = result["rows"], result["limit_classes"], _points(result)
    models = _models(rows)
    panels = ["macro_f1"] + classes
    fig, axes = plt.subplots(len(models), len(panels), figsize=(3.6 * len(panels), 3.2 * len(models)), squeeze=False)
    for axes_row, model in zip(axes, models, strict=True):
        mine = [r for r in rows if r["model"] == model]
        conds = list(dict.fromkeys(r["condition"] for r in mine))
        labels = {r["point"]: point_label(r) for r in mine}
        for ax, panel in zip(axes_row, panels, strict=True):
            for i, cond in enumerate(conds):
                _plot_condition(ax, mine, cond, panel, points, (i - (len(conds) - 1) / 2) * 0.06)
            ax.set_xticks(range(len(points)), [labels.get(p, p) for p in points])
            ax.set_xlabel("real training faces (N)")
            ax.set_ylabel("macro-F1" if panel == "macro_f1" else f"{panel} recall")
            ax.set_ylim(0, 1)
            ax.set_title(model if panel == "macro_f1" else panel)
            ax.spines[["top", "right"]].set_visible(False)
        axes_row[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(path, fig)


def _plot_condition(ax: Any, rows: list[dict[str, Any]], cond: str, panel: str, points: list[str], dx: float) -> None:
    xs, ms, los, his = [], [], [], []
    for x, name in enumerate(points):
        row = next((r for r in rows if r["condition"] == cond and r["point"] == name), None)
        if row is None:
            continue
        value = row["macro_f1"] if panel == "macro_f1" else row["recall"].get(panel)
        if value is None:
            continue
        m, lo, hi = _triple(value)
        xs.append(x + dx)
        ms.append(m)
        los.append(m - lo if np.isfinite(lo) else 0.0)
        his.append(hi - m if np.isfinite(hi) else 0.0)
    if xs:
        ax.errorbar(xs, ms, yerr=[los, his], marker="o", ms=4, capsize=3, label=cond)
