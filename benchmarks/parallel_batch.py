"""Does a parallel block run faster as one batched call than as its members one after another?

A parallel block's members read the same input, so they can run as one call over stacked weights
(`torch.func.stack_module_state` + `vmap` of `functional_call`: each matrix product becomes one batched
product over the members). This measures a block of the model's middle layers both ways on the same
input, interleaved round by round (median of the rounds), and checks that the outputs agree.

    .venv/bin/python benchmarks/parallel_batch.py [--model smollm2-135m] [--n 6] [--batch 4] [--tokens 128]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics

import torch
from torch.func import functional_call, stack_module_state, vmap

from painters import load_model
from painters.core.adapters import adapter_for
from painters.core.variants import middle_band
from painters.models.devices import Meter


def layer_inputs(model, layer: torch.nn.Module, ids: torch.Tensor) -> tuple[tuple, dict]:
    """The arguments the model hands `layer` in a plain forward (no cache)."""
    seen = {}

    def grab(_, args, kwargs):
        seen["call"] = (args, kwargs)
        raise StopIteration  # nothing after this layer is needed

    handle = layer.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            model(input_ids=ids, use_cache=False)
    except StopIteration:
        pass
    finally:
        handle.remove()
    return seen["call"]


def one_by_one(members, hidden, kwargs) -> torch.Tensor:
    total = None
    for member in members:
        out = member(hidden, **kwargs)
        out = out[0] if isinstance(out, tuple) else out
        total = out if total is None else total + out
    return total / len(members)


def batched(members) -> callable:
    """A function of the block input running every member in one vmapped call over stacked weights."""
    params, buffers = stack_module_state(members)
    base = copy.deepcopy(members[0]).to("meta")

    def call(hidden, kwargs):
        def member(p, b):
            out = functional_call(base, (p, b), (hidden,), kwargs)
            return out[0] if isinstance(out, tuple) else out

        return vmap(member)(params, buffers).mean(0)

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--n", type=int, default=6)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    model, _ = load_model(args.model)
    layers = adapter_for(model.config.model_type).layer_list(model)
    a, b = middle_band(len(layers), args.n)
    members = [layers[i] for i in range(a, b)]
    ids = torch.randint(100, model.config.vocab_size, (args.batch, args.tokens), generator=torch.Generator().manual_seed(0))
    (hidden, *_), kwargs = layer_inputs(model, members[0], ids)
    meter, fused = Meter(model.device), batched(members)
    with torch.no_grad():
        expected, got = one_by_one(members, hidden, kwargs), fused(hidden, kwargs)
        times = {"one by one": [], "batched": []}
        for round_ in range(args.rounds + 1):  # round 0 warms up
            for name, call in (("one by one", lambda: one_by_one(members, hidden, kwargs)),
                               ("batched", lambda: fused(hidden, kwargs))):  # fmt: skip
                seconds = meter.seconds(call)
                if round_:
                    times[name].append(seconds)
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "block": f"[{a}-{b - 1}]", "device": meter.describe(), "batch": args.batch, "tokens": args.tokens,
        "ms": {name: 1000 * value for name, value in medians.items()},
        "batched_speedup": medians["one by one"] / medians["batched"],
        "max_abs_difference": (expected - got).abs().max().item(),
    }  # fmt: skip
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
