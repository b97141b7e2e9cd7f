"""REPORT.md and its pictures for ``augment compare``: means, CIs, paired tests, a plain verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from augment.core.atomic import write_text
from augment.core.dataset import FaceDataset
from augment.stats import FIGURES
from classifier.plots import draw_confusion, normalise_rows


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def minority_first(train_counts: dict[str, int]) -> list[str]:
    return sorted(train_counts, key=lambda c: train_counts[c])


def focus_classes(summary: dict[str, Any], agg: dict[str, Any]) -> list[str]:
    """The classes the headline tables show: the three smallest, plus the one among the others that the
    baseline recognises worst (a class with plenty of images can still be recognised poorly)."""
    order = minority_first(summary["train_counts"])
    focus, rest = order[:3], order[3:]
    base = [conds["baseline"]["recall"] for conds in agg.values() if "baseline" in conds]
    if base and rest:
        focus.append(min(rest, key=lambda c: float(np.mean([b[c][0] for b in base]))))
    return focus


def _triple(e: dict[str, float | None]) -> tuple[float, float, float]:
    mean, lo, hi = (np.nan if e[k] is None else float(e[k]) for k in ("mean", "lo", "hi"))  # type: ignore[arg-type]
    return mean, lo, hi


def aggregate(summary: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """model → condition → figure → (mean, lo, hi) from results.json's bootstrap (recall: class → (mean, lo,
    hi)), and the run's row-normalised confusion matrix, averaged over seeds."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for model, conds in summary["stats"]["models"].items():
        for cond, st in conds.items():
            runs = [r for r in summary["runs"] if r["model"] == model and r["condition"] == cond]
            agg: dict[str, Any] = {f: _triple(st[f]) for f in FIGURES}
            agg["recall"] = {c: _triple(v) for c, v in st["recall"].items()}
            agg["confusion"] = np.mean([normalise_rows(np.array(r["confusion_matrix"])) for r in runs], axis=0)
            out.setdefault(model, {})[cond] = agg
    return out


def paired(summary: dict[str, Any], model: str, cond: str, ref: str, metric: str, cls: str | None = None):
    """The paired difference cond − ref of a figure (or of a class's recall), or None when not compared."""
    t = summary["stats"]["models"].get(model, {}).get(cond, {}).get("vs", {}).get(ref)
    if t is None:
        return None
    return t["recall"][cls] if cls else t[metric]


def _num(x: float | None, sign: str = "") -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:{sign}.3f}"


def _fmt(mc: tuple[float, float, float]) -> str:
    return f"{_num(mc[0])} [{_num(mc[1])}, {_num(mc[2])}]"


def _diff(t: dict[str, Any] | None) -> str:
    if t is None:
        return "–"
    p = "n/a" if t["p"] is None else ("<0.001" if t["p"] < 0.001 else f"{t['p']:.3f}")
    text = f"{_num(t['diff'], '+')} [{_num(t['lo'], '+')}, {_num(t['hi'], '+')}] p={p}"
    if t["untested"]:
        return f"{text}, untested: {t['untested']}"
    if t["significant"]:
        return text + (" **✓**" if t["diff"] > 0 else " **✗**")
    return text


def _against(t: dict[str, Any], ref: str) -> str:
    """How a macro-F1 difference against ``ref`` reads in the verdict."""
    if t["untested"]:
        return f"was not tested against {ref} ({t['diff']:+.3f} macro-F1; {t['untested']})"
    if t["significant"]:
        word = "beat" if t["diff"] > 0 else "was worse than"
    else:
        word = "did not significantly differ from"
    return f"{word} {ref} ({t['diff']:+.3f} macro-F1, p={t['p']:.3f})"


