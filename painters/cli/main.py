"""The `painters` program: its commands in the order `--help` lists them, and the entry point that turns
every user error into one line on stderr and exit code 2."""

from __future__ import annotations

import sys

import typer
from typer.core import TyperCommand

from painters.cli import analysis, evaluate, model, search, study, tools
from painters.core.errors import PaintersError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no boxes, no <bool> metavars on flags
    help="Run pretrained transformers under altered layer execution, exactly, and measure what it does.",
)

COMMANDS = {
    "layers": model.layers,
    "plan": model.plan,
    "generate": model.generate,
    "export": tools.export,
    "bench": tools.bench,
    "eval": evaluate.evaluate,
    "similarity": analysis.similarity,
    "suggest": analysis.suggest,
    "search": search.search,
    "sweep": study.sweep,
    "results": study.results,
    "report": study.report,
    "paper": study.paper,
}


class OnceCommand(TyperCommand):
    """A command whose options are given once each: click keeps the last of an option given twice and
    drops the others (`--tasks arc_easy --task hellaswag` would score hellaswag alone); painters refuses."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        options = [p for p in self.params if p.param_type_name == "option" and not p.multiple and not p.count]
        names = {name: option for option in options for name in (*option.opts, *option.secondary_opts)}
        seen: dict[str, str] = {}
        value_next = False  # the token after an option that takes a value is that value, whatever it looks like
        for arg in args[: args.index("--") if "--" in args else len(args)]:
            given, is_value = arg.split("=", 1)[0], value_next
            value_next = given in names and "=" not in arg and not names[given].is_flag
            if is_value or given not in names:
                continue
            option = names[given]
            if option.name in seen:
                both = "" if seen[option.name] == given else f" (as {seen[option.name]} and {given})"
                message = f"given twice{both}: give it once; several values go in one comma list"
                raise typer.BadParameter(message, ctx=ctx, param=option)
            seen[option.name] = given
        return super().parse_args(ctx, args)


for name, command in COMMANDS.items():
    app.command(name=name, cls=OnceCommand)(command)

INTERRUPTED = 130


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2, no traceback.

    Usage errors (an unknown option, a value of the wrong type) are one line too; Ctrl-C says so and
    exits 130 (a sweep first says what it kept and how to resume).
    """
    try:
        code = app(standalone_mode=False, prog_name="painters")
    except PaintersError as error:
        _fail(f"error: {error}", 2)
    except typer.TyperException as error:  # click's usage errors
        _fail(f"error: {_one_line(error)}", getattr(error, "exit_code", 2))
    except (KeyboardInterrupt, typer.Abort):
        code = INTERRUPTED
    if code == INTERRUPTED:  # typer turns Ctrl-C into this exit code
        _fail("interrupted", INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


def _one_line(error: Exception) -> str:
    message = error.format_message() if hasattr(error, "format_message") else str(error)
    command = getattr(getattr(error, "ctx", None), "command_path", "painters")
    return f"{' '.join(message.split())} (see `{command} --help`)"


def _fail(message: str, code: int) -> None:
    typer.echo(message, err=True)
    sys.exit(code)
