"""Units of a sweep's work, and the worker that runs them on a loaded model.

A unit is one part of one task (`painters.tasks.evaluation.part_items`: batches of its pairs, documents to
generate from, a GLUE classification) at some of that part's indices, under a group of plans that share
prefixes. Indices are whole batches of the task's own length-sorted batching, so a unit's numbers are
what the whole task gives them, whichever worker runs it and however the indices are split.

A `Worker` holds the model. A sweep uses one in its own process; on Ray each actor holds one
(`painters.study.cluster`). Everything a worker returns is plain data, so it crosses processes as it is.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from transformers import PreTrainedModel

from painters.core.adapters import full_attention_layers
from painters.core.plan import Plan
from painters.models.devices import Meter, input_device, tokens_per_pass
from painters.study.fingerprints import model_fingerprint
from painters.tasks.documents import GlueOptions, TaskData
from painters.tasks.evaluation import part_items, run_part, task_batching
from painters.tasks.scoring import Batching
from painters.tools.bench import SPEEDUP_SHAPE, speedups, weight_split


@dataclass(frozen=True)
class Settings:
    """How a worker runs units: contexts and tokens per forward pass (which fix the batching, and so the
    units' indices: a sweep resolves `max_tokens` once, for every worker), the memory plans' shared steps
    may keep, the GLUE protocol, and whether GSM8K generates through the model's own attention
    (`painters.tasks.generation.greedy_texts`)."""

    batch_size: int = 32
    max_tokens: int | None = None
    memo_bytes: int | None = None
    glue: GlueOptions | None = None
    exact_attention: bool = False


@dataclass(frozen=True)
class WorkUnit:
    """Indices of one part of a task's data (keyed by its fingerprint) to run under a group of plans."""

    data_key: str
    part: str
    indices: tuple[int, ...]
    plans: tuple[Plan, ...]


@dataclass(frozen=True)
class Done:
    """A unit's results: for each plan (its text), a JSON-ready value per index; and the seconds it took."""

    unit: WorkUnit
    found: dict[str, dict[int, object]]
    seconds: float

    @property
    def rate(self) -> float:
        """Seconds per index and plan."""
        return self.seconds / len(self.unit.indices) / len(self.unit.plans)


class Worker:
    """A loaded model that runs units. It keeps each task's batching, so a unit does not re-encode its task."""

    def __init__(self, model: PreTrainedModel, tokenizer) -> None:
        self.model, self.tokenizer = model, tokenizer
        self._batchings: dict[tuple, Batching | None] = {}

    def describe(self) -> dict[str, object]:
        """What a sweep needs to know of the model before any unit: type, layers, fingerprint, default
        tokens per pass, what computes its cells (library versions, dtype, device), and the facts a report
        shows (which layers attend to the whole context, the output layer's share of the work)."""
        import torch
        import transformers

        config = self.model.config
        return {
            "model_type": config.model_type,
            "num_layers": config.num_hidden_layers,
            "fingerprint": model_fingerprint(self.model),
            "max_tokens": tokens_per_pass(input_device(self.model)),
            "environment": {"torch": torch.__version__, "transformers": transformers.__version__,
                            "dtype": str(self.model.dtype), "device": str(input_device(self.model))},
            "facts": {"num_layers": config.num_hidden_layers, "weight_split": weight_split(self.model),
                      "full_attention_layers": full_attention_layers(config),
                      "sliding_window": getattr(config, "sliding_window", None)},
        }  # fmt: skip

    def speedups(self, plans: list[Plan], progress: bool = False) -> tuple[dict[str, float], str, str]:
        """Each plan's speed-up over the full model (all in the same rounds), the shape and the device."""
        meter = Meter(input_device(self.model))
        ratios = speedups(self.model, plans, meter, progress)
        return {str(plan): ratio for plan, ratio in ratios.items()}, json.dumps(asdict(SPEEDUP_SHAPE)), meter.describe()

    def items(self, data_key: str, data: TaskData, settings: Settings) -> dict[str, list[int]]:
        """The task's parts and the items of work at each of their indices (`part_items`)."""
        return part_items(data, self._batching(data_key, data, settings), settings.batch_size)

    def run(self, unit: WorkUnit, data: TaskData, settings: Settings) -> Done:
        """Run a unit: each plan's value at each of its indices."""
        start = time.perf_counter()
        batched = self._batching(unit.data_key, data, settings)
        found = run_part(
            self.model, self.tokenizer, data, batched, list(unit.plans), unit.part, unit.indices,
            settings.batch_size, settings.glue, settings.memo_bytes, exact_attention=settings.exact_attention,
        )  # fmt: skip
        values = {str(plan): {index: found[plan][index] for index in unit.indices} for plan in unit.plans}
        return Done(unit, values, time.perf_counter() - start)

    def _batching(self, data_key: str, data: TaskData, settings: Settings) -> Batching | None:
        key = (data_key, settings.batch_size, settings.max_tokens)
        if key not in self._batchings:
            self._batchings[key] = task_batching(
                self.model, self.tokenizer, data, settings.batch_size, settings.max_tokens
            )
        return self._batchings[key]