def _recall_change(summary: dict[str, Any], model: str, cond: str, minority: list[str]) -> tuple[list[str], list[str]]:
    """The focus classes whose recall ``cond`` raised over the baseline, and those it significantly lowered."""
    helped, hurt = [], []
    for c in minority:
        t = paired(summary, model, cond, "baseline", "recall", cls=c)
        if t is None or t["diff"] is None:
            continue
        if t["significant"]:
            (helped if t["diff"] > 0 else hurt).append(f"{c} ({t['diff']:+.2f})")
        elif t["diff"] > 0:
            why = f"untested: {t['untested']}" if t["untested"] else "not significant"
            helped.append(f"{c} ({t['diff']:+.2f}, {why})")
    return helped, hurt


def synthetic_conditions(summary: dict[str, Any]) -> list[str]:
    """The compared conditions that train on GAN faces (results.json's recipes; by name when absent)."""
    table = summary.get("conditions") or {}
    return [
        c
        for c in summary["spec"]["conditions"]
        if (table[c].get("synthetic", 0) > 0 if c in table else c.startswith("gan"))
    ]


def real_fixes(summary: dict[str, Any], cs: dict[str, Any]) -> list[str]:
    """The compared conditions other than baseline that use no GAN faces (oversample, weighted, refit...)."""
    synthetic = synthetic_conditions(summary)
    return [c for c in cs if c != "baseline" and c not in synthetic]


def best_real_fix(summary: dict[str, Any], cs: dict[str, Any]) -> str | None:
    """The real-only fix of highest mean macro-F1."""
    return max(real_fixes(summary, cs), key=lambda c: cs[c]["macro_f1"][0], default=None)


def _beats(summary: dict[str, Any], model: str, cond: str, ref: str) -> bool:
    t = paired(summary, model, cond, ref, "macro_f1")
    return bool(t and not t["untested"] and t["significant"] and t["diff"] > 0)


def synthetic_winners(summary: dict[str, Any], cs: dict[str, Any], model: str) -> list[str]:
    """The synthetic conditions that beat the baseline and the best real-only fix on macro-F1, significantly."""
    best = best_real_fix(summary, cs)
    refs = ["baseline"] + ([best] if best else [])
    synthetic = [c for c in synthetic_conditions(summary) if c in cs]
    return [c for c in synthetic if all(_beats(summary, model, c, r) for r in refs)]


def _aim_line(summary: dict[str, Any], cs: dict[str, Any], model: str) -> str | None:
    """Did any way of adding synthetic faces beat the baseline and the best real-only fix on macro-F1?"""
    synthetic = [c for c in synthetic_conditions(summary) if c in cs]
    if not synthetic:
        return None
    best = best_real_fix(summary, cs)
    against = "the baseline"
    if best:
        against += f" and the best real-only fix, {best} (macro-F1 {cs[best]['macro_f1'][0]:.3f})"
    winners = synthetic_winners(summary, cs, model)
    if winners:
        return f"- **{model}**: {', '.join(winners)} beat {against} on macro-F1, significantly."
    top = max(synthetic, key=lambda c: cs[c]["macro_f1"][0])
    return (
        f"- **{model}**: no way of adding synthetic faces ({', '.join(synthetic)}) beat {against} on macro-F1; "
        f"the best of them, {top}, reached {cs[top]['macro_f1'][0]:.3f}."
    )


def across_models_line(summary: dict[str, Any], agg: dict[str, Any]) -> str | None:
    """With two or more models: does a synthetic condition win for every model, for some, or for none?"""
    models = [m for m, cs in agg.items() if "baseline" in cs and any(c in cs for c in synthetic_conditions(summary))]
    if len(models) < 2:
        return None
    wins = {m: synthetic_winners(summary, agg[m], m) for m in models}
    won = [m for m in models if wins[m]]
    if not won:
        return f"- **Across models**: no synthetic condition won for any of {', '.join(models)}."
    how = "every model" if len(won) == len(models) else f"{len(won)} of {len(models)} models"
    detail = "; ".join(f"{m}: {', '.join(wins[m])}" for m in won)
    lost = [m for m in models if not wins[m]]
    rest = f"; none for {', '.join(lost)}" if lost else ""
    return f"- **Across models**: a synthetic condition won for {how} ({detail}){rest}."


