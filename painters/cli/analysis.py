"""Commands that read hidden states under a plan: `similarity` (cosine and CKA between steps, importance)
and `suggest` (the plan that drops the steps a metric rates least important)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from painters import checks
from painters.checks import local_model, model_source, output_folder
from painters.cli.options import DATA_DIR, MODEL, PLAN, gathered, load_planned, path_option, placed
from painters.core.errors import PaintersError
from painters.models.placement import Placement

READING_OPTIONS = (
    ("task", str | None, typer.Option(
        None, "--task", "--tasks", help="Task whose documents (context and gold answer) are the text [lambada_openai]."
    )),
    ("text_file", Path | None, path_option(
        None, "--text-file", help="Read this file instead: one document per line.")),
    ("limit", int, typer.Option(256, "--limit", help="Documents to read.")),
    ("batch_size", int, typer.Option(16, "--batch-size", min=1, help="Documents per forward pass.")),
    ("max_length", int, typer.Option(512, "--max-length", min=1, help="Tokens read from each document, at most.")),
    ("data_dir", Path | None, DATA_DIR),
)  # fmt: skip


@dataclass(frozen=True)
class Reading:
    """Which documents the states are read from, and how many tokens and documents a forward pass takes."""

    task: str | None
    text_file: Path | None
    limit: int
    batch_size: int
    max_length: int
    data_dir: Path | None

    def texts(self) -> list[str]:
        """The documents, read before the model loads, so bad text options fail first."""
        from painters.analysis.texts import load_texts

        if self.task is not None and self.text_file is not None:
            raise PaintersError("give --task or --text-file, not both: the text is one or the other")
        checks.input_folder(self.data_dir, "--data-dir")
        task = None if self.text_file else self.task or "lambada_openai"
        return load_texts(task, self.text_file, self.limit, self.data_dir)

    def measure(self, model, tokenizer, texts: list[str], plan):
        """`painters.similarity` of the states over `texts`, with this reading's batch and length."""
        from painters.analysis.similarity import similarity

        return similarity(
            model, tokenizer, texts, plan, batch_size=self.batch_size, max_length=self.max_length, progress=True
        )


reading_options = gathered("reading", READING_OPTIONS, Reading)


@placed()
@reading_options
def similarity(
    out: Path = path_option(..., "--out", help="Folder for cosine, cka and importance .csv/.png."),
    model: str = MODEL,
    plan: str = PLAN,
    *,
    reading: Reading,
    placement: Placement,
) -> None:
    """Compare the hidden states of every two steps (cosine, CKA) and rate each layer's importance."""
    from painters.analysis.files import write_similarity
    from painters.analysis.importance import importance_table

    output_folder(out, "--out", (local_model(model), reading.text_file, reading.data_dir))
    early = checks.plan_before_load(plan, model_source(model))
    texts = reading.texts()
    loaded, tokenizer, chosen = load_planned(model, placement, plan, early)
    result = reading.measure(loaded, tokenizer, texts, chosen)
    typer.echo(f"plan: {result.plan} · {len(texts)} documents, {result.tokens} tokens", err=True)
    for path in write_similarity(result, importance_table(result), out, model):
        typer.echo(path)


@placed()
@reading_options
def suggest(
    n: int = typer.Option(..., "--n", help="Number of steps to drop (the n of skip:n=N), from the plan's steps."),
    metric: str = typer.Option("block_influence", "--metric", help="block_influence, or angular (best block)."),
    model: str = MODEL,
    plan: str = PLAN,
    *,
    reading: Reading,
    placement: Placement,
) -> None:
    """Print the plan that drops the N steps of a plan a metric rates least important, ready for --plan.

    The steps are measured as `painters similarity` measures them.
    """
    from painters.analysis.importance import check_suggestion, importance_table
    from painters.analysis.importance import suggest as suggest_plan

    check_suggestion(metric, n)
    early = checks.plan_before_load(plan, model_source(model))
    if early is not None:
        check_suggestion(metric, n, len(early.units))
    texts = reading.texts()
    loaded, tokenizer, chosen = load_planned(model, placement, plan, early)
    check_suggestion(metric, n, len(chosen.units))
    result = reading.measure(loaded, tokenizer, texts, chosen)
    typer.echo(str(suggest_plan(importance_table(result), chosen, n, metric)))
