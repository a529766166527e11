"""One cached decoding step of the embedded model, by batch rows, with and without room kept in the KV cache.

The numbers behind `docs/benchmarks.md`'s GSM8K section: on a CPU a step's time grows with rows times
cached tokens, and a cache that concatenates copies itself at every step.

    .venv/bin/python benchmarks/decode_step.py [--cached 1000] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from painters import load_model
from painters.core.versions import cache_argument, output_cache
from painters.tasks.generation import _RoomyLayer


def step_ms(model, rows: int, cached: int, room: bool) -> float:
    """Median of 5 single-token steps after a prefill of `cached` tokens (one warm-up step)."""
    ids = torch.randint(100, 1000, (rows, cached))
    with torch.no_grad():
        cache = output_cache(model(input_ids=ids, use_cache=True, logits_to_keep=1))
        if room:
            cache.layers = [_RoomyLayer(layer.keys, layer.values, 16) for layer in cache.layers]
        token, times = torch.randint(100, 1000, (rows, 1)), []
        for _ in range(6):
            start = time.perf_counter()
            model(input_ids=token, **cache_argument(cache), use_cache=True, logits_to_keep=1)
            times.append(time.perf_counter() - start)
    return 1000 * sorted(times[1:])[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cached", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model("smollm2-135m")
    print(f"rows  concatenating (ms)  with room (ms)   ({args.cached} cached tokens, {args.threads} threads)")
    for rows in (1, 8, 32):
        print(
            f"{rows:>4}  {step_ms(model, rows, args.cached, False):18.1f}  {step_ms(model, rows, args.cached, True):14.1f}"
        )


if __name__ == "__main__":
    main()