def scored_split(summary: dict[str, Any]) -> str:
    """What the figures are scored on, in words: test, or validation when screening (--eval-split val)."""
    return "validation" if summary.get("eval_split") == "val" else "test"


def minority_counts_line(summary: dict[str, Any], classes: list[str]) -> str:
    """How many real scored images the focus classes' recall rests on, and how many duplicates were removed."""
    dups = summary.get("test_duplicates_by_class") or {}
    split = scored_split(summary)
    parts = []
    for c in classes:
        n = summary["test_counts"][c]
        removed = dups.get(c, 0)
        note = f" after removing {removed:,} that duplicate a training face" if removed else ""
        parts.append(f"{c}: {n:,} {split} image{'s' if n != 1 else ''}{note}")
    return (
        f"- The recall of the smallest and hardest classes rests on few real {split} images: " + "; ".join(parts) + "."
    )


def method_line(summary: dict[str, Any]) -> str:
    st = summary["stats"]
    n_seeds = summary["spec"]["seeds"]
    line = (
        f"- Intervals are 95% percentile intervals of a paired bootstrap over seeds and {scored_split(summary)} "
        f"images together ({st['resamples']:,} resamples); a difference is called significant at "
        f"p < {1 - st['level']:.2f} only from at least {st['min_seeds']} seeds and when it varies at all."
    )
    if n_seeds < st["min_seeds"]:
        line += f" With {n_seeds} seed(s) no difference is tested: rerun with --seeds {st['min_seeds']} or more."
    return line


def verdict(summary: dict[str, Any], agg: dict[str, Any]) -> list[str]:
    """Plain sentences: did each way of adding GAN faces help, against what, for which classes, on how many
    test images, and did any beat both the baseline and the best real-only fix."""
    minority = focus_classes(summary, agg)
    lines = []
    for model, conds in agg.items():
        if "baseline" not in conds:
            continue
        synthetic = [c for c in synthetic_conditions(summary) if c in conds]
        refs = ["baseline", *real_fixes(summary, conds)]
        for cond in synthetic:
            parts = [_against(t, r) for r in refs if (t := paired(summary, model, cond, r, "macro_f1")) is not None]
            helped, hurt = _recall_change(summary, model, cond, minority)
            name = "GAN rebalancing" if cond == "gan" else f"`{cond}`"
            line = f"- **{model}**: on macro-F1, {name} " + "; ".join(parts)
            line += ". Recall of the minority and hardest classes vs baseline: " + (", ".join(helped) or "no gain")
            lines.append(line + ("; worse for " + ", ".join(hurt) if hurt else "") + ".")
        aim = _aim_line(summary, conds, model)
        if aim:
            lines.append(aim)
    across = across_models_line(summary, agg)
    if across:
        lines.append(across)
    lines.append(minority_counts_line(summary, minority))
    lines.append(method_line(summary))
    return lines


def write_report(report_dir: Path, summary: dict[str, Any], pools: dict[str, FaceDataset | None]) -> None:
    """REPORT.md and its pictures; ``pools``: the synthetic faces the conditions drew from, by pool name."""
    agg = aggregate(summary)
    pics = draw_pictures(report_dir, summary, agg, pools)
    screening = " (screening on validation)" if summary.get("eval_split") == "val" else ""
    md = [f"# Does GAN rebalancing help? — augment compare{screening}", ""]
    md += ["## Verdict", ""] + verdict(summary, agg) + [""]
    md += setup_section(summary, agg)
    md += ["## Results", ""]
    for model in agg:
        md += model_results(summary, agg, model)
    md += pictures_section(pics)
    md += [
        "## Files",
        "",
        "- `results.json`: every run's metrics; `runs/<model>/<condition>/seed<k>/`: each run's "
        "model, curves and config.",
        "",
    ]
    write_text(report_dir / "REPORT.md", "\n".join(md))


