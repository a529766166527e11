"""What a plan buys in speed and memory: prefill throughput, cached decode latency and peak memory, per plan.

Plans are measured round by round, each round running every plan once (after one warm-up round that is
not counted), so a burst of machine noise hits all plans alike; each figure is the median over rounds,
with its spread, and a ratio to the full model measured in the same rounds. Inputs are random token ids
of a fixed shape: speed does not depend on the text, and the same ids feed every plan.

- prefill: one forward over `batch_size` prompts of `prompt_tokens` tokens, no cache (tokens per second);
- decode: after a cached prefill, `new_tokens` single-token steps through the KV cache, at batch 1 and at
  `batch_size` (milliseconds per generated token);
- peak memory over the plan's measurements (see `painters.models.devices.Meter`).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from painters.core.adapters import adapter_for, context_length
from painters.core.errors import PaintersError
from painters.core.execution import apply_plan, resolve_plan
from painters.core.plan import Plan
from painters.core.versions import cache_argument, output_cache
from painters.models.devices import Meter, input_device

FIGURES = {  # figure: (column title, its ratio to the full model: plan / full, or full / plan for a latency)
    "prefill_tokens_per_s": ("prefill tok/s", "plan/full"),
    "decode_ms_batch_1": ("decode ms/tok b=1", "full/plan"),
    "decode_ms_batch_b": ("decode ms/tok b=B", "full/plan"),
    "peak_mib": ("peak MiB", "plan/full"),
}


@dataclass(frozen=True)
class Shape:
    """The inputs every plan runs on."""

    batch_size: int = 8
    prompt_tokens: int = 128
    new_tokens: int = 32

    def check(self, rounds: int = 1) -> Shape:
        for name, value, least in (("--batch-size", self.batch_size, 1), ("--prompt-tokens", self.prompt_tokens, 1),
                                   ("--new-tokens", self.new_tokens, 0), ("--rounds", rounds, 1)):  # fmt: skip
            if value < least:
                raise PaintersError(f"{name} {value} is out of range: give a whole number >= {least}")
        return self

    def fit(self, context: int) -> Shape:
        """This shape if a prompt and its new tokens fit a model of `context` positions."""
        if self.prompt_tokens + self.new_tokens > context:
            raise PaintersError(
                f"--prompt-tokens {self.prompt_tokens} plus --new-tokens {self.new_tokens} exceed the model's "
                f"{context} positions: give fewer tokens"
            )
        return self


SPEEDUP_SHAPE = Shape(batch_size=1, prompt_tokens=64, new_tokens=0)  # what a sweep measures each plan at
SPEEDUP_ROUNDS = 3


def bench(model: PreTrainedModel, plans: list[Plan | str], shape: Shape = Shape(), rounds: int = 5,
          meter: Meter | None = None, progress: bool = False) -> list[dict]:  # fmt: skip
    """One row per plan (the full model first): each figure's median, spread and ratio to the full model."""
    full = Plan.full(len(adapter_for(model.config.model_type).layer_list(model)))
    chosen = list(dict.fromkeys([full, *(resolve_plan(model, plan) for plan in plans)]))
    return bench_runs([(str(plan), model, plan) for plan in chosen], shape, rounds, meter, progress)


def bench_runs(runs: list[tuple[str, PreTrainedModel, Plan | None]], shape: Shape = Shape(), rounds: int = 5,
               meter: Meter | None = None, progress: bool = False) -> list[dict]:  # fmt: skip
    """`bench` over (name, model, plan) runs, which may be different models; the first run is the reference.

    A run whose plan is None runs the model as it is, without painters (an exported checkpoint, say).
    """
    shape.check(rounds)
    meter = meter or Meter(input_device(runs[0][1]))
    inputs = _inputs(runs[0][1], shape)
    samples: list[dict[str, list[float]]] = [defaultdict(list) for _ in runs]
    bar = tqdm(total=(rounds + 1) * len(runs), desc="bench", unit="plan", disable=not progress)
    for round_ in range(rounds + 1):  # round 0 warms up: allocator, kernels, caches
        for (_, model, plan), sample in zip(runs, samples, strict=True):
            with apply_plan(model, plan) if plan is not None else nullcontext(), torch.no_grad():
                figures = _measure(model, inputs, shape, meter)
            for figure, value in figures.items():
                if round_:
                    sample[figure].append(value)
            bar.update()
    bar.close()
    calls = [len(plan.layers()) if plan else len(adapter_for(m.config.model_type).layer_list(m)) for _, m, plan in runs]
    return [_row(run[0], count, sample, samples[0]) for run, count, sample in zip(runs, calls, samples, strict=True)]


def speedups(model: PreTrainedModel, plans: list[Plan], meter: Meter | None = None,
             progress: bool = False) -> dict[str, float]:  # fmt: skip
    """Each plan's prefill speed-up over the full model at a small fixed shape, all plans in the same rounds.

    What a sweep records: cheap (one full-model run per round, whatever the number of plans), and the
    interleaving keeps the ratios fair.
    """
    rows = bench(model, plans, SPEEDUP_SHAPE, SPEEDUP_ROUNDS, meter, progress)
    return {row["plan"]: row["prefill_tokens_per_s_ratio"] for row in rows}


