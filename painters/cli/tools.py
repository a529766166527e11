"""Commands for one plan at a time: `bench` (speed and peak memory against the full model) and `export`
(the model under a plan as a standard checkpoint, or mergekit's recipe for it)."""

from __future__ import annotations

from pathlib import Path

import typer

from painters import checks
from painters.checks import local_model, model_source, output_file, output_folder
from painters.cli.options import DTYPE, MODEL, given, load, load_planned, path_option, placed, planned
from painters.core.errors import PaintersError
from painters.models.placement import Placement


def export(
    out: Path = path_option(..., "--out", help="Folder for the checkpoint (hf), or the YAML file (mergekit)."),
    model: str = MODEL,
    plan: str = typer.Option(..., "--plan", help="Plan text or variant:key=value,... (skip:n=6); no parallel blocks."),
    fmt: str = typer.Option("hf", "--format", help="hf (a Hugging Face folder) or mergekit (a passthrough YAML)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing, non-empty --out."),
    dtype: str = DTYPE,
) -> None:
    """Write the model under a plan as a standard checkpoint any tool loads, or as mergekit's recipe for it."""
    from painters.tools.export import check_destination, check_exportable
    from painters.tools.export import export as write_export

    check_destination(out, fmt, force)
    if fmt == "mergekit":
        output_file(out, "--out", (local_model(model),))
    else:  # the folder is swapped for the new checkpoint as a whole
        output_folder(out, "--out", (local_model(model),), replaced=True)
    placement = Placement("cpu", dtype).named()  # the weights are written, not run: host memory is enough
    early = checks.plan_before_load(plan, model_source(model))
    if early is not None:
        check_exportable(early)  # fail before loading the model
    loaded, tokenizer, chosen = load_planned(model, placement, plan, early)
    check_exportable(chosen)
    typer.echo(f"plan: {chosen}", err=True)
    typer.echo(write_export(loaded, tokenizer, chosen, out, fmt, force))
    if fmt == "mergekit":
        typer.echo(f"build it with: mergekit-yaml {out} OUTPUT_FOLDER", err=True)


@placed()
def bench(
    ctx: typer.Context,
    plans: str = typer.Option(
        ..., "--plans", help="Plans separated by ';' (plan text has commas), e.g. 'skip:n=6;0-11,15x6,18-29'."
    ),
    model: str = MODEL,
    batch_size: int = typer.Option(8, "--batch-size", help="Prompts per prefill, and the batch of the second decode."),
    prompt_tokens: int = typer.Option(128, "--prompt-tokens", help="Tokens per prompt."),
    new_tokens: int = typer.Option(32, "--new-tokens", help="Tokens decoded through the KV cache (0: no decode)."),
    rounds: int = typer.Option(5, "--rounds", help="Measured rounds, after one warm-up round."),
    json_path: Path | None = path_option(None, "--json", help="Also write the rows as JSON to this file."),
    *,
    placement: Placement,
) -> None:
    """Speed and peak memory of plans against the full model: prefill tokens/s, decode ms/token, peak MiB."""
    from painters.models.devices import Meter, input_device
    from painters.tools.bench import Shape, format_split, format_table, summary_json, weight_split
    from painters.tools.bench import bench as measure

    shape = Shape(batch_size, prompt_tokens, new_tokens).check(rounds)
    specs = [spec.strip() for spec in plans.split(";") if spec.strip()]
    if not specs:
        raise PaintersError("no plans given: pass --plans with plans separated by ';', e.g. 'skip:n=6;0-11,18-29'")
    output_file(json_path, "--json", (local_model(model),))
    facts = model_source(model)
    early = [checks.plan_before_load(spec, facts) for spec in specs]
    if facts is not None:
        shape.fit(facts.context_length)
        if facts.encoder and given(ctx, "new_tokens"):
            raise PaintersError("--new-tokens sets how many tokens to decode, and an encoder decodes none")
    loaded, _ = load(model, placement)
    layers = loaded.config.num_hidden_layers
    chosen = [planned(spec, plan, layers) for spec, plan in zip(specs, early, strict=True)]
    meter = Meter(input_device(loaded))
    rows = measure(loaded, chosen, shape, rounds, meter, progress=True)
    typer.echo(format_table(rows, shape, meter.describe()))
    typer.echo(format_split(weight_split(loaded)))
    if json_path is not None:
        json_path.write_text(summary_json(rows, model, meter.describe(), shape, rounds))