def draw_pictures(
    report_dir: Path, summary: dict[str, Any], agg: dict[str, Any], pools: dict[str, FaceDataset | None]
) -> list[tuple[str, str]]:
    """The report's PNGs; (title, file name) of each, in the order REPORT.md shows them."""
    conds = summary["spec"]["conditions"]
    pics = []
    plot_recall(agg, minority_first(summary["train_counts"]), conds, report_dir / "recall_by_condition.png")
    pics.append(("Per-class recall by condition (mean and 95% interval)", "recall_by_condition.png"))
    for model in agg:
        plot_confusions(agg[model], summary["runs"][0]["classes"], conds, report_dir / f"confusion_{model}.png", model)
        pics.append((f"Confusion matrices, {model} (row-normalised, mean over seeds)", f"confusion_{model}.png"))
    plot_distribution(summary, conds, report_dir / "train_distribution.png")
    pics.append(("Training images per class in each condition", "train_distribution.png"))
    for name, what, file in POOL_PICTURES:
        pool = pools.get(name)
        if pool is not None and len(pool):
            save_pool_grid(pool, report_dir / file)
            pics.append((f"{what} used (accepted by the quality filter)", file))
    return pics


# Each synthetic pool's grid in REPORT.md: the pool's name (compare.conditions), its words and its file.
POOL_PICTURES = (
    ("gan", "Synthetic images", "synthetic_samples.png"),
    ("transfer", "Expression-transfer faces", "transfer_samples.png"),
)


def _budget_line(b: dict[str, Any]) -> str:
    epochs = f"{b['epochs']} epochs of {b['epoch_samples']:,} images" if b["epoch_samples"] else f"{b['epochs']} epochs"
    if b.get("samples"):
        epochs += " (" + ", ".join(f"{m}: {n:,} images per epoch" for m, n in b["samples"].items()) + ")"
    extra = "".join(f", {k} {v}" for k, v in (b.get("train") or {}).items())
    heads = f", head widths {b['head_widths']}" if b.get("head_widths") else ""
    return (
        f"- Budget `{b['name']}`: {epochs} per run, batch {b['batch_size']}, lr {b['lr']}{extra}, "
        f"widths {b['widths'] or 'full'}{heads}, sizes {b['sizes'] or 'model defaults'}, "
        f"early-stopping patience {b['patience'] or 'off'}."
    )


def _scored_line(summary: dict[str, Any]) -> str:
    """Which real images every run is scored on: test (the final grid) or validation (screening)."""
    if summary.get("eval_split", "test") == "val":
        return (
            f"- Scored on: **{summary['scored_on']}**, the real validation split carved from train, "
            f"{summary['test_images']:,} images after removing {summary['test_duplicates_removed']:,} that duplicate "
            "a training image. The test split is never used: these figures choose strategies, and only the final "
            "grid is scored on test. Each run also picks its best epoch on this split, which favours no condition."
        )
    generator = (
        " (carved as gan-train carves the split it holds out: a generator trained at the default --val-fraction "
        "never saw these validation faces, nor the test faces)"
        if summary.get("generator_run")
        else ""
    )
    return (
        f"- Scored on: test, the real test split only, {summary['test_images']:,} images after removing "
        f"{summary['test_duplicates_removed']:,} that duplicate a training image. No synthetic image is ever in "
        f"validation or test; validation is real and carved from train before synthesis{generator}."
    )


def conditions_lines(summary: dict[str, Any]) -> list[str]:
    """What each condition of the grid trained on and how (results.json's "conditions")."""
    table = summary.get("conditions") or {}
    return ["- Conditions:"] + [f"  - `{c}`: {v['about']}." for c, v in table.items()]


