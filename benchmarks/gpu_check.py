"""The GPU check: painters' exactness on CUDA in bfloat16, a two-GPU split, and speed per plan.

    python benchmarks/gpu_check.py --shape llama2-7b         # random weights of Llama-2-7B's shape: no download
    python benchmarks/gpu_check.py --model /path/to/model    # a real checkpoint (folder or hub id)
    python benchmarks/gpu_check.py --shape tiny --device cpu # a dry run of every check on a CPU
    bash scripts/gpu-check                                   # the recipe for a borrowed GPU machine (README)

One JSON line per check, and all of them in one file (--out, default gpu-check.json). Exactness checks: the
full plan is bitwise equal to the plain model; cached greedy generation agrees with recomputation under
every variant (their logits within a tolerance from the dtype, and a different token only at a near tie:
the two use different kernels); shared-prefix attention (GSM8K's) gives the model's own attention's
logits within the same tolerance; with two or more GPUs, the model split over two of them (accelerate) gives
the single GPU's logits under the full plan and a parallel plan whose block crosses the split. Speed, as
`painters bench` measures it, of the plain model, the full plan, skip, parallel and looped parallel (n=8,
less for small models): prefill tokens/s with its FLOP/s and model FLOPs utilisation against the GPU's peak
bfloat16 FLOP/s, cached decode ms/token at batch 1 and --batch, and peak memory. With --tests, the fast
tests too. Exit code 0 only when every exactness check (and test) holds. A few minutes on one H200.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, LlamaConfig

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runs from a checkout, painters not installed
from painters import Plan, apply_plan, load_model  # noqa: E402
from painters.core.prefix_attention import SharedPrefix, prefix_attention  # noqa: E402
from painters.core.variants import VARIANTS, options_of  # noqa: E402
from painters.core.versions import cache_argument  # noqa: E402
from painters.models.devices import Meter  # noqa: E402
from painters.tasks.scoring import expanded, prefix_cache  # noqa: E402
from painters.tools.bench import Shape, bench_runs  # noqa: E402

SHAPES = {
    "llama2-7b": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096),
    "smollm2-135m": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                         tie_word_embeddings=True),
    "tiny": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=12,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024),
}  # fmt: skip
TOLERANCE_EPS = 8  # cached and recomputed logits may differ by this many of the dtype's eps, relative to the largest
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "H800": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


RECORDS: list[dict] = []  # every line printed so far: what --out holds at the end


def report(check: str, **fields) -> dict:
    line = {"check": check, **fields}
    print(json.dumps(line), flush=True)
    RECORDS.append(line)
    return line


def build(args: argparse.Namespace) -> torch.nn.Module:
    """The model in bfloat16 on the device: a real checkpoint, or random weights of a named shape."""
    if args.model:
        return load_model(args.model, dtype="bfloat16", device=args.device)[0]
    torch.manual_seed(0)
    config = LlamaConfig(**SHAPES[args.shape])
    with torch.device(args.device):
        return AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).eval()


def variant(name: str, layers: int, n: int) -> Plan:
    options = {"n": n, "seed": 0, "loops": 2, "layer": layers // 2}
    return Plan.variant(name, num_layers=layers, **{k: v for k, v in options.items() if k in options_of(name)})


@torch.no_grad()
def logits(model, ids: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids).logits


@torch.no_grad()
def greedy(model, ids: torch.Tensor, use_cache: bool, tokens: int = 8) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The new tokens of greedy decoding, and the logits each step chose from."""
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                         min_new_tokens=tokens, do_sample=False, use_cache=use_cache, pad_token_id=0,
                         output_logits=True, return_dict_in_generate=True)  # fmt: skip
    return out.sequences[:, ids.shape[1] :], out.logits


def check_full_plan(model, ids: torch.Tensor) -> bool:
    plain = logits(model, ids)
    with apply_plan(model, None):
        planned = logits(model, ids)
    equal = torch.equal(plain, planned)
    report("full_plan_bitwise", ok=equal, max_abs_diff=(plain - planned).abs().max().item())
    return equal


def check_generation(model, ids: torch.Tensor, layers: int, n: int) -> bool:
    """Cached greedy decoding against recomputation under every variant, with a tolerance from the dtype.

    The two use different kernels (one new token against a cache, or the whole sequence again), so in
    bfloat16 their logits differ by rounding, and with random weights the two best tokens are often nearly
    tied. A step fails only when its logits differ by more than the tolerance, or when the chosen tokens
    differ although the recomputed best token leads by more than it; decoding stops comparing at the first
    token that differs, since the two sequences no longer share a prefix after it.
    """
    ok = True
    for name in VARIANTS:
        plan = variant(name, layers, n)
        with apply_plan(model, plan):
            cached, recomputed = greedy(model, ids, True), greedy(model, ids, False)
        verdict = compare_decoding(cached, recomputed, model.dtype)
        ok &= verdict["ok"]
        report("cached_generation", variant=name, plan=str(plan), **verdict)
    return ok


