"""Command-line options derived from where each setting is defined, so that a default and its help are
written once: a config dataclass field (help in ``field(metadata={"help": ...})``) or a function parameter
(default in the signature, help given here by the command).

A command names a group parameter (e.g. ``settings: dict``); ``with_options`` puts the group's options in
its place in the command's ``__signature__`` (which typer reads) and, when the command runs, hands it the
group's values as one dict keyed by field or parameter name, ready for ``Config(**values)`` or ``func(**values)``.

Field metadata:
  help    the option's help; only a field with help is an option
  option  its declaration when not ``--field-name`` (``--x/--no-x`` for a bool): ``--balanced/--natural``
  unset   ``recipe`` or ``data``: the option defaults to None, so that the recipe (``gan.config.RECIPES``) or
          DATA's image shape decides, and its help states the default
  kind    ``path``: a str field given as a path ('' when not given); ``classes``: a list of class names given
          as 'happy,sad'; ``limit``: a class → N dict given as 'disgust=25,fear=25' (augment.core.limits)
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from augment.cli.render import warn
from augment.core.errors import UserError
from augment.core.limits import parse_limit
from augment.core.runtime import pick_device
from classifier.config import CLASSES_HELP, DEVICE_HELP
from gan.config import CHECKPOINT_HELP, RECIPES, GanConfig, recipe_config

KEYWORD = inspect.Parameter.KEYWORD_ONLY

# --------------------------------------------------------------------------- options that are no setting
DataArg = Annotated[Path, typer.Argument(help="Dataset folder, CSV file, or an 'augment prepare' cache file.")]
FormatOpt = Annotated[
    str,
    typer.Option("--format", help="Force a layout: auto, cache, fer2013-csv, folders, rafdb, affectnet, ckplus."),
]
SizeOpt = Annotated[int | None, typer.Option(help="Resize images to SIZE×SIZE (default 48, or the cache's).")]
ChannelsOpt = Annotated[int | None, typer.Option(help="1 (grayscale) or 3 (RGB); default 1, or the cache's.")]
ClassesOpt = Annotated[str | None, typer.Option(help=CLASSES_HELP, show_default=False)]
DeviceOpt = Annotated[str, typer.Option(help=DEVICE_HELP)]
CheckpointOpt = Annotated[str, typer.Option(help=CHECKPOINT_HELP)]
DEVICE = inspect.signature(pick_device).parameters["name"].default  # for commands that call pick_device
OVERWRITE_HELP = (
    "Replace another run's output: remove the files its manifest lists. "
    "A folder holding files no manifest lists is refused."
)


def show_value(value: Any) -> str:
    """A default as --help writes it: on/off for switches, '' for an empty string."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if value != "" else "''"


def class_names(classes: str | None) -> list[str]:
    """``--classes happy,sad`` of train and gan-train as canonical names ([] = every class)."""
    from augment.core.labels import parse_class_spec

    try:
        spec = parse_class_spec(classes)
    except ValueError as e:
        raise UserError(str(e)) from e
    return sorted(spec.keep) if spec else []


def path_text(path: Path | None) -> str:
    """A ``kind: path`` field's value: the path as text, '' when not given."""
    return str(path or "")


# --------------------------------------------------------------------------- options from fields
def field_help(cls: type, name: str) -> str:
    """The help of a dataclass field (its ``metadata["help"]``)."""
    return next(f.metadata["help"] for f in dataclasses.fields(cls) if f.name == name)


def unset_help(cls: type, f: dataclasses.Field, text: str) -> str:
    """Help of an option left None so the recipe or DATA decides: 'TEXT (default: X; classic: Y).'"""
    if f.metadata["unset"] == "data":
        return f"{text} (default: {show_value(_default(f))}, or the cache's)."
    assert cls is GanConfig, f"unset: recipe is for GanConfig fields, not {cls.__name__}.{f.name}"
    default = getattr(recipe_config(GanConfig.recipe), f.name)
    shown = [show_value(default)]
    shown += [f"{r}: {show_value(v)}" for r in RECIPES if (v := getattr(recipe_config(r), f.name)) != default]
    return f"{text} (default: {'; '.join(shown)})."


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return inspect.Parameter.empty  # a required option


def _declaration(name: str, kind: type) -> str:
    flag = "--" + name.replace("_", "-")
    return f"{flag}/--no-{flag[2:]}" if kind is bool else flag