def setup_section(summary: dict[str, Any], agg: dict[str, Any]) -> list[str]:
    """Data, test split, budget, grid, the shortfall filled and what the quality filter kept."""
    md = ["## Setup", ""]
    generator = f"`{summary['generator_run']}`" if summary.get("generator_run") else "none (real-only conditions)"
    syn = summary.get("synthesis") or {}
    if summary.get("generator_run") and syn.get("checkpoint_step") is not None:
        generator += f" ({syn['checkpoint']} checkpoint, step {syn['checkpoint_step']:,}, sampling seed {syn['seed']})"
    if summary.get("transfer_run"):
        tr = summary.get("transfer_synthesis") or {}
        generator += f"; expression transfer: `{summary['transfer_run']}`"
        if tr.get("checkpoint_step") is not None:
            generator += f" ({tr['checkpoint']} checkpoint, step {tr['checkpoint_step']:,})"
    md.append(f"- Data: `{summary['data']}`; generator: {generator}.")
    if summary["spec"].get("limit"):
        kept = ", ".join(f"{c} {n:,}" for c, n in summary["spec"]["limit"].items())
        md.append(f"- Real training faces limited (`--limit`, after validation was held out): {kept}.")
    md.append(_scored_line(summary))
    md.append(_budget_line(summary["budget"]))
    conds = summary["spec"]["conditions"]
    md.append(f"- Models: {', '.join(agg)}; conditions: {', '.join(conds)}; seeds: {summary['spec']['seeds']}.")
    md += conditions_lines(summary)
    plan = ", ".join(f"{c} +{n:,}" for c, n in summary["synthetic_plan"].items() if n)
    md.append(f"- Shortfall filled by `gan`/`oversample` (target {summary['spec']['target']}): {plan or 'none'}.")
    for key, what in (("synthesis", ""), ("transfer_synthesis", ", expression transfer")):
        synth = summary.get(key) or {}
        if synth.get("per_class"):
            kept = ", ".join(f"{c} {v['added']:,}/{v['generated']:,}" for c, v in synth["per_class"].items())
            judge = f"judge p ≥ {synth['min_prob']}" if synth.get("min_prob") else "judge filter off"
            copies = "near-copies dropped" if "near_copy_threshold" in synth else "near-copies kept"
            md.append(f"- Quality filter{what} ({judge}, {copies}): kept/generated {kept}.")
    md += [f"- Note: {note}." for note in summary["stats"]["notes"]]
    md.append("")
    return md


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def _paired_table(summary: dict[str, Any], model: str, conds: list[str], ref: str, minority: list[str]) -> list[str]:
    head = ["condition", "Δ macro-F1", "Δ accuracy"] + [f"Δ {c} recall" for c in minority]
    rows = [
        [cond]
        + [_diff(paired(summary, model, cond, ref, m)) for m in ("macro_f1", "accuracy")]
        + [_diff(paired(summary, model, cond, ref, "recall", cls=c)) for c in minority]
        for cond in conds
    ]
    return _table(head, rows)


def model_results(summary: dict[str, Any], agg: dict[str, Any], model: str) -> list[str]:
    """One model's tables: means with CIs, paired differences against baseline (and the synthetic conditions'
    against the best real-only fix), recall of every class."""
    cs = agg[model]
    minority = focus_classes(summary, agg)
    order = minority_first(summary["train_counts"])
    present = [c for c in summary["spec"]["conditions"] if c in cs]
    md = [f"### {model}", "", "Mean over seeds [95% interval]:", ""]
    head = ["condition", "macro-F1", "accuracy"] + [f"{c} recall" for c in minority]
    means = [
        [cond, _fmt(cs[cond]["macro_f1"]), _fmt(cs[cond]["accuracy"])] + [_fmt(cs[cond]["recall"][c]) for c in minority]
        for cond in present
    ]
    md += _table(head, means) + [""]
    split = scored_split(summary)
    md += [
        f"Paired differences against baseline (same seeds and {split} images; [95% interval], bootstrap p; ✓/✗ "
        "significant; untested with fewer than 3 seeds or no variance):",
        "",
    ]
    md += _paired_table(summary, model, [c for c in present if c != "baseline"], "baseline", minority) + [""]
    best, synthetic = best_real_fix(summary, cs), [c for c in synthetic_conditions(summary) if c in cs]
    if best and synthetic:
        md += [f"Paired differences of the synthetic conditions against the best real-only fix, {best}:", ""]
        md += _paired_table(summary, model, synthetic, best, minority) + [""]
    md += ["Per-class recall (all classes, minority first):", ""]
    recalls = [[cond] + [_num(cs[cond]["recall"][c][0]) for c in order] for cond in present]
    md += _table(["condition"] + order, recalls) + [""]
    return md


