"""Every CLI setting is defined once: each option of every command is a field of its config dataclass (same
default, the field's help) or a parameter of the function it calls (same default), unless a short per-command
list names it as no setting (what to read, where to write, how to print).

The checks iterate over every command of the app and each of its options, so an option added later with a
retyped default or help fails here without anyone having to list it.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path
from typing import Any

import typer

from augment.cli import app
from augment.cli.options import DEVICE, show_value
from augment.compare import CompareSpec
from augment.demo import run_demo
from augment.demo_faces import write_demo_dataset
from augment.plan import plan_rebalance
from augment.rebalance import run_rebalance
from augment.synthesis import QualityFilter
from classifier.config import DEVICE_HELP, TrainConfig
from gan.config import CHECKPOINT_HELP, RECIPES, GanConfig, recipe_config
from gan.evaluate import evaluate_gan
from gan.generate import generate_to_folder

ROOT = Path(__file__).resolve().parents[2]

# Where each command's settings are defined: config dataclasses and the functions it calls.
SOURCES: dict[str, list[Any]] = {
    "demo-data": [write_demo_dataset],
    "prepare": [],
    "inspect": [],
    "gan-train": [GanConfig],
    "generate": [generate_to_folder],
    "gan-eval": [evaluate_gan],
    "train": [TrainConfig],
    "evaluate": [],
    "predict": [],
    "rebalance": [plan_rebalance, QualityFilter, run_rebalance],
    "compare": [CompareSpec],
    "demo": [run_demo],
}
# The options that are no setting of the sources: what to read and write, how to print, and values the CLI
# turns into a source's (comma-separated lists, --device resolved by pick_device, gan-train's --epochs).
NOT_SETTINGS: dict[str, set[str]] = {
    "demo-data": {"out_dir", "counts"},
    "prepare": {"data", "out_file", "fmt", "size", "channels", "classes", "overwrite", "packed"},
    "inspect": {"data", "fmt", "classes", "plot", "as_json"},
    "gan-train": {"data", "run_dir", "epochs", "fmt"},
    "generate": {"run_dir", "out_dir", "device", "fmt"},
    "gan-eval": {"run_dir", "data", "judge", "inception_weights", "fmt", "device"},
    "train": {"data", "run_dir", "fmt", "config"},
    "evaluate": {"run_dir", "data", "split", "out_dir", "fmt", "device", "as_json"},
    "predict": {"run_dir", "images", "detect", "annotate", "device", "as_json"},
    "rebalance": {"data", "generator", "out_dir", "classes", "judge", "dry_run", "fmt", "device"},
    "compare": {"data", "report_dir", "generator", "transfer", "conditions", "sweep", "fmt"}
    | {"curve", "limit_classes", "generators", "transfers"},  # the low-data curve's: each point sets its own limit
    "demo": {"out_dir"},
}
# option -> the source's parameter where the names differ
RENAMED: dict[tuple[str, str], str] = {("rebalance", "out_format"): "fmt"}
# old option names, hidden for one release: hidden parameter -> the option it now is
ALIASES: dict[str, dict[str, str]] = {
    "train": {"refit_head_alias": "--refit-epochs"},
    "rebalance": {"format_alias": "--out-format"},
}
# options shared by many commands take their help from one text, not from each field
SHARED_HELP = {"device": DEVICE_HELP, "checkpoint": CHECKPOINT_HELP}
EMPTY = (None, "", [])  # an option left None stands for these field defaults


def commands() -> dict[str, Any]:
    return typer.main.get_command(app).commands


def recipe_text(name: str, default: Any) -> list[str]:
    """What gan-train's help must say for an option the recipe fills: the default and each recipe that differs."""
    parts = [f"default: {show_value(default)}"]
    for recipe in RECIPES:
        value = getattr(recipe_config(recipe), name)
        if value != default:
            parts.append(f"{recipe}: {show_value(value)}")
    return parts


def field_default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default  # MISSING for a required field


def field_problems(where: str, param: Any, f: dataclasses.Field) -> list[str]:
    """An option made from a dataclass field: the field's default and help, or the forms derived from them."""
    want, text = field_default(f), f.metadata.get("help")
    if text is None:  # no help of its own: one of the shared options
        text = SHARED_HELP.get(param.name)
    if "unset" in f.metadata or "kind" in f.metadata:  # left None: the recipe, DATA or the empty value decides
        expected = [text.rstrip(".")]
        if "unset" in f.metadata:
            expected += (
                recipe_text(f.name, want) if f.metadata["unset"] == "recipe" else [f"default: {show_value(want)}"]
            )
        missing = [t for t in expected if t not in (param.help or "")]
        problems = [f"{where}: help {param.help!r} lacks {missing}"] if missing else []
        return problems + ([] if param.default is None else [f"{where}: default {param.default!r}, not None"])
    problems = [] if param.help == text else [f"{where}: help {param.help!r}, but the field says {text!r}"]
    if want is not dataclasses.MISSING and param.default != want and not (param.default is None and want in EMPTY):
        problems.append(f"{where}: default {param.default!r}, but the field says {want!r}")
    return problems


def function_problems(where: str, param: Any, p: inspect.Parameter) -> list[str]:
    """An option made from a function parameter: the signature's default (or both required), and some help."""
    want = p.default
    if want is inspect.Parameter.empty:
        return [] if param.required else [f"{where}: the function requires it, the option does not"]
    problems = [] if param.help else [f"{where}: no help"]
    if param.default != want:
        problems.append(f"{where}: default {param.default!r}, but the function says {want!r}")
    return problems


