"""What a task scores, read and checked before any model loads: its documents (`TaskData`), whether it
suits the model's kind, and the GLUE options with the data they need. No torch, transformers or sklearn
here, so the command line checks its input in well under a second."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from painters.core.errors import PaintersError
from painters.tasks.catalog import Task, get_task
from painters.tasks.data import MissingDataError, load_docs

PROTOCOLS = ("probe-under-plan", "probe-from-full", "finetune")
POOLINGS = ("mean", "cls")


@dataclass(frozen=True)
class GlueOptions:
    """How to put a classifier on the encoder; `pooling` None follows the model (see `default_pooling`)."""

    protocol: str = "probe-under-plan"
    pooling: str | None = None
    folds: int = 5
    seed: int = 0
    learning_rate: float = 5e-5
    epochs: int = 3
    batch_size: int = 16
    max_length: int = 128

    def check(self) -> GlueOptions:
        if self.protocol not in PROTOCOLS:
            raise PaintersError(f"unknown protocol '{self.protocol}': valid protocols are {', '.join(PROTOCOLS)}")
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise PaintersError(f"unknown pooling '{self.pooling}': valid poolings are {', '.join(POOLINGS)}")
        if self.folds < 2:
            raise PaintersError(f"--folds {self.folds} is out of range: cross-validation needs at least 2 folds")
        if self.seed < 0:
            raise PaintersError(f"--seed {self.seed} is out of range: give a whole number >= 0")
        if not 0 < self.learning_rate < 1:
            raise PaintersError(f"--learning-rate {self.learning_rate} is out of range: give a rate between 0 and 1")
        return self


def check_folds(task: str, rows: list[dict], limit: int | None, folds: int) -> None:
    """Cross-validation needs each class `folds` times among the scored items; else say the smallest limit that works."""
    labels = [int(row["label"]) for row in rows]
    if len(set(labels)) < 2:
        raise PaintersError(f"{task}: every item has the same label: a classifier needs two classes")
    scored, counts = labels[:limit], dict.fromkeys(set(labels), 0)
    if all(scored.count(label) >= folds for label in counts):
        return
    enough = next((k for k, label in enumerate(labels, 1) if _count(counts, label) >= folds), None)
    fix = f"use --limit {enough} or more" if enough else "some class has too few items for any limit; use fewer --folds"
    raise PaintersError(
        f"{task}: {len(scored)} items are too few for {folds}-fold cross-validation "
        f"(each class needs {folds} items): {fix}"
    )


def _count(counts: dict[int, int], label: int) -> int:
    """Count one more `label`; the count of the rarest class so far."""
    counts[label] += 1
    return min(counts.values())


@dataclass(frozen=True)
class TaskData:
    """A task's documents: the split it is scored on and, for classification, a train split if one exists.

    `generate` says whether a generation task generates (else only its reference solution is scored).
    """

    task: Task
    rows: list[dict]
    train_rows: list[dict] | None = None
    generate: bool = True

    def fingerprint_inputs(self) -> dict:
        """What decides the task's numbers besides the model and plan (the options of a GLUE protocol aside)."""
        inputs = {"rows": self.rows, "train": self.train_rows}
        return {**inputs, "generate": self.generate} if self.task.kind == "generate" else inputs


def task_data(
    name: str,
    limit: int | None = None,
    data_dir: str | Path | None = None,
    glue: GlueOptions | None = None,
    generate: bool = True,
) -> TaskData:
    """The first `limit` documents of a task's split; classification tasks also get their train split, if any.

    Without a train split, GLUE cross-validates over the scored items; too few of them are an error here.
    """
    task = get_task(name)
    every = load_docs(task.name, data_dir)
    rows = every[:limit]
    if task.kind != "classification":
        return TaskData(task, rows, generate=generate)
    try:
        return TaskData(task, rows, load_docs(f"{task.name}_train", data_dir))
    except MissingDataError:
        check_folds(task.name, every, limit, (glue or GlueOptions()).folds)
        return TaskData(task, rows)  # cross-validation over the scored split


def check_kinds(encoder: bool, model: str, tasks: list[Task]) -> None:
    """`check_fit` from what the model is (encoder or decoder), so it can run before the model loads."""
    for task in tasks:
        if encoder and task.kind != "classification":
            raise PaintersError(
                f"{model} is an encoder: {task.name} needs a decoder model (encoders take the GLUE tasks sst2, mrpc, rte)"
            )
        if not encoder and task.kind == "classification":
            raise PaintersError(f"{task.name} is a GLUE task for encoders: {model} is a decoder")