@torch.no_grad()
def check_shared_prefix(model, layers: int, n: int) -> bool:
    """8 rows of 24 tokens after one 512-token prefix, under the full plan and skip: the logits through
    shared-prefix attention (the prefix's cache once) against the model's own attention over a copy of the
    prefix's cache per row, within the tolerance relative to the largest logit."""
    device, ok = model.device, True
    prefix = torch.randint(3, model.config.vocab_size, (512,)).tolist()
    rows = torch.randint(3, model.config.vocab_size, (8, 24), device=device)
    positions = 512 + torch.arange(24, device=device).expand_as(rows)
    tolerance = TOLERANCE_EPS * torch.finfo(model.dtype).eps
    for plan in (None, variant("skip", layers, n)):
        with apply_plan(model, plan) as handle:
            kept = prefix_cache(model, prefix)
            own = model(input_ids=rows, position_ids=positions, **cache_argument(expanded(kept, 8))).logits
            with prefix_attention(model):
                shared = model(input_ids=rows, position_ids=positions, shared_prefix=SharedPrefix(kept)).logits
        diff = ((own - shared).abs().max() / own.abs().max()).item()
        same = torch.equal(own.argmax(-1), shared.argmax(-1))
        report("shared_prefix_attention", plan=str(handle.plan), ok=diff <= tolerance, relative_diff=diff, same=same)
        ok &= diff <= tolerance
    return ok


def compare_decoding(cached, recomputed, dtype: torch.dtype) -> dict:
    """The verdict on two greedy decodings of the same prompts ((tokens, per-step logits) each) by a model
    computing in `dtype` (generate hands back its logits in float32, whatever the model's dtype)."""
    (cached_tokens, cached_logits), (tokens, logits) = cached, recomputed
    tolerance = TOLERANCE_EPS * torch.finfo(dtype).eps * max(step.abs().max().item() for step in logits)
    worst, flips, ok = 0.0, 0, True
    for row in range(tokens.shape[0]):
        for step in range(tokens.shape[1]):
            ours, theirs = cached_logits[step][row].float(), logits[step][row].float()
            worst = max(worst, (ours - theirs).abs().max().item())
            if cached_tokens[row, step] != tokens[row, step]:
                top = theirs.topk(2).values
                flips += 1
                ok &= (top[0] - top[1]).item() <= tolerance  # a near tie: either token is right to rounding
                break
    ok &= worst <= tolerance
    return {
        "ok": ok,
        "max_abs_logit_diff": worst,
        "tolerance": tolerance,
        "near_tie_flips": flips,
        "cached": cached_tokens[0].tolist(),
        "recomputed": tokens[0].tolist(),
    }


def check_split(args, model, ids: torch.Tensor, layers: int, n: int) -> bool:
    """The model over two GPUs, split inside the parallel block, against the same weights on one."""
    if args.device == "cpu" or torch.cuda.device_count() < 2:
        report("two_gpu_split", skipped=f"{torch.cuda.device_count()} CUDA device(s): needs 2")
        return True
    from accelerate import dispatch_model

    half = layers // 2
    device_map = {"model.embed_tokens": 0, "model.rotary_emb": 0, "model.norm": 1, "lm_head": 1}
    device_map.update({f"model.layers.{i}": 0 if i < half else 1 for i in range(layers)})
    plans = [None, variant("parallel", layers, n)]
    expected = []
    for plan in plans:
        with apply_plan(model, plan):
            expected.append(logits(model, ids))
    split = dispatch_model(model, device_map=device_map)
    ok = True
    for plan, single in zip(plans, expected, strict=True):
        with apply_plan(split, plan) as handle:
            got = logits(split, ids).to(single.device)
        equal = torch.equal(got, single)
        ok &= equal
        report("two_gpu_split", plan=str(handle.plan), ok=equal, max_abs_diff=(got - single).abs().max().item())
    return ok


def speed(args, model, layers: int, n: int) -> None:
    """`painters bench` per plan: prefill tokens/s, cached decode ms/token (batch 1 and --batch) and peak
    memory, each plan in the same rounds; with the prefill's FLOP/s and its utilisation of the GPU's peak."""
    plans = {"plain": None, "full": Plan.full(layers), f"skip:n={n}": variant("skip", layers, n),
             f"parallel:n={n}": variant("parallel", layers, n),
             f"looped_parallel:n={n},loops=2": variant("looped_parallel", layers, n)}  # fmt: skip
    shape = Shape(args.batch, args.tokens, args.new_tokens)
    rows = bench_runs([(label, model, plan) for label, plan in plans.items()], shape, args.repeats, Meter(args.device))
    peak = peak_flops(args)
    for row in rows:
        flops = forward_flops(model, row["layer_calls"], args.tokens) / args.tokens * row["prefill_tokens_per_s"]
        report("speed", plan=row["plan"], layer_calls=row["layer_calls"],
               prefill_tokens_per_s=round(row["prefill_tokens_per_s"]),
               prefill_ratio_to_plain=round(row["prefill_tokens_per_s_ratio"], 3),
               prefill_tflops=round(flops / 1e12, 2), mfu=None if peak is None else round(flops / peak, 3),
               decode_ms_batch_1=round(row["decode_ms_batch_1"], 3),
               decode_ms_batch_b=round(row["decode_ms_batch_b"], 3),
               decode_tokens_per_s_batch_b=round(1000 * args.batch / row["decode_ms_batch_b"]),
               decode_ratio_to_plain=round(row["decode_ms_batch_b_ratio"], 3), peak_mib=round(row["peak_mib"]),
               batch=args.batch, tokens=args.tokens, new_tokens=args.new_tokens)  # fmt: skip


