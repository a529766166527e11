"""Any lm-eval-harness task under any plan: the planned model handed to lm-eval unforked, as `HFLM(pretrained=model)`.

lm-eval is an optional dependency (`pip install 'painters[lm-eval]'`); its tasks load their data from
the hub, so this path is for machines that reach it (or tasks given as local configs).
"""

from __future__ import annotations

import os

from transformers import PreTrainedModel

from painters.core.errors import PaintersError
from painters.core.execution import apply_plan
from painters.core.plan import Plan


def evaluate_with_lm_eval(
    model: PreTrainedModel,
    tokenizer,
    plan: Plan | str,
    tasks: list[str | dict],
    limit: int | None = None,
    batch_size: int = 32,
    **options,
) -> dict:
    """lm-eval's scores of `model` under `plan`, in painters' result format (`acc,none` becomes `acc`).

    `options` go to `lm_eval.simple_evaluate` (e.g. `log_samples=True`, whose per-document records are
    returned under "samples", or a prepared `task_manager`).
    """
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        raise PaintersError("--harness lm-eval needs lm-eval-harness: pip install 'painters[lm-eval]'") from None
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with apply_plan(model, plan) as handle:
        harness = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
        out = lm_eval.simple_evaluate(model=harness, tasks=tasks, limit=limit, **options)
    results = {
        task: {key.removesuffix(",none"): value for key, value in metrics.items() if "," in key}
        for task, metrics in out["results"].items()
    }
    evaluation = {"model": model.config.name_or_path, "plan": str(handle.plan), "limit": limit, "results": results}
    if "samples" in out:
        evaluation["samples"] = {
            task: sorted(records, key=lambda r: r["doc_id"]) for task, records in out["samples"].items()
        }
    return evaluation