def weight_split(model: PreTrainedModel) -> dict[str, float]:
    """The share of a token's multiply-adds with weights (attention's own aside) in the layers and in the
    output layer: one multiply-add per weight per token, the embedding lookup none. Skipping k of L layers
    saves at most k/L of the layers' share, so on a model whose output layer is large (a 262,144-word
    vocabulary on a 270M model) skipping buys little speed."""
    layers = sum(
        p.numel() for layer in adapter_for(model.config.model_type).layer_list(model) for p in layer.parameters()
    )
    output = model.get_output_embeddings()
    head = output.weight.numel() if output is not None else 0
    return {"layers": layers / (layers + head), "output_layer": head / (layers + head)}


def format_split(split: dict[str, float]) -> str:
    return (f"per token, the layers do {split['layers']:.0%} of the multiply-adds with weights and the output layer "
            f"{split['output_layer']:.0%}: skipping k of L layers saves at most k/L of the layers' share")  # fmt: skip


def format_table(rows: list[dict], shape: Shape, device: str) -> str:
    """The rows as a text table: each figure with its ratio to the full model and its spread over rounds."""
    shown = [f for f in FIGURES if any(row[f] == row[f] for row in rows)]  # drop figures never measured (NaN)
    header = ["plan", "calls", *(FIGURES[f][0].replace("b=B", f"b={shape.batch_size}") for f in shown)]
    lines = [header]
    for row in rows:
        cells = [row["plan"], str(row["layer_calls"])]
        for figure in shown:
            value, ratio, spread = row[figure], row[f"{figure}_ratio"], row[f"{figure}_spread"]
            cells.append("-" if value != value else f"{value:,.1f} x{ratio:.2f} ±{spread:.0%}")
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    note = (
        f"{device}; batch {shape.batch_size} x {shape.prompt_tokens} prompt tokens, {shape.new_tokens} new tokens; "
        "median over rounds; x: ratio to the full model (speeds: >1 is faster; memory: plan/full); "
        "±: spread over rounds, (max - min) / median"
    )
    return "\n".join([*text, note])


def summary_json(rows: list[dict], model: str, device: str, shape: Shape, rounds: int) -> str:
    """The rows and how they were measured, as strict JSON (a figure not measured is null)."""
    clean = [{key: None if isinstance(v, float) and math.isnan(v) else v for key, v in row.items()} for row in rows]
    summary = {"model": model, "device": device, "shape": asdict(shape), "rounds": rounds, "rows": clean}
    return json.dumps(summary, indent=1, allow_nan=False) + "\n"


def _inputs(model: PreTrainedModel, shape: Shape) -> dict[str, torch.Tensor]:
    shape.fit(context_length(model.config))
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    prompt = torch.randint(0, vocab, (shape.batch_size, shape.prompt_tokens), generator=generator)
    steps = torch.randint(0, vocab, (shape.batch_size, shape.new_tokens), generator=generator)
    device = input_device(model)
    return {"prompt": prompt.to(device), "steps": steps.to(device)}


def _measure(model: PreTrainedModel, inputs: dict[str, torch.Tensor], shape: Shape, meter: Meter) -> dict:
    encoder = adapter_for(model.config.model_type).encoder
    prompt = inputs["prompt"]
    meter.reset_peak()
    cacheless = {} if encoder else {"use_cache": False}
    seconds = meter.seconds(lambda: model(input_ids=prompt, **cacheless))
    figures = {"prefill_tokens_per_s": prompt.numel() / seconds}
    for figure, batch in (("decode_ms_batch_1", 1), ("decode_ms_batch_b", shape.batch_size)):
        decodes = not encoder and shape.new_tokens > 0
        figures[figure] = _decode_ms(model, prompt[:batch], inputs["steps"][:batch], meter) if decodes else float("nan")
    figures["peak_mib"] = meter.peak_mib()
    return figures


def _decode_ms(model: PreTrainedModel, prompt: torch.Tensor, steps: torch.Tensor, meter: Meter) -> float:
    """Milliseconds per generated token: single-token steps through the KV cache after a (untimed) prefill."""
    cache = output_cache(model(input_ids=prompt, use_cache=True))

    def decode() -> None:
        for step in range(steps.shape[1]):
            model(input_ids=steps[:, step : step + 1], **cache_argument(cache), use_cache=True)

    return 1000 * meter.seconds(decode) / steps.shape[1]


def _row(name: str, layer_calls: int, samples: dict[str, list[float]], full: dict[str, list[float]]) -> dict:
    row: dict[str, object] = {"plan": name, "layer_calls": layer_calls}
    for figure, (_, ratio) in FIGURES.items():
        value, reference = statistics.median(samples[figure]), statistics.median(full[figure])
        row[figure] = value
        row[f"{figure}_ratio"] = value / reference if ratio == "plan/full" else reference / value
        row[f"{figure}_spread"] = (max(samples[figure]) - min(samples[figure])) / value if value else float("nan")
    return row
