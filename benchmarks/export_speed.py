"""Exported plans against planned execution: size on disk, and speed side by side in one run.

Each plan without parallel blocks is exported with `painters export` (and the full plan too, so that
sizes compare like with like); then every plan runs under planned execution on the original model and
every export runs as transformers loads it (no painters code), all interleaved round by round by
`painters.tools.bench.bench_runs`, ratios against the full model under planned execution. Peak memory is
left out: every model is resident in this one process (`painters bench` measures it per plan).

    .venv/bin/python benchmarks/export_speed.py --plans 'skip:n=6;skip:n=10;parallel:n=6' [--rounds 5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from transformers import AutoModelForCausalLM

from painters import load_model
from painters.core.errors import PaintersError
from painters.core.plan import Plan
from painters.models.devices import Meter
from painters.tools.bench import Shape, bench_runs, format_table
from painters.tools.export import check_exportable, export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--plans", default="skip:n=6;skip:n=10;parallel:n=6;looped_parallel:n=6")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    model, tokenizer = load_model(args.model)
    full = Plan.full(model.config.num_hidden_layers)
    plans = [full, *(Plan.resolve(spec, len(full.layers())) for spec in args.plans.split(";"))]
    runs, sizes = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for spec, plan in zip(["full", *args.plans.split(";")], plans, strict=True):
            runs.append((f"{spec} planned", model, plan))
            try:
                check_exportable(plan)
            except PaintersError:
                continue
            folder = export(model, tokenizer, plan, Path(scratch) / spec.replace(":", "_"))
            sizes[spec] = sum(path.stat().st_size for path in folder.iterdir() if path.suffix == ".safetensors")
            runs.append((f"{spec} exported", AutoModelForCausalLM.from_pretrained(folder).eval(), None))
        shape = Shape(args.batch_size, args.prompt_tokens, args.new_tokens)
        rows = bench_runs(runs, shape, args.rounds, progress=True)
    for row in rows:  # every model is resident in this one process: its peak says nothing about one run
        row["peak_mib"] = float("nan")
    print("| plan | weights on disk (MiB) | of full |\n| --- | ---: | ---: |")
    for spec, size in sizes.items():
        print(f"| {spec} | {size / 2**20:.1f} | {size / sizes['full']:.3f} |")
    print()
    print(format_table(rows, shape, Meter(model.device).describe()))


if __name__ == "__main__":
    main()