def forward_flops(model, layer_calls: int, tokens: int) -> float:
    """FLOPs of one sequence's forward pass: 2 per weight per token in the layer calls and the head, plus
    causal attention's scores and weighted sums (2 * 2 * tokens^2 / 2 * hidden per layer call)."""
    config = model.config
    per_layer = sum(p.numel() for p in model.model.layers[0].parameters())
    head = config.vocab_size * config.hidden_size
    return 2 * tokens * (per_layer * layer_calls + head) + 2 * tokens * tokens * config.hidden_size * layer_calls


def peak_flops(args) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops * 1e12
    if args.device == "cpu":
        return None
    name = torch.cuda.get_device_name(torch.device(args.device))
    return next((tflops * 1e12 for key, tflops in PEAK_BF16_TFLOPS.items() if key in name), None)


def fast_tests(limit_s: int) -> bool:
    """The test suite's fast tests, in a fresh process on this machine's stack (they run on its CPU)."""
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfEs", "-m", "not slow", "-p", "no:cacheprovider"],
                              cwd=ROOT, capture_output=True, text=True, timeout=limit_s)  # fmt: skip
    except subprocess.TimeoutExpired:
        report("fast_tests", ok=False, summary=f"not done within {limit_s} s")
        return False
    lines = done.stdout.strip().splitlines()
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    skipped = [line for line in lines if line.startswith("SKIPPED")]
    report("fast_tests", ok=done.returncode == 0, summary=lines[-1] if lines else done.stderr[-500:],
           failed=failed[:50], skipped=skipped, seconds=round(time.perf_counter() - start, 1))  # fmt: skip
    return done.returncode == 0


def versions() -> dict:
    """The stack this ran on."""
    import accelerate
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "transformers": transformers.__version__, "accelerate": accelerate.__version__}  # fmt: skip


def run_checks(args) -> bool:
    """Every check in turn; the exactness checks decide the verdict, the speeds are measured alongside."""
    where = torch.cuda.get_device_name(torch.device(args.device)) if args.device != "cpu" else "cpu"
    report("device", device=args.device, name=where, cuda_devices=torch.cuda.device_count(), **versions())
    model = build(args)
    layers = model.config.num_hidden_layers
    n = min(8, layers - 4)
    torch.manual_seed(1)
    ids = torch.randint(3, model.config.vocab_size, (2, 16), device=args.device)
    ok = check_full_plan(model, ids)
    ok &= check_generation(model, ids, layers, n)
    ok &= check_shared_prefix(model, layers, n)
    speed(args, model, layers, n)
    ok &= check_split(args, model, ids, layers, n)
    del model
    if args.tests:
        ok &= fast_tests(args.tests_limit)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=list(SHAPES), default="llama2-7b")
    parser.add_argument("--model", help="A real model (folder or hub id) instead of random weights of --shape.")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a dry run.")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=1024, help="Prompt tokens per sequence for the speed rows.")
    parser.add_argument("--new-tokens", type=int, default=32, help="Tokens decoded through the KV cache per row.")
    parser.add_argument("--repeats", type=int, default=5, help="Measured rounds of the speed rows.")
    parser.add_argument("--peak-tflops", type=float, help="The device's peak bf16 TFLOP/s (default: by its name).")
    parser.add_argument("--tests", action="store_true", help="Also run the fast tests on this machine's stack.")
    parser.add_argument("--tests-limit", type=int, default=300, help="Seconds the fast tests may take.")
    parser.add_argument("--out", type=Path, default=Path("gpu-check.json"), help="The JSON file of every record.")
    args = parser.parse_args()
    if args.device != "cpu" and not torch.cuda.is_available():
        report("cuda", skipped="no CUDA device: nothing to check (use --device cpu for a dry run)")
        return 0
    ok = False
    try:
        ok = run_checks(args)
    finally:  # whatever ran is kept, a crash included
        report("summary", ok=ok)
        args.out.write_text(json.dumps({"ok": ok, "records": RECORDS}, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
