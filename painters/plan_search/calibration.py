"""Calibration text: the documents a search scores its candidates on, never the ones it is judged on.

`TASK:N` takes the last N documents of a task's split and `TASK:A-B` documents A to B (from 0, both
included); a held-out evaluation with `--limit` takes the first documents, so the two are disjoint unless
they meet, which `check_disjoint` refuses. A text file gives one document per line. Each document is
tokenized as lm-eval tokenizes a text (`painters.tasks.scoring.encode`) and cut to `max_length` tokens; the
sequences are sorted longest first and batched, right-padded, so every run of a source makes the same
batches, and the source's fingerprint (its tokens and batching) keys its stored scores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from painters.analysis.texts import load_texts
from painters.core.errors import PaintersError
from painters.study.fingerprints import data_fingerprint
from painters.tasks.catalog import document_text, get_task
from painters.tasks.data import load_docs
from painters.tasks.scoring import encode

DEFAULT_SOURCE = "lambada_openai:64"
_SPEC = re.compile(r"(?P<task>[a-z0-9_]+):(?:(?P<first>[0-9]+)-(?P<last>[0-9]+)|(?P<count>[0-9]+))")


@dataclass(frozen=True)
class Source:
    """Where calibration text comes from: documents `first`..`last` of a task's split, or a text file."""

    name: str  # as the user wrote it
    task: str | None = None
    first: int = 0
    last: int = 0
    text_file: Path | None = None

    def texts(self, data_dir=None) -> list[str]:
        if self.text_file is not None:
            return load_texts(text_file=self.text_file)
        task = get_task(self.task)
        rows = load_docs(task.name, data_dir)[self.first : self.last + 1]
        return [document_text(task, row) for row in rows]


def parse_source(spec: str | None, text_file: Path | None, data_dir=None) -> Source:
    """A `--calibration TASK:N|TASK:A-B` or `--text-file`, checked against the task's split (read, not loaded
    into a model), so a bad source fails before anything loads."""
    if text_file is not None:
        if spec is not None:
            raise PaintersError("give --calibration or --text-file, not both: the calibration text is one or the other")
        load_texts(text_file=text_file)  # readable, with text
        return Source(f"file:{Path(text_file).name}", text_file=Path(text_file))
    spec = DEFAULT_SOURCE if spec is None else spec
    match = _SPEC.fullmatch(spec.strip())
    if match is None:
        raise PaintersError(
            f"bad --calibration '{spec}': give TASK:N (the split's last N documents) or TASK:A-B (documents A to B), "
            f"e.g. {DEFAULT_SOURCE}"
        )
    task = get_task(match["task"])
    if task.kind == "classification":
        raise PaintersError(f"--calibration {spec}: {task.name} is a GLUE task; calibrate a decoder on a decoder task")
    size = len(load_docs(task.name, data_dir))
    if match["count"] is not None:
        count = int(match["count"])
        if not 1 <= count <= size:
            raise PaintersError(f"--calibration {spec}: {task.name} has {size} documents; give N from 1 to {size}")
        first, last = size - count, size - 1
    else:
        first, last = int(match["first"]), int(match["last"])
        if not first <= last < size:
            raise PaintersError(
                f"--calibration {spec}: {task.name} has documents 0-{size - 1}; give A <= B within them"
            )
    return Source(spec.strip(), task.name, first, last)


def check_disjoint(source: Source, eval_tasks: list[str], limit: int | None) -> None:
    """Refuse calibration documents that a held-out evaluation (the first `limit` documents) also scores."""
    if source.task is None or source.task not in eval_tasks:
        return
    if limit is None or limit > source.first:
        scored = "every document" if limit is None else f"documents 0-{limit - 1}"
        raise PaintersError(
            f"--calibration {source.name} (documents {source.first}-{source.last}) overlaps the held-out "
            f"evaluation of {source.task} ({scored}): give --limit {source.first} or less, or calibrate elsewhere"
        )


@dataclass(frozen=True)
class Batch:
    """Right-padded token rows and their mask; position t of a row predicts its token t + 1."""

    ids: torch.Tensor
    mask: torch.Tensor

    @property
    def tokens(self) -> int:
        """Tokens scored: every real token after a row's first."""
        return int(self.mask[:, 1:].sum())


@dataclass(frozen=True)
class Calibration:
    """A source's batches and the fingerprint that keys their stored scores."""

    source: Source
    batches: tuple[Batch, ...]
    key: str

    @property
    def tokens(self) -> int:
        return sum(batch.tokens for batch in self.batches)


def calibration(source: Source, tokenizer, max_length: int, max_tokens: int, data_dir=None) -> Calibration:
    """The source's documents as batches of at most `max_tokens` tokens (padding included)."""
    rows = [encode(tokenizer, text)[:max_length] for text in source.texts(data_dir)]
    rows = sorted((row for row in rows if len(row) > 1), key=len, reverse=True)
    if not rows:
        raise PaintersError(f"calibration {source.name} has no document of two tokens or more: nothing to score")
    batches, start = [], 0
    while start < len(rows):
        count = max(1, min(len(rows) - start, max_tokens // len(rows[start])))
        batches.append(_batch(rows[start : start + count]))
        start += count
    key = data_fingerprint({"rows": rows, "max_tokens": max_tokens})
    return Calibration(source, tuple(batches), f"{source.name} {key[:16]}")


def _batch(rows: list[list[int]]) -> Batch:
    width = len(rows[0])
    ids = torch.tensor([row + [0] * (width - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    return Batch(ids, mask)
