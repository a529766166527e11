"""A greedy search round with shared steps against the same candidates scored alone, side by side.

The first round of `painters search --method greedy` on the embedded SmolLM2: the full model (the KL's
reference) and every plan that drops one layer, on the default calibration text's batches. Scored as the
search scores them (sorted, shared steps run once per batch through the prefix memo) and again with a
memo budget of 0 (each candidate computes all its layers), alternating round by round; both must give
the same numbers bit for bit. Reports the seconds and layer-call tokens of each, and their ratio. Target:
the shared round costs at most 0.6x of the unshared one.

    .venv/bin/python benchmarks/search_cost.py [--model smollm2-135m] [--calibration lambada_openai:64] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

from painters import Plan, load_model
from painters.models.devices import input_device, tokens_per_pass
from painters.plan_search.calibration import calibration, parse_source
from painters.plan_search.objective import batch_totals
from painters.plan_search.spaces import drops


def round_cost(model, batches, plans, memo_bytes):
    """Seconds and (computed, unshared) layer-call tokens of one round over every batch, and its numbers."""
    start, computed, unshared, numbers = time.perf_counter(), 0, 0, {}
    for index, batch in enumerate(batches):
        for plan, totals in batch_totals(model, batch, plans, memo_bytes).items():
            computed, unshared = computed + totals.computed, unshared + totals.unshared
            numbers[plan, index] = (totals.loglik, totals.kl)
    return time.perf_counter() - start, computed, unshared, numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--calibration", default="lambada_openai:64")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    model, tokenizer = load_model(args.model)
    cal = calibration(parse_source(args.calibration, None), tokenizer, 256, tokens_per_pass(input_device(model)))
    plans = drops(Plan.full(model.config.num_hidden_layers))
    seconds = {"shared": [], "alone": []}
    for _ in range(args.rounds):
        shared = round_cost(model, cal.batches, plans, None)
        alone = round_cost(model, cal.batches, plans, 0)
        assert shared[3] == alone[3], "sharing changed a number"
        seconds["shared"].append(shared[0])
        seconds["alone"].append(alone[0])
    s, a = statistics.median(seconds["shared"]), statistics.median(seconds["alone"])
    print(f"{len(plans)} candidates + the full model, {cal.tokens} calibration tokens in {len(cal.batches)} batches")
    print(f"layer-call tokens: shared {shared[1]:,}  alone {alone[1]:,}  ratio {shared[1] / alone[1]:.3f}")
    print(f"seconds (median of {args.rounds}): shared {s:.1f}  alone {a:.1f}  ratio {s / a:.3f}  (target <= 0.6)")
    print("numbers: identical (every candidate's log-likelihood and KL, bit for bit)")


if __name__ == "__main__":
    main()
