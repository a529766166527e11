"""One cached decoding step of the embedded model, by batch rows: a cache that concatenates, one with room
kept, and shared-prefix attention over the same tokens.

The numbers behind `docs/benchmarks.md`'s GSM8K section: with every row holding the whole context, a
step's time on a CPU grows with rows times cached tokens, and a cache that concatenates copies itself at
every step. With GSM8K's proportions (of 1,000 cached tokens, 730 are the 8-shot prompt every row shares)
shared-prefix attention reads those 730 once per step for all rows (`painters.core.prefix_attention`).

    .venv/bin/python benchmarks/decode_step.py [--cached 1000] [--shared 730] [--threads 2] [--dtype auto]

On a GPU it runs there (give `--dtype float32` to compare with this CPU's numbers).
"""

from __future__ import annotations

import argparse
import time

import torch

from painters import load_model
from painters.core.prefix_attention import SharedPrefix, prefix_attention
from painters.core.versions import cache_argument, output_cache
from painters.models.devices import input_device, synchronize
from painters.tasks.roomy_cache import RoomyLayer
from painters.tasks.scoring import prefix_cache


def step_ms(model, rows: int, cached: int, room: bool, shared: int = 0) -> float:
    """Median of 5 single-token steps after `cached` tokens per row (one warm-up step); with `shared`, the
    first `shared` of them are one prefix that the rows attend to through shared-prefix attention."""
    device = input_device(model)
    ids = torch.randint(100, 1000, (rows, cached - shared), device=device)
    with torch.no_grad():
        prefix = SharedPrefix(prefix_cache(model, torch.randint(100, 1000, (shared,)).tolist())) if shared else None
        cache, _ = forward(model, ids, None, prefix, logits_to_keep=1)
        if room:
            cache.layers = [RoomyLayer(layer.keys, layer.values, 16, rows) for layer in cache.layers]
        token, times = torch.randint(100, 1000, (rows, 1), device=device), []
        for step in range(6):
            positions = torch.full((rows, 1), cached + step, device=device)
            start = time.perf_counter()
            forward(model, token, cache, prefix, position_ids=positions, logits_to_keep=1)
            synchronize(device)
            times.append(time.perf_counter() - start)
    return 1000 * sorted(times[1:])[2]


def forward(model, ids, cache, prefix: SharedPrefix | None, **inputs):
    """A forward pass, through shared-prefix attention when there is a prefix; its cache and output."""
    if prefix is None:
        out = model(input_ids=ids, **cache_argument(cache), use_cache=True, **inputs)
    else:
        inputs.setdefault("position_ids", prefix.length + torch.arange(ids.shape[1], device=ids.device).expand_as(ids))
        with prefix_attention(model):
            out = model(input_ids=ids, **cache_argument(cache), use_cache=True, shared_prefix=prefix, **inputs)
    return output_cache(out), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cached", type=int, default=1000)
    parser.add_argument("--shared", type=int, default=730)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model("smollm2-135m", dtype=args.dtype)
    setting = f"{model.dtype}, {model.device}, {args.threads} threads"
    print(f"{args.cached} cached tokens per row ({args.shared} of them shared), {setting}; ms per step")
    print("rows  concatenating  with room  shared prefix (with room)")
    for rows in (1, 8, 32, 64):
        times = [step_ms(model, rows, args.cached, room) for room in (False, True)]
        times.append(step_ms(model, rows, args.cached, True, args.shared))
        print(f"{rows:>4}  {times[0]:13.1f}  {times[1]:9.1f}  {times[2]:13.1f}")


if __name__ == "__main__":
    main()
