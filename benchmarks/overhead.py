"""Cost of planned execution: the full plan against the unmodified model, and peak memory under plans.

Speed: forward passes (no KV cache) over a fixed random batch, plain and full-plan interleaved in one
process so both see the same machine load; the ratio of their tokens/s is the overhead (target >= 0.97).
Memory: each configuration runs in a fresh process that loads the model, resets the kernel's peak-RSS
mark (loading has a transient peak of its own), runs one forward and reports the peak RSS of that
forward: weights plus activations (target: every plan within 5% of the plain model). Linux only.

    .venv/bin/python benchmarks/overhead.py [--model smollm2-135m] [--batch 4] [--tokens 128] [--rounds 20]
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from painters import Plan, apply_plan, load_model

MEMORY_PLANS = ["plain", "full", "skip:n=6", "middle_repeat:n=6", "looped_parallel:n=6,loops=3", "0-29,0-29"]


def forward_seconds(model, ids: torch.Tensor) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        model(input_ids=ids, use_cache=False)
    return time.perf_counter() - start


def speed(model_name: str, batch: int, tokens: int, rounds: int) -> dict:
    model, _ = load_model(model_name)
    ids = torch.randint(100, model.config.vocab_size, (batch, tokens), generator=torch.Generator().manual_seed(0))
    full = Plan.full(model.config.num_hidden_layers)
    forward_seconds(model, ids)  # warm-up
    plain, planned = [], []
    for _ in range(rounds):
        plain.append(forward_seconds(model, ids))
        with apply_plan(model, full):
            planned.append(forward_seconds(model, ids))
    plain_tps, planned_tps = batch * tokens / statistics.median(plain), batch * tokens / statistics.median(planned)
    return {"plain_tokens_per_s": plain_tps, "planned_tokens_per_s": planned_tps, "ratio": planned_tps / plain_tps}


def peak_rss_mib(model_name: str, spec: str, batch: int, tokens: int) -> float:
    """Load, reset the peak mark, run one forward under `spec` (or none for 'plain'), report the peak RSS."""
    model, _ = load_model(model_name)
    ids = torch.randint(100, model.config.vocab_size, (batch, tokens), generator=torch.Generator().manual_seed(0))
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM, the peak resident set size
    if spec == "plain":
        forward_seconds(model, ids)
    else:
        with apply_plan(model, Plan.resolve(spec, model.config.num_hidden_layers)):
            forward_seconds(model, ids)
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 1024


def memory(model_name: str, batch: int, tokens: int) -> dict[str, float]:
    peaks = {}
    for spec in MEMORY_PLANS:
        call = f"peak_rss_mib({model_name!r}, {spec!r}, {batch}, {tokens})"
        code = f"from benchmarks.overhead import peak_rss_mib; print({call})"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        peaks[spec] = float(out.stdout.strip().splitlines()[-1])
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    result = speed(args.model, args.batch, args.tokens, args.rounds)
    print(f"plain   {result['plain_tokens_per_s']:10.1f} tokens/s")
    print(f"planned {result['planned_tokens_per_s']:10.1f} tokens/s  (full plan)")
    print(f"ratio   {result['ratio']:10.3f}  (target >= 0.97)")
    peaks = memory(args.model, args.batch, args.tokens)
    for spec, peak in peaks.items():
        print(f"peak RSS {spec:<30} {peak:8.1f} MiB  ({peak / peaks['plain']:.3f} of plain)")
    print(json.dumps({"speed": result, "peak_rss_mib": peaks}))


if __name__ == "__main__":
    main()