def _field_option(cls: type, f: dataclasses.Field, hint: Any) -> tuple[inspect.Parameter, Callable | None]:
    """The command parameter of one field, and how its value becomes the field's (None: as it is)."""
    meta = f.metadata
    text, kind, default, convert, extra = meta["help"], meta.get("kind"), _default(f), None, {}
    if kind == "path":
        hint, default, convert = Path | None, None, path_text
    elif kind == "classes":
        hint, default, convert, extra = str | None, None, class_names, {"show_default": False}
    elif kind == "limit":
        hint, default, convert, extra = str | None, None, parse_limit, {"show_default": False}
    elif "unset" in meta:
        hint, default, text = hint | None, None, unset_help(cls, f, text)
    declaration = meta.get("option") or _declaration(f.name, bool if hint in (bool, bool | None) else str)
    option = typer.Option(declaration, help=text, **extra)
    return inspect.Parameter(f.name, KEYWORD, default=default, annotation=Annotated[hint, option]), convert


@dataclass(frozen=True)
class Group:
    """The options of one source: command parameters, and how each value reaches the source."""

    params: tuple[inspect.Parameter, ...]
    names: dict[str, str]  # command parameter -> field or function parameter
    convert: dict[str, Callable[[Any], Any]]  # command parameter -> the source's value of the option's

    def take(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The group's values, removed from the command's keyword arguments."""
        return {self.names[p]: self.convert.get(p, _same)(kwargs.pop(p)) for p in self.names}


def _same(value: Any) -> Any:
    return value


def field_options(cls: type, lead: Iterable[str] = (), leave: Iterable[str] = ()) -> Group:
    """An option per field of ``cls`` with help, in field order (``lead`` first); ``leave``: fields with
    help the command turns into options itself (see ``field_help``)."""
    hints = typing.get_type_hints(cls)
    lead, leave = tuple(lead), set(leave)
    chosen = [f for f in dataclasses.fields(cls) if "help" in f.metadata and f.name not in leave]
    chosen.sort(key=lambda f: f.name not in lead)  # stable: the rest keep their order
    params, convert = [], {}
    for f in chosen:
        param, how = _field_option(cls, f, hints[f.name])
        params.append(param)
        if how is not None:
            convert[f.name] = how
    return Group(tuple(params), {p.name: p.name for p in params}, convert)


# --------------------------------------------------------------------------- options from a signature
def signature_options(func: Callable, helps: dict[str, str], rename: dict[str, str] | None = None) -> Group:
    """An option per parameter of ``func`` named in ``helps`` (in that order), with the signature's default
    and a type read from it; ``rename``: parameter -> command parameter where the option's name differs."""
    rename = rename or {}
    defaults = inspect.signature(func).parameters
    params, names = [], {}
    for name, text in helps.items():
        default = defaults[name].default
        assert default not in (None, inspect.Parameter.empty), f"{func.__name__}({name}) has no default to show"
        kind = type(default)
        option = typer.Option(_declaration(rename.get(name, name), kind), help=text)
        params.append(
            inspect.Parameter(rename.get(name, name), KEYWORD, default=default, annotation=Annotated[kind, option])
        )
        names[rename.get(name, name)] = name
    return Group(tuple(params), names, {})


# --------------------------------------------------------------------------- old option names
@dataclass(frozen=True)
class Alias:
    """An option's old name, hidden and kept for one release: it sets the new one and says so."""

    old: str  # "--format"
    new: str  # "--out-format"
    target: str  # the command parameter of the new name
    kind: type

    @property
    def name(self) -> str:
        return self.old.lstrip("-").replace("-", "_") + "_alias"

    def param(self) -> inspect.Parameter:
        option = typer.Option(self.old, hidden=True, show_default=False)
        return inspect.Parameter(self.name, KEYWORD, default=None, annotation=Annotated[self.kind | None, option])

    def apply(self, kwargs: dict[str, Any]) -> None:
        value = kwargs.pop(self.name)
        if value is not None:
            warn(f"{self.old} is now {self.new}")
            kwargs[self.target] = value


# --------------------------------------------------------------------------- the command
def with_options(*aliases: Alias, **groups: Group) -> Callable[[Callable], Callable]:
    """Put each group's options where the command's parameter of that name stands (and the aliases last);
    the command receives the group's values as a dict in that parameter."""

    def wrap(func: Callable) -> Callable:
        own = inspect.signature(func, eval_str=True).parameters.values()
        params = [q for p in own for q in (groups[p.name].params if p.name in groups else (p,))]
        params += [a.param() for a in aliases]

        def command(**kwargs: Any) -> Any:
            for alias in aliases:
                alias.apply(kwargs)
            for name, group in groups.items():
                kwargs[name] = group.take(kwargs)
            return func(**kwargs)

        command.__signature__ = inspect.Signature([p.replace(kind=KEYWORD) for p in params])
        for attr in ("__name__", "__qualname__", "__module__", "__doc__"):
            setattr(command, attr, getattr(func, attr))
        return command

    return wrap
