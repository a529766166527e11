"""The numbers of the locked stack, recorded once: any other stack (the floor versions of
requirements-floor.txt, a user's GPU environment) must give them too, per document.

Every prediction and every count-based metric (accuracy) must be equal; log-likelihoods and the metrics
made from them equal to float32 rounding (1e-6 relative, 1e-5 absolute; 1e-5 relative for the metrics, whose
bootstrapped perplexity stderr amplifies a change in the last bit). On the floor stack (torch 2.11,
transformers 5.17) ARC-Easy and GSM8K are bitwise equal and LAMBADA differs in 5 of 24 documents by at
most 4e-6: transformers' own arithmetic moved between 5.17 and 5.24.

CI runs this in both environments; after a deliberate change of numbers, re-record with
`.venv/bin/python tests/test_recorded_numbers.py` on the locked stack and say why in the commit.
"""

import json
import math
import sys
from pathlib import Path

import pytest

RECORD = Path(__file__).parent / "data" / "recorded_numbers.json"
PLANS = ["0-29", "0-11,18-29", "0-11,17-12,18-29", "0-11,[12-17],18-29"]  # full, skip, reverse, parallel
TASKS = ["arc_easy", "lambada_openai", "gsm8k"]
LIMIT = 6


def numbers(cache_dir: Path | None = None) -> dict:
    """Per plan and task: each document's log-likelihoods (GSM8K: its reference solution's), and the metrics."""
    from painters import evaluate, load_model

    model, tokenizer = load_model("smollm2-135m", dtype="float32", device="cpu", cache_dir=cache_dir)
    out = {}
    for plan in PLANS:
        result = evaluate(model, tokenizer, plan, TASKS, limit=LIMIT, progress=False, generate=False)
        out[plan] = {
            task: {"lls": [doc["lls"] for doc in result["samples"][task]], "results": result["results"][task]}
            for task in TASKS
        }  # fmt: skip
    return json.loads(json.dumps(out))  # as the record holds them: NaN and floats through JSON


@pytest.mark.slow
def test_this_stack_gives_the_recorded_numbers(painters_cache):
    import torch
    import transformers

    recorded = json.loads(RECORD.read_text())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the thread count changes float32 rounding on CPUs; the record was made at 1 thread
    try:
        got = numbers(painters_cache)
    finally:
        torch.set_num_threads(threads)
    stack = f"torch {torch.__version__}, transformers {transformers.__version__}"
    for plan in PLANS:
        for task in TASKS:
            ours, theirs = got[plan][task], recorded["numbers"][plan][task]
            where = (stack, recorded["stack"], plan, task)
            for mine, reference in zip(ours["lls"], theirs["lls"], strict=True):
                assert all(map(close, mine, reference)), (*where, mine, reference)
                assert mine.index(max(mine)) == reference.index(max(reference)), where  # the same prediction
            assert ours["results"].keys() == theirs["results"].keys(), where
            for metric, value in ours["results"].items():
                exact = metric.startswith(("acc", "exact_match"))
                assert value == theirs["results"][metric] if exact else close(value, theirs["results"][metric], 1e-5), (
                    *where,
                    metric,
                    value,
                    theirs["results"][metric],
                )


def close(ours: float, theirs: float, rel_tol: float = 1e-6) -> bool:
    """Equal to float32 rounding; NaN (an undefined standard error) only where the record has NaN too."""
    return (math.isnan(ours) and math.isnan(theirs)) or math.isclose(ours, theirs, rel_tol=rel_tol, abs_tol=1e-5)


if __name__ == "__main__":
    import torch
    import transformers

    torch.set_num_threads(1)
    stack = f"torch {torch.__version__}, transformers {transformers.__version__}"
    RECORD.parent.mkdir(exist_ok=True)
    RECORD.write_text(json.dumps({"stack": stack, "numbers": numbers()}, indent=1) + "\n")
    print(f"recorded {RECORD} on {stack}", file=sys.stderr)
