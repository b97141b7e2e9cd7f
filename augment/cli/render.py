"""What the commands print: tables and summaries on stdout, warnings and notes on stderr or stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

out = Console()
err = Console(stderr=True)


def warn(text: str) -> None:
    """One ``warning:`` line on stderr; the command goes on (and exits 0 unless something else fails)."""
    err.print(f"[yellow]warning:[/yellow] {escape(text)}", highlight=False, soft_wrap=True)


def note(text: str) -> None:
    """One ``note:`` line on stdout."""
    out.print(f"[yellow]note:[/yellow] {escape(text)}", highlight=False, soft_wrap=True)


def say(text: str) -> None:
    """A line of plain text, printed as it is (no markup, no highlighting)."""
    out.print(escape(text), highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- inspect
def print_inspect(report: dict) -> None:
    splits = list(report["counts"])
    table = Table(
        title=f"{report['dataset']}  ({report['images']} images, {'×'.join(map(str, report['image_shape']))})"
    )
    # a split holding synthetic images gets a real and a synthetic column after its total
    cols = [(split, split, "counts") for split in splits]
    for split in (s for s in splits if sum(report["synthetic_counts"][s].values())):
        at = cols.index((split, split, "counts")) + 1
        cols[at:at] = [(f"{split} real", split, "real_counts"), (f"{split} synthetic", split, "synthetic_counts")]
    table.add_column("class")
    for header, _, _ in cols:
        table.add_column(header, justify="right")
    for c in report["classes"]:
        table.add_row(c, *(f"{report[key][split][c]:,}" for _, split, key in cols))
    table.add_section()
    table.add_row("[bold]total", *(f"[bold]{sum(report[key][split].values()):,}" for _, split, key in cols))
    ratios = {s: f"{r:.1f}" if (r := report["imbalance_ratio"][s]) is not None else "∞ (empty class)" for s in splits}
    table.add_row("imbalance (max/min)", *(ratios[split] if key == "counts" else "" for _, split, key in cols))
    out.print(table)
    out.print(f"synthetic images: {report['synthetic']:,}" + ("" if report["synthetic"] else " (all real)"))
    _print_duplicates(report["duplicates"])
    if report["dropped"]:
        out.print("dropped labels: " + ", ".join(f"{k} {v:,}" for k, v in report["dropped"].items()))
    if report["subjects"]:
        out.print(f"subjects: {report['subjects']}")
    bad = report["unreadable"]
    out.print(f"[bold]unreadable files[/bold]: {len(bad)}")
    for item in bad[:50]:
        out.print(f"  {item['path']}: {item['reason']}")
    if len(bad) > 50:
        out.print(f"  … and {len(bad) - 50} more (--json lists all)")


def _print_duplicates(dup: dict) -> None:
    lines = []
    for s, d in dup["within_split"].items():
        lines.append(
            f"  within {s}: {d['redundant_copies']:,} redundant copies "
            f"({d['images_in_duplicate_groups']:,} images in {d['groups']:,} groups of identical pixels)"
        )
    for k, v in dup["across_splits"].items():
        b, a = k.split("_in_")
        lines.append(f"  across: {v:,} {b} images are identical to a {a} image")
    out.print("[bold]exact duplicates[/bold] (hash of decoded pixels)")
    out.print("\n".join(lines) or "  none")


# --------------------------------------------------------------------------- gan-eval
def _cas_line(c: dict | None) -> str:
    if not c:
        return "CAS macro-F1: not measured (no validation faces)"
    each = ", ".join(f"{f:.3f}" for f in c["synthetic_macro_f1"])
    sd = f" ± {c['sd']:.3f} (sd)" if c["sd"] is not None else ""
    return (
        f"CAS macro-F1 over {len(c['seeds'])} sample seed(s): {c['mean']:.3f}{sd} ({each}); "
        f"real-trained {c['real_macro_f1']:.3f}"
    )


def _num(v: float | None, fmt: str = ".2f") -> str:
    return "–" if v is None else format(v, fmt)


def print_gan_eval(r: dict, run_dir: Path) -> None:
    j, cas = r["judge"], r["cas"] or {"per_class": {}}
    table = Table(
        title=f"{run_dir}, {r['checkpoint']} checkpoint at step {r['checkpoint_step']} "
        f"({r['samples_per_class']} samples per class)"
    )
    for col in ("class", "assign", "CAS", "real", "ratio", "prec", "recall", "KID", "FD"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for c, u in r["usefulness"].items():
        k = cas["per_class"].get(c, {})
        table.add_row(
            c,
            _num(u["assignment"]),
            _num(k.get("synthetic_recall")),
            _num(k.get("real_recall")),
            _num(u["cas_ratio"]),
            _num(u["precision"]),
            _num(u["recall"]),
            _num(r["kid"]["per_class"][c], ".1e"),
            _num(r["frechet"]["per_class"][c], ".1f"),
        )
    out.print(table)
    spread = Table(title="exposure and spread: samples against real training faces of the class")
    for col in ("class", "brightness sd", "real", "ratio", "pairwise", "real", "ratio"):
        spread.add_column(col, justify="left" if col == "class" else "right")
    for c, v in r["spread"]["per_class"].items():
        keys = ("brightness_std", "real_brightness_std", "brightness_ratio", "pairwise", "real_pairwise")
        spread.add_row(c, *(_num(v[k], ".1f") for k in keys), _num(v["pairwise_ratio"]))
    out.print(spread)
    weighting = "class-weighted" if j["leans_to_small_classes"] else "no class weights, no balanced sampling"
    lines = (
        f"assign: share of samples the judge {j['run']} ({weighting}) puts in their class (chance {j['chance']:.2f})",
        "CAS / real: recall on the real validation faces of a classifier trained on the samples / on as many "
        "real training faces; ratio = CAS / real, the class's usefulness",
        "prec, recall: precision and recall (Kynkäänniemi 2019) against the validation faces; KID (Bińkowski 2018) "
        "in the judge's features; FD: " + r["frechet"]["space"],
        "brightness sd: standard deviation of each face's mean brightness (0-255; banding: ratio above 1); "
        "pairwise: mean RMS pixel distance between two faces of the class (collapse: ratio near 0)",
        _cas_line(r["cas_over_seeds"]),
        f"near-copies of training faces: {r['memorisation']['near_copies']} (per class in metrics.json)",
        f"pictures: {run_dir}/eval/usefulness.png, confusion.png, judge.png, nearest.png; "
        f"numbers: {run_dir}/eval/metrics.json",
    )
    for line in lines:
        say(line)
    if r.get("transfer"):
        print_transfer_figures(r["transfer"], run_dir)


def print_transfer_figures(t: dict, run_dir: Path) -> None:
    """gan-eval's two figures of a transfer run, per target class."""
    table = Table(title="expression transfer: identity kept and expression changed, per target class")
    cols = ("class", "identity kept", "(pixels)", "source p before", "source p after", "still source", "target p")
    for col in cols:
        table.add_column(col, justify="left" if col == "class" else "right")
    keys = (
        "identity_kept",
        "identity_kept_pixels",
        "source_prob_before",
        "source_prob_after",
        "still_source",
        "target_prob",
    )  # identity_kept_pixels: absent from a metrics.json written before it existed
    for c, v in t["per_class"].items():
        table.add_row(c, *(_num(v.get(k)) for k in keys))
    out.print(table)
    say(
        f"identity kept: share of translations whose nearest of the {t['pool']:,} real training faces (judge's "
        f"features; pixels: in pixels) is their own source (chance {t['chance_identity']:.1e}); source p: the "
        "judge's probability of the source's class on the source and on its translation; still source: share it "
        "still calls that class"
    )
    say(f"pictures: {run_dir}/eval/transfer.png (source faces above their translations)")


