"""Plain text to run a model on: a benchmark's documents, or a file with one document per line."""

from __future__ import annotations

from pathlib import Path

from painters.core.errors import PaintersError
from painters.tasks.catalog import document_text, get_task
from painters.tasks.data import load_docs


def load_texts(
    task: str | None = None, text_file: str | Path | None = None, limit: int | None = None, data_dir=None
) -> list[str]:
    """The first `limit` documents of `task` (context and gold answer) or of `text_file` (non-empty lines)."""
    if (task is None) == (text_file is None):
        raise PaintersError("give either a task or a text file as the text to read, not both or neither")
    if limit is not None and limit < 1:
        raise PaintersError(f"--limit {limit} is out of range: give a positive number of documents")
    if text_file is not None:
        return _file_texts(Path(text_file))[:limit]
    chosen = get_task(task)
    return [document_text(chosen, row) for row in load_docs(chosen.name, data_dir)[:limit]]


def _file_texts(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise PaintersError(f"cannot read text file '{path}': {error}") from None
    texts = [line for line in lines if line.strip()]
    if not texts:
        raise PaintersError(f"text file '{path}' has no text: give one document per line")
    return texts
