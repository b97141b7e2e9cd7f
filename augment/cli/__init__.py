"""The ``augment`` command line: thin wrappers over functions a notebook can call too.

One module per command group (data, gan, classifier, experiment); ``options`` derives each command's
settings from its config dataclass or function, ``render`` prints the results."""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from augment.cli import classifier, data, experiment, gan
from augment.cli.render import err
from augment.core.errors import UserError


class _Interrupted(Exception):
    """Ctrl-C, carried past typer (which turns KeyboardInterrupt into a silent exit 130) to ``main``."""


class _Commands(TyperGroup):
    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:  # a run's RunInterrupted says where it stopped
            raise _Interrupted(str(e) or "interrupted; rerun the same command to resume where it stopped") from e


app = typer.Typer(
    cls=_Commands,
    name="augment",
    help="GAN data augmentation and rebalancing for facial expression recognition.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
COMMANDS = {  # in the order --help lists them
    "demo-data": data.demo_data_cmd,
    "prepare": data.prepare_cmd,
    "inspect": data.inspect_cmd,
    "gan-train": gan.gan_train_cmd,
    "generate": gan.generate_cmd,
    "gan-eval": gan.gan_eval_cmd,
    "train": classifier.train_cmd,
    "evaluate": classifier.evaluate_cmd,
    "predict": classifier.predict_cmd,
    "rebalance": experiment.rebalance_cmd,
    "compare": experiment.compare_cmd,
    "demo": experiment.demo_cmd,
}
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user mistakes become one line on stderr and a non-zero exit."""
    try:
        app(args=argv, prog_name="augment")
    except UserError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except _Interrupted as e:
        err.print(escape(str(e)), highlight=False, soft_wrap=True)
        sys.exit(130)