# --------------------------------------------------------------------------- evaluate, predict
def print_evaluation(m: dict, run_dir: Path, out_dir: Path | None) -> None:
    for text in m["notes"]:
        out.print(f"[yellow]note:[/yellow] {escape(text)}", highlight=False)
    table = Table(
        title=f"{run_dir} on {m['split']} ({m['n']} images): accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}"
    )
    for col in ("class", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for c, v in m["per_class"].items():
        if c in m["absent_classes"]:
            table.add_row(c, "", "", "[dim]not in data[/dim]", "0")
            continue
        table.add_row(c, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", str(v["support"]))
    out.print(table)
    where = out_dir or Path(run_dir) / f"eval_{m['split']}"
    out.print(f"confusion matrix: {where}/confusion.png, metrics: {where}/metrics.json")


def print_predictions(results: list[dict]) -> None:
    """A table on a terminal; tab-separated lines with whole paths when piped or redirected."""
    classes = list(results[0]["probabilities"]) if results else []
    if not out.is_terminal:
        print("\t".join(["image", "top", *classes]))
        for r in results:
            print("\t".join([r["path"], r["top"], *(f"{r['probabilities'][c]:.2f}" for c in classes)]))
        return
    table = Table()
    table.add_column("image", overflow="fold")
    table.add_column("top")
    for c in classes:
        table.add_column(c, justify="right")
    for r in results:
        table.add_row(r["path"], r["top"], *(f"{r['probabilities'][c]:.2f}" for c in classes))
    out.print(table)


def print_faces(results: list[dict], annotate: Path | None) -> None:
    """One line per face: photo, box, top class, then the other classes by probability."""
    for r in results:
        if not r["faces"]:
            out.print(f"{escape(r['path'])}  [yellow]no face found[/yellow]", highlight=False, soft_wrap=True)
        for f in r["faces"]:
            others = sorted(((p, c) for c, p in f["probabilities"].items() if c != f["top"]), reverse=True)
            box = ",".join(map(str, f["box"]))
            out.print(
                f"{escape(r['path'])}  box {box}  [bold]{f['top']} {f['probability']:.2f}[/bold]"
                f"  ({', '.join(f'{c} {p:.2f}' for p, c in others)})",
                highlight=False,
                soft_wrap=True,
            )
    faces = sum(len(r["faces"]) for r in results)
    empty = sum(not r["faces"] for r in results)
    out.print(
        f"{faces} face(s) in {len(results)} photo(s)"
        + (f"; no face found in {empty}" if empty else "")
        + (f"; annotated photos in {escape(str(annotate))}" if annotate is not None and faces else ""),
        highlight=False,
    )


# --------------------------------------------------------------------------- rebalance
def print_plan(plan: list[Any], target: str, fraction: float, max_ratio: float) -> None:
    cap = f", at most {max_ratio:g} × real" if max_ratio else ""
    table = Table(title=f"rebalance plan (train split; target {target}, fraction {fraction:g}{cap})")
    for col in ("class", "real", "synthetic", "final"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for p in plan:
        table.add_row(p.name, f"{p.real:,}", f"+{p.add:,}" if p.add else "0", f"{p.final:,}")
    table.add_section()
    table.add_row(
        "total", f"{sum(p.real for p in plan):,}", f"+{sum(p.add for p in plan):,}", f"{sum(p.final for p in plan):,}"
    )
    out.print(table)


def print_rebalanced(summary: dict, out_dir: Path) -> None:
    for c, r in summary["synthesis"]["per_class"].items():
        if r.get("skipped"):
            say(r["skipped"])
            continue
        transfer = ""
        if "dropped_unchanged" in r:
            transfer = (
                f", {r['dropped_source_expression']:,} keeping their source's expression, "
                f"{r['dropped_unchanged']:,} left unchanged"
            )
        out.print(
            f"{c}: kept {r['added']:,} of {r['generated']:,} generated "
            f"(dropped {r['dropped_by_judge']:,} by the judge, {r['dropped_near_copies']:,} near-copies{transfer})"
        )
    out.print(
        f"wrote {summary['files']:,} files ({summary['synthetic_files']:,} synthetic) to {out_dir}; "
        f"manifest: {out_dir}/manifest.csv"
    )
