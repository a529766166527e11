"""painters' evaluator against lm-eval-harness: the same tasks, documents, model and batch size, in one run.

Both score the embedded model under the full plan; the script checks that every per-document
prediction is identical (and log-likelihoods agree within 1e-4), then reports each side's throughput
in documents per second and their ratio (target: painters >= 1.5x lm-eval).

    .venv/bin/python benchmarks/eval_speed.py [--tasks arc_easy,hellaswag,...] [--limit 50] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import lm_eval_reference  # noqa: E402  (the test suite's offline lm-eval runner)
from lm_eval.tasks import TaskManager  # noqa: E402

from painters import evaluate, load_model  # noqa: E402
from painters.tasks.catalog import TASKS  # noqa: E402

DEFAULT_TASKS = "arc_easy,arc_challenge,hellaswag,winogrande,piqa,boolq,lambada_openai"


def compare(ours: dict, theirs: dict, tasks: list[str]) -> float:
    """Largest log-likelihood difference; raises if any prediction differs (tests/test_lm_eval_exactness.py
    checks the log-likelihoods themselves)."""
    worst = 0.0
    for name in tasks:
        for mine, reference in zip(ours["samples"][name], theirs["samples"][name], strict=True):
            their_lls = [ll for ll, _ in reference["filtered_resps"]]
            worst = max(worst, *(abs(a - b) for a, b in zip(mine["lls"], their_lls, strict=True)))
            for metric in TASKS[name].metrics:
                if metric != "perplexity" and mine[metric] != reference[metric]:
                    raise SystemExit(f"prediction differs: {name} doc {reference['doc_id']} {metric}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", default=DEFAULT_TASKS)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    model, tokenizer = load_model(args.model)
    docs = args.limit * len(tasks)

    start = time.perf_counter()
    ours = evaluate(model, tokenizer, None, tasks, limit=args.limit, batch_size=args.batch_size, progress=False)
    painters_seconds = time.perf_counter() - start

    task_manager = TaskManager()  # indexing lm-eval's task catalogue is setup, not scoring: not timed
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        theirs = lm_eval_reference.run(
            model, tokenizer, ours["plan"], tasks, Path(folder), args.limit, args.batch_size, task_manager=task_manager
        )
        lm_eval_seconds = time.perf_counter() - start

    worst = compare(ours, theirs, tasks)
    print(f"tasks {args.tasks}, {args.limit} documents each, batch size {args.batch_size}")
    print(f"painters  {painters_seconds:8.1f} s  {docs / painters_seconds:7.2f} docs/s")
    print(f"lm-eval   {lm_eval_seconds:8.1f} s  {docs / lm_eval_seconds:7.2f} docs/s")
    print(f"speedup   {lm_eval_seconds / painters_seconds:8.2f}x  (target >= 1.5x)")
    print(f"predictions identical; largest log-likelihood difference {worst:.2e}")


if __name__ == "__main__":
    main()