def pictures_section(pics: list[tuple[str, str]]) -> list[str]:
    md = ["## Pictures", ""]
    for title, file in pics:
        md += [f"### {title}", "", f"![{title}]({file})", ""]
    return md


def plot_recall(agg: dict[str, Any], classes: list[str], conds: list[str], path: Path) -> None:
    from augment.core.atomic import save_figure

    plt = _plt()
    fig, axes = plt.subplots(len(agg), 1, figsize=(max(7, 1.3 * len(classes) + 2), 3.4 * len(agg)), squeeze=False)
    for ax, (model, cs) in zip(axes[:, 0], agg.items(), strict=True):
        present = [c for c in conds if c in cs]
        w = 0.8 / max(1, len(present))
        x = np.arange(len(classes))
        for i, cond in enumerate(present):
            mean, lo, hi = (np.array([cs[cond]["recall"][c][i] for c in classes]) for i in range(3))
            errs = np.nan_to_num(np.stack([mean - lo, hi - mean]))
            means = np.nan_to_num(mean)
            ax.bar(x + (i - (len(present) - 1) / 2) * w, means, w, yerr=errs, capsize=2, label=cond)
        ax.set_xticks(x, classes)
        ax.set_ylim(0, 1)
        ax.set_ylabel("recall (real test)")
        ax.set_title(model)
        ax.legend(fontsize=8, ncol=len(present))
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    save_figure(path, fig)


def plot_confusions(cs: dict[str, Any], classes: list[str], conds: list[str], path: Path, model: str) -> None:
    from augment.core.atomic import save_figure

    plt = _plt()
    present = [c for c in conds if c in cs]
    fig, axes = plt.subplots(1, len(present), figsize=(3.2 * len(present), 3.4), squeeze=False)
    for ax, cond in zip(axes[0], present, strict=True):
        draw_confusion(ax, cs[cond]["confusion"], classes, fontsize=6)
        ax.set_title(cond, fontsize=9)
    fig.suptitle(f"{model}: rows = true class, columns = predicted")
    fig.tight_layout()
    save_figure(path, fig)


def plot_distribution(summary: dict[str, Any], conds: list[str], path: Path) -> None:
    from augment.core.atomic import save_figure

    plt = _plt()
    classes = list(summary["train_counts"])
    real = np.array([summary["train_counts"][c] for c in classes])
    extra = np.array([summary["synthetic_plan"].get(c, 0) for c in classes])
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(classes) + 2), 3.6))
    x = np.arange(len(classes))
    ax.bar(x, real, 0.6, label="real (all conditions)")
    ax.bar(x, extra, 0.6, bottom=real, label="added by gan (synthetic) / oversample (duplicates)", alpha=0.7)
    ax.set_xticks(x, classes)
    ax.set_ylabel("training images")
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    save_figure(path, fig)


def save_pool_grid(pool: FaceDataset, path: Path, per_class: int = 12) -> None:
    from augment.core.pictures import labelled_grid

    present = [k for k in range(pool.num_classes) if (pool.labels == k).any()]
    rows = [pool.images[np.flatnonzero(pool.labels == k)[:per_class]] for k in present]
    labelled_grid(rows, [pool.classes[k] for k in present], path, title="synthetic samples kept by the filter")
