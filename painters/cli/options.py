"""The command line's shared vocabulary: every option more than one command takes, declared once, and the
`placed()` decorator that gives a command the placement options as one checked `Placement`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import typer

from painters.core.errors import PaintersError
from painters.core.plan import Plan
from painters.models.embedded import DEFAULT_MODEL, EMBEDDED
from painters.models.placement import Placement
from painters.tasks.catalog import get_task


def nonempty_path(value: str) -> Path:
    """A path option's value: never empty (a Path of "" is the current folder, which no one means)."""
    if not str(value).strip():
        raise typer.BadParameter("the path is empty: give a file or folder name")
    return Path(value)


def path_option(default, *names: str, help: str):
    """A path option: never empty, shown as <path> like typer's own."""
    return typer.Option(default, *names, help=help, parser=nonempty_path, metavar="<path>")


MODEL = typer.Option(
    DEFAULT_MODEL, "--model", "-m", help=f"Embedded name ({', '.join(EMBEDDED)}), folder, .gguf or hub id."
)
DEVICE = typer.Option("auto", "--device", help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps.")
DTYPE = typer.Option(
    "auto", "--dtype", help="auto (bfloat16 on a GPU that has it, else float32), float32, bfloat16, float16."
)
DEVICE_MAP = typer.Option(
    None, "--device-map", help="auto, balanced or sequential: accelerate spreads the model over GPUs, CPU and disk."
)
ATTN = typer.Option(None, "--attn", help="Attention kernel: sdpa, eager or flash_attention_2 (default: transformers').")
MAX_BATCH_TOKENS = typer.Option(
    None, "--max-batch-tokens", min=1, help="Tokens per forward pass, padding included (default: from the device)."
)
SKIP_GENERATION = typer.Option(
    False,
    "--skip-generation",
    help="GSM8K: score only the reference solution's log-likelihood (gold_ll), no generation.",
)
EXACT_ATTENTION = typer.Option(
    False,
    "--exact-attention",
    help="GSM8K: each row gets its own copy of the shared 8-shot prompt's cache and the model's own attention "
    "(lm-eval's numbers bit for bit, slower), not shared-prefix attention (the same up to float rounding).",
)
MEMO_BUDGET = typer.Option(
    None, "--memo-budget", min=0.0, help="GiB the steps shared by plans may keep (default: 1/4 of the free memory)."
)
PROTOCOL = typer.Option("probe-under-plan", "--protocol", help="GLUE: probe-under-plan, probe-from-full or finetune.")
POOLING = typer.Option(None, "--pooling", help="GLUE: mean or cls (default: as the model is meant to be pooled).")
TASKS_NAMES = ("--tasks", "--task", "-t")
DATA_DIR = path_option(None, "--data-dir", help="Folder of <task>.jsonl files: every task's data from there.")
PLAN = typer.Option("full", "--plan", help="Plan text or variant:key=value,... (skip:n=6).")

PLACEMENT_OPTIONS = (("device", str, DEVICE), ("dtype", str, DTYPE), ("device_map", str | None, DEVICE_MAP),
                     ("attn", str | None, ATTN))  # fmt: skip


def gathered(argument: str, options: tuple, build: Callable[..., object]) -> Callable[[Callable], Callable]:
    """Give a command a group of options, declared once, as one value: the command takes `argument`, and
    its command line takes `options` ((name, type, typer.Option) each) whose values `build` turns into it."""

    def wrap(command: Callable) -> Callable:
        signature = inspect.signature(command)
        assert argument in signature.parameters, f"{command.__name__} takes no {argument}"

        @functools.wraps(command)
        def run(**kwargs):
            return command(**{argument: build(**{name: kwargs.pop(name) for name, _, _ in options})}, **kwargs)

        own = [p for p in signature.parameters.values() if p.name != argument]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
                 for name, kind, default in options]  # fmt: skip
        run.__signature__ = signature.replace(parameters=[*own, *added])
        own_hints = {name: hint for name, hint in command.__annotations__.items() if name != argument}
        run.__annotations__ = {**own_hints, **{name: kind for name, kind, _ in options}}  # typer reads these
        return run

    return wrap


def placed(attn: bool = True) -> Callable[[Callable], Callable]:
    """Give a command the placement options (--device, --dtype, --device-map and, with `attn`, --attn) as
    its `placement` argument: a `Placement` whose names are checked before the command runs (without torch,
    so a misspelt device fails at once); what `auto` means here is resolved when the model loads."""
    options = PLACEMENT_OPTIONS if attn else PLACEMENT_OPTIONS[:3]
    return gathered("placement", options, _placement)


def _placement(**values: str | None) -> Placement:
    return Placement(**values).named()


def load(model: str, placement: Placement):
    """`load_model` with the command's placement: (model, tokenizer)."""
    from painters.models.loading import load_model

    return load_model(model, **asdict(placement))


def load_planned(model: str, placement: Placement, spec: str, early: Plan | None):
    """The model, its tokenizer and the plan: `early` (from `checks.plan_before_load`) checked against the
    loaded model's layers, or the variant `spec` resolved now that the layer count is known."""
    loaded, tokenizer = load(model, placement)
    return loaded, tokenizer, planned(spec, early, loaded.config.num_hidden_layers)


def planned(spec: str, early: Plan | None, num_layers: int) -> Plan:
    """The plan of `spec` on a model of `num_layers` layers, given what `checks.plan_before_load` made of it."""
    return early.check(num_layers) if early is not None else Plan.resolve(spec, num_layers)


def gib_bytes(gib: float | None) -> int | None:
    """A `--memo-budget` in GiB as bytes."""
    return None if gib is None else int(gib * (1 << 30))


_GLUE_OPTIONS = ("protocol", "pooling", "folds", "seed", "learning_rate", "epochs", "train_batch_size")


_FINETUNE_OPTIONS = ("learning_rate", "epochs", "train_batch_size")


def glue_options(ctx: typer.Context, tasks: list[str], options):
    """The GLUE options, checked, when a GLUE task is among `tasks`; given without one, they are an error,
    and so are the fine-tuning options under a probe protocol."""
    if any(get_task(name).kind == "classification" for name in tasks):
        unused = [name for name in _FINETUNE_OPTIONS if name in ctx.params and given(ctx, name)]
        if unused and options.protocol != "finetune":
            flag = "--" + unused[0].replace("_", "-")
            raise PaintersError(f"{flag} applies to --protocol finetune only: a probe trains no network")
        return options.check()
    given_names = [name for name in _GLUE_OPTIONS if name in ctx.params and given(ctx, name)]
    if given_names:
        flag = "--" + given_names[0].replace("_", "-")
        raise PaintersError(f"{flag} applies to the GLUE tasks (sst2, mrpc, rte) only, and none is among the tasks")
    return None


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave option `name` on the command line (not its default)."""
    return ctx.get_parameter_source(name).name not in ("DEFAULT", "DEFAULT_MAP")
