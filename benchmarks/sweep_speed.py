"""A sweep with shared prefixes against plan-by-plan evaluation, on the default paper grid, in one run.

For each part of the default `painters paper` study (same plans, tasks and batch size; fewer documents
per task, so both sides finish in minutes), the script runs `painters.study.sweep.sweep` (plans sorted, shared
steps run once per batch) and then `painters.evaluate` on every plan alone, checks that every stored
number equals the plan-by-plan one exactly, and reports the speedup next to the bound the grid allows:
total layer calls / distinct layer calls (a step shared by plans of one sweep group counts once).
Target: speedup >= 90% of the bound.

    .venv/bin/python benchmarks/sweep_speed.py [--model smollm2-135m] [--limit 8] [--parts variants,looped]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from painters import evaluate, load_model
from painters.core.grammar import members
from painters.core.plan import Plan
from painters.core.prefix_memo import shared_steps, sharing_order
from painters.paper import study
from painters.study.grid import grid
from painters.study.results import results_frame
from painters.study.store import Store
from painters.study.sweep import GROUP, sweep


def layer_calls(plans: list[Plan]) -> tuple[int, int]:
    """(total, distinct) layer calls of one pass over `plans` as the sweep groups and orders them."""
    order = sharing_order(plans)
    total = sum(len(plan.layers()) for plan in order)
    distinct = 0
    for start in range(0, len(order), GROUP):
        group = order[start : start + GROUP]
        for previous, plan in zip([None, *group[:-1]], group, strict=True):
            skipped = shared_steps(plan, previous) if previous is not None else 0
            distinct += sum(len(members(unit)) for unit in plan.units[skipped:])
    return total, distinct


def check(frame, plan: Plan, direct: dict) -> None:
    for task, summary in direct["results"].items():
        rows = frame[(frame.plan == str(plan)) & (frame.task == task)].groupby("metric").value.first()
        for metric, value in rows.items():
            if not (value == summary[metric] or (value != value and summary[metric] != summary[metric])):
                raise SystemExit(f"numbers differ: {plan} {task} {metric}: sweep {value}, alone {summary[metric]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--parts", default="variants,looped,single layers")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    model, tokenizer = load_model(args.model)
    parts = [part for part in study(model.config.num_hidden_layers, False, args.limit).parts if part.name in args.parts]
    print("| part | plans | tasks x docs | layer calls | distinct | bound | shared s | alone s | speedup | of bound |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    sums = [0, 0, 0.0, 0.0]
    for part in parts:
        points = grid(model.config.num_hidden_layers, part.variants, part.ns, part.seeds, list(part.loops))
        plans = sharing_order([point.plan for point in points])
        total, distinct = layer_calls(plans)
        with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "results.db") as store:
            start = time.perf_counter()
            sweep(model, tokenizer, args.model, points, part.tasks, store, part.limit, args.batch_size, progress=False)
            shared = time.perf_counter() - start
            frame = results_frame(store)
        start = time.perf_counter()
        alone = {
            plan: evaluate(model, tokenizer, plan, part.tasks, part.limit, args.batch_size, progress=False)
            for plan in plans
        }
        separate = time.perf_counter() - start
        for plan, direct in alone.items():
            check(frame, plan, direct)
        bound, speedup = total / distinct, separate / shared
        sums = [sums[0] + total, sums[1] + distinct, sums[2] + shared, sums[3] + separate]
        print(
            f"| {part.name} | {len(plans)} | {len(part.tasks)} x {part.limit} | {total} | {distinct} | {bound:.3f} "
            f"| {shared:.1f} | {separate:.1f} | {speedup:.3f} | {speedup / bound:.0%} |"
        )
    bound, speedup = sums[0] / sums[1], sums[3] / sums[2]
    timing = f"{sums[2]:.1f} | {sums[3]:.1f} | {speedup:.3f} | {speedup / bound:.0%}"
    print(f"| all | | | {sums[0]} | {sums[1]} | {bound:.3f} | {timing} |")
    print("every stored number equals the plan-by-plan number exactly")


if __name__ == "__main__":
    main()
