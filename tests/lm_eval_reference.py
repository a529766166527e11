"""lm-eval-harness itself, run offline on the same documents painters scores: the reference for exactness.

Its own task configs (prompts, choices, metrics) are loaded from the installed lm-eval and pointed at
local JSONL copies of the documents, so both harnesses see identical data.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import lm_eval
from lm_eval.tasks._yaml_loader import load_yaml

from painters.tasks.data import load_docs
from painters.tasks.harness import evaluate_with_lm_eval

CONFIGS = {
    "arc_easy": "arc/arc_easy.yaml",
    "arc_challenge": "arc/arc_challenge.yaml",
    "hellaswag": "hellaswag/hellaswag.yaml",
    "winogrande": "winogrande/default.yaml",
    "piqa": "piqa/piqa.yaml",
    "boolq": "super_glue/boolq/default.yaml",
    "lambada_openai": "lambada/lambada_openai.yaml",
    "gsm8k": "gsm8k/gsm8k-cot.yaml",
}


# OLMES's requests as an lm-eval multiple-choice task: the context and continuations as given, nothing
# between them (OLMES's continuations bring their leading space); acc_norm divides by the continuation's
# characters, its space included, which is OLMES's acc_per_char
OLMES = {
    "output_type": "multiple_choice", "doc_to_text": "{{context}}", "doc_to_choice": "{{continuations}}",
    "doc_to_target": "{{gold}}", "target_delimiter": "",
    "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                    {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
}  # fmt: skip


def task_configs(tasks: list[str], folder: Path, limit: int) -> list[dict]:
    """lm-eval's own config of each task (for an OLMES task, `OLMES`), reading the first `limit` documents
    from a JSONL file in `folder`."""
    configs = []
    root = Path(lm_eval.__file__).parent / "tasks"
    for name in tasks:
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in load_docs(name)[:limit]))
        config = load_yaml(root / CONFIGS[name]) if name in CONFIGS else dict(OLMES)
        config.pop("tag", None)
        config.update(
            task=f"local_{name}", dataset_path="json", dataset_name=None,
            dataset_kwargs={"data_files": {"test": str(path)}},
            test_split="test", validation_split=None, training_split=None,
        )  # fmt: skip
        configs.append(config)
    return configs


def run(model, tokenizer, plan, tasks: list[str], folder: Path, limit: int, batch_size: int = 32, **options) -> dict:
    """lm-eval's results and per-document samples (sorted by document), keyed by painters' task names."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    configs = task_configs(tasks, folder, limit)
    out = evaluate_with_lm_eval(model, tokenizer, plan, configs, limit, batch_size, log_samples=True, **options)
    return {
        part: {name.removeprefix("local_"): value for name, value in out[part].items()}
        for part in ("results", "samples")
    }
