"""Commands about one model and one plan: `layers` (what it is, what a plan costs), `plan` (a variant's
plan text) and `generate` (a continuation under a plan)."""

from __future__ import annotations

import typer

from painters import checks
from painters.checks import model_source
from painters.cli.options import MODEL, load_planned, placed, planned
from painters.core.errors import PaintersError
from painters.core.plan import Plan
from painters.core.variants import VARIANTS, parse_band
from painters.models.placement import Placement


@placed(attn=False)
def layers(
    model: str = MODEL,
    plan: str = typer.Option("full", "--plan", help="The plan whose cost to estimate (plan text or variant:k=v)."),
    *,
    placement: Placement,
) -> None:
    """Describe a model (architecture, layers, hidden size, parameters) and what a plan will cost on the device.

    Only the model's config is read: its weights are neither loaded nor allocated.
    """
    from painters.models.loading import describe, empty_model

    early = checks.plan_before_load(plan, model_source(model))
    empty = empty_model(model)
    chosen = planned(plan, early, empty.config.num_hidden_layers)
    for key, value in {**describe(empty), **_cost(empty, chosen, placement)}.items():
        typer.echo(f"{key:<14}{value}")


def _cost(empty, chosen: Plan, placement: Placement) -> dict[str, str]:
    from painters.models.costs import plan_cost

    return plan_cost(empty, chosen, placement)


@placed(attn=False)
def plan(
    name: str = typer.Argument(..., help=f"Variant: {', '.join(VARIANTS)}."),
    num_layers: int | None = typer.Option(None, "--layers", help="Number of layers L of the model (or --model)."),
    n: int | None = typer.Option(None, "--n", help="Number of affected middle layers."),
    band: str | None = typer.Option(None, "--band", help="Explicit half-open band A:B instead of --n."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the shuffle variant (default 0)."),
    loops: int | None = typer.Option(None, "--loops", help="Loops of the looped_parallel variant (default 3)."),
    layer: int | None = typer.Option(None, "--layer", help="Layer I of skip_layer and swap."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Take L from this model and print the plan's cost on the device to stderr."
    ),
    *,
    placement: Placement,
) -> None:
    """Print the plan text of a variant of the paper's Figure 1 (with --model, also what it will cost)."""
    if (num_layers is None) == (model is None):
        raise PaintersError("give one of --layers L (the number of layers) and --model M (to read it from the model)")
    empty = None
    if model is not None:
        from painters.models.loading import empty_model

        empty = empty_model(model)
        num_layers = empty.config.num_hidden_layers
    built = Plan.variant(
        name, num_layers, n=n, band=parse_band(band) if band is not None else None, seed=seed, loops=loops, layer=layer
    )
    typer.echo(str(built))
    if empty is not None:
        for key, value in _cost(empty, built, placement).items():
            typer.echo(f"{key:<14}{value}", err=True)


@placed()
def generate(
    prompt: str = typer.Option(..., "--prompt", "-p", help="Text to continue."),
    model: str = MODEL,
    plan: str = typer.Option("full", "--plan", help="Plan text (0-11,18-29) or variant:key=value,... (skip:n=6)."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", min=1, help="Tokens to generate (within the context)."),
    *,
    placement: Placement,
) -> None:
    """Greedy continuation of a prompt under a plan, with the KV cache."""
    from painters.tasks.generation import greedy_continuation

    checks.text(prompt, "--prompt")
    facts = model_source(model)
    if facts is not None:
        checks.decoder(facts, "generation")
    early = checks.plan_before_load(plan, facts)
    if facts is not None:
        checks.new_tokens(max_new_tokens, facts.context_length)
        _prompt_fits(model, prompt, max_new_tokens, facts.context_length)
    loaded, tokenizer, chosen = load_planned(model, placement, plan, early)
    text = greedy_continuation(loaded, tokenizer, chosen, prompt, max_new_tokens)
    typer.echo(f"plan: {chosen}", err=True)
    typer.echo(text)


def _prompt_fits(model: str, prompt: str, max_new_tokens: int, context: int) -> None:
    """The prompt and its continuation fit the context: counted with the tokenizer alone, before the weights load."""
    from painters.models.loading import load_tokenizer
    from painters.tasks.generation import check_length

    check_length(len(load_tokenizer(model)(prompt)["input_ids"]), max_new_tokens, context)