def option_problems(name: str, command: Any, sources: list[Any], not_settings: set[str]) -> list[str]:
    """Every option of ``command`` that is neither a setting of ``sources`` (same default and help) nor listed
    in ``not_settings``, nor a hidden old name."""
    problems = []
    for param in command.params:
        where = f"{name} {'/'.join(param.opts)}"
        if param.name == "help" or param.name in not_settings or param.name in ALIASES.get(name, {}):
            continue
        key = RENAMED.get((name, param.name), param.name)
        for source in sources:
            if dataclasses.is_dataclass(source) and key in (by_name := {f.name: f for f in dataclasses.fields(source)}):
                problems += field_problems(where, param, by_name[key])
                break
            if not dataclasses.is_dataclass(source) and key in (params := inspect.signature(source).parameters):
                problems += function_problems(where, param, params[key])
                break
        else:
            problems.append(f"{where}: a setting of none of {[s.__name__ for s in sources]}")
    return problems


def test_every_option_is_a_setting_with_its_default_and_help():
    found = commands()
    assert set(found) == set(SOURCES) == set(NOT_SETTINGS)
    problems = []
    for name, command in found.items():
        problems += option_problems(name, command, SOURCES[name], NOT_SETTINGS[name])
        names = {p.name for p in command.params}
        assert NOT_SETTINGS[name] <= names, f"{name}: stale allow-list {NOT_SETTINGS[name] - names}"
        hidden = {p.name for p in command.params if getattr(p, "hidden", False)}
        assert hidden == set(ALIASES.get(name, {})), name
    assert problems == []


def test_every_field_with_help_is_an_option_of_its_command():
    for name, sources in SOURCES.items():
        options = {RENAMED.get((name, p.name), p.name) for p in commands()[name].params}
        for source in filter(dataclasses.is_dataclass, sources):
            with_help = {f.name for f in dataclasses.fields(source) if "help" in f.metadata}
            assert with_help <= options, (name, with_help - options)
    # the check is not vacuous: the configs' options are there
    assert (
        len([p for p in commands()["train"].params if p.name in {f.name for f in dataclasses.fields(TrainConfig)}])
        >= 25
    )
    assert (
        len([p for p in commands()["gan-train"].params if p.name in {f.name for f in dataclasses.fields(GanConfig)}])
        >= 35
    )


def test_shared_options_take_one_default():
    for name, command in commands().items():
        for p in command.params:
            if p.name == "device":
                assert p.help == DEVICE_HELP and p.default == DEVICE, name
            if p.name == "checkpoint":
                assert p.help == CHECKPOINT_HELP and p.default == "best", name


def test_the_check_catches_a_drifted_default_a_stale_help_and_a_stray_option():
    app = typer.Typer()

    @app.command()
    def train(lr: float = 0.5, epochs: int = typer.Option(TrainConfig().epochs, help="Epochs.")) -> None:
        """A retyped learning rate that drifted, and a help that is not the field's."""

    @app.command()
    def gan(steps: int | None = typer.Option(None, help="Generator steps (default 6000)."), extra: int = 1) -> None:
        """A hand-written help that is not the generated one, and an option that is no setting."""

    group = typer.main.get_command(app)
    problems = option_problems("train", group.commands["train"], [TrainConfig], set())
    assert any("--lr" in p and "0.001" in p for p in problems)
    assert any("--epochs" in p and "Maximum epochs." in p for p in problems)
    problems = option_problems("gan", group.commands["gan"], [GanConfig], set())
    assert any("default: 6000" in p for p in problems) and any("--extra" in p for p in problems)
    assert option_problems("gan", group.commands["gan"], [GanConfig], {"steps", "extra"}) == []


def test_gan_train_help_states_each_recipe_default():
    help_of = {p.name: p.help or "" for p in commands()["gan-train"].params}
    assert "(default: 32; classic: 64)." in help_of["g_width"]
    assert "(default: on; classic: off)." in help_of["spectral_norm"]
    assert "(default: 6000; transfer: 700)." in help_of["steps"]
    assert f"default: {GanConfig().size}" in help_of["size"]


def test_compare_min_prob_is_the_quality_filter_default():
    spec = CompareSpec(models=["simple-cnn"], conditions=["baseline"], seeds=1)
    assert spec.min_prob == QualityFilter().min_prob
    params = {p.name: p.default for p in commands()["compare"].params}
    assert params["min_prob"] == QualityFilter().min_prob


def _literal_min_prob_defaults(path: Path) -> list[tuple[int, float]]:
    """(line, value) of every numeric literal given to something called min_prob: defaults, assignments,
    dataclass fields (``= 0.2`` or ``= field(default=0.2, ...)``) and keyword arguments."""
    found = []

    def note(name: str | None, value: ast.AST | None) -> None:
        if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "field":
            value = next((k.value for k in value.keywords if k.arg == "default"), None)
        if name == "min_prob" and isinstance(value, ast.Constant) and isinstance(value.value, (int, float)):
            found.append((value.lineno, float(value.value)))

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            positional = a.posonlyargs + a.args
            for arg, default in zip(positional[len(positional) - len(a.defaults) :], a.defaults, strict=True):
                note(arg.arg, default)
            for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
                note(arg.arg, default)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            note(node.target.id, node.value)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                note(getattr(target, "id", getattr(target, "attr", None)), node.value)
        elif isinstance(node, ast.keyword):
            note(node.arg, node.value)
    return found


def test_the_min_prob_default_is_written_once():
    nonzero = []
    for package in ("augment", "gan", "classifier", "scripts"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            nonzero += [(rel, line, v) for line, v in _literal_min_prob_defaults(path) if v != 0]
    assert len(nonzero) == 1, nonzero  # 0 (filter off) is a choice, not a copy of the default
    rel, line, value = nonzero[0]
    assert rel == "augment/synthesis.py" and value == QualityFilter().min_prob
    assert any("min_prob" in text for text in (ROOT / rel).read_text().splitlines()[line - 2 : line])
