"""GSM8K generation, painters against lm-eval-harness's `gsm8k_cot`: same documents, model and plan, in one run.

painters runs `evaluate(..., ["gsm8k"])` (its generations and, on top, the reference solution's
log-likelihood), through shared-prefix attention (its default) and with `exact_attention`; lm-eval runs
its own `gsm8k_cot` config on the same documents, at its default batch size (1) and at painters' batch
size. Each side's timed region loads the documents and runs the model (lm-eval's also wraps the model
in its HFLM; indexing its task catalogue is not timed). The script checks that every generation,
extracted answer and exact match is identical, then prints each side's documents per second and the
ratios (targets: painters >= 5x lm-eval at batch 1, >= 2.5x at the same batch).

    .venv/bin/python benchmarks/gsm8k_speed.py [--limit 16] [--batch-size 8] [--plan 0-29] [--threads 2]

On a GPU give `--dtype float32`: in bfloat16 lm-eval's own generations change with its batch size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import lm_eval_reference  # noqa: E402  (the test suite's offline lm-eval runner)
from lm_eval.tasks import TaskManager  # noqa: E402
from test_lm_eval_exactness import same_generations  # noqa: E402

from painters import evaluate, load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--plan", default=None, help="plan text (default: the full model)")
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model, dtype=args.dtype)

    seconds, samples = {}, {}
    for name, exact in (("painters", False), ("painters, exact", True)):
        start = time.perf_counter()
        ours = evaluate(
            model, tokenizer, args.plan, ["gsm8k"], limit=args.limit, batch_size=args.batch_size, progress=False,
            exact_attention=exact,
        )  # fmt: skip
        seconds[name], samples[name] = time.perf_counter() - start, ours["samples"]["gsm8k"]

    task_manager = TaskManager()  # indexing lm-eval's task catalogue is setup, not generation: not timed
    for batch_size in sorted({1, args.batch_size}):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            theirs = lm_eval_reference.run(
                model, tokenizer, ours["plan"], ["gsm8k"], Path(folder), args.limit, batch_size,
                task_manager=task_manager,
            )  # fmt: skip
            seconds[f"lm-eval, batch {batch_size}"] = time.perf_counter() - start
        for found in samples.values():
            same_generations(found, theirs["samples"]["gsm8k"])

    tokens = sum(len(tokenizer.encode(sample["generation"])) for sample in samples["painters"])
    setting = f"{args.model} ({model.dtype}, {model.device}), plan {ours['plan']}, {args.limit} gsm8k documents"
    print(f"{setting}, painters batch size {args.batch_size}, {args.threads} threads; {tokens} tokens kept")
    for name, value in seconds.items():
        ratio = value / seconds["painters"]
        print(f"{name:<18}{value:8.1f} s  {args.limit / value:7.3f} docs/s  painters is {ratio:5.2f}x")
    print("generations, answers and exact matches identical")


if __name__ == "__main__":
    main()
