"""GLUE on BERT-style encoders: a task head on the encoder while it runs under a plan.

GLUE needs a classifier on top of the encoder. Three protocols:
- `probe-under-plan` (default): the encoder is frozen and runs under the plan; a logistic-regression
  probe on its pooled sentence (pair) embedding is trained and scored under the same plan.
- `probe-from-full`: the probe is trained on the full model's embeddings and scored on the plan's:
  the frozen-model perturbation the paper applies to Llama.
- `finetune`: a copy of the encoder and a linear head are fine-tuned together under the plan, as the
  paper's code does for BERT (meant for a GPU; small data runs on a CPU).
Only the validation splits ship offline, so by default every protocol runs stratified k-fold
cross-validation over them and reports the mean and standard error over folds; given a train split
(`--data-dir` or the hub) it trains on train and scores on validation, as GLUE does.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from transformers import PreTrainedModel

from painters.core.execution import apply_plan
from painters.core.plan import Plan
from painters.models.devices import input_device
from painters.tasks.catalog import Task
from painters.tasks.documents import GlueOptions

PROBE_C = 0.01  # strong L2 regularisation: a fold trains on a few hundred items in hundreds of dimensions


def default_pooling(model: PreTrainedModel) -> str:
    """Mean pooling for sentence-transformers models (their 1_Pooling config says so), else the [CLS] token."""
    config = Path(model.config.name_or_path) / "1_Pooling" / "config.json"
    if config.is_file():
        return "mean" if json.loads(config.read_text()).get("pooling_mode_mean_tokens") else "cls"
    return "cls"


def classify(
    model: PreTrainedModel,
    tokenizer,
    task: Task,
    rows: list[dict],
    plan: Plan,
    options: GlueOptions,
    train_rows: list[dict] | None = None,
) -> list[dict]:
    """Per fold (or the one train/validation split): acc (and f1 where GLUE reports it), chance, items."""
    data = rows if train_rows is None else train_rows + rows
    labels = np.array([int(row["label"]) for row in data])
    pooling = options.pooling or default_pooling(model)
    folds = splits(labels, None if train_rows is None else len(train_rows), options)
    if options.protocol == "finetune":
        predict = _finetuned(model, tokenizer, task, data, labels, plan, pooling, options)
    else:
        predict = _probed(model, tokenizer, task, data, labels, plan, pooling, options)
    return [_fold_record(task, labels[test], predict(train, test)) for train, test in folds]


def splits(labels: np.ndarray, train_size: int | None, options: GlueOptions) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs: stratified k-fold over all items, or the first `train_size` items against the rest."""
    if train_size is not None:
        return [(np.arange(train_size), np.arange(train_size, len(labels)))]
    return list(StratifiedKFold(options.folds, shuffle=True, random_state=options.seed).split(labels, labels))


def _fold_record(task: Task, truth: np.ndarray, predicted: np.ndarray) -> dict:
    record = {"acc": float(accuracy_score(truth, predicted))}
    if "f1" in task.metrics:
        record["f1"] = float(f1_score(truth, predicted))
    record["chance"] = float(np.bincount(truth).max() / len(truth))  # always answering the majority class
    record["items"] = len(truth)
    return record


def _probed(model, tokenizer, task, data, labels, plan, pooling, options):
    scored = embeddings(model, tokenizer, task, data, plan, pooling, options)
    trained = (
        scored
        if options.protocol == "probe-under-plan"
        else embeddings(model, tokenizer, task, data, None, pooling, options)
    )

    def predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=PROBE_C, max_iter=2000, random_state=options.seed))
        return probe.fit(trained[train], labels[train]).predict(scored[test])

    return predict


@torch.no_grad()
def embeddings(
    model: PreTrainedModel,
    tokenizer,
    task: Task,
    rows: list[dict],
    plan: Plan | None,
    pooling: str,
    options: GlueOptions,
) -> np.ndarray:
    """The pooled embedding of each row's sentence (or sentence pair, encoded as a pair) under `plan`."""
    with apply_plan(model, plan):
        pooled = [_pooled(model, encode_rows(tokenizer, task, batch, options.max_length, input_device(model)), pooling)
                  for batch in _chunks(rows, options.batch_size)]  # fmt: skip
    return torch.cat(pooled).float().cpu().numpy()


def _finetuned(model, tokenizer, task, data, labels, plan, pooling, options):
    def inputs(batch: np.ndarray) -> dict:
        return encode_rows(tokenizer, task, [data[i] for i in batch], options.max_length, input_device(model))

    def predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        torch.manual_seed(options.seed)
        encoder = copy.deepcopy(model)  # the caller's weights stay as they are
        head = nn.Linear(model.config.hidden_size, int(labels.max()) + 1).to(input_device(model))
        with apply_plan(encoder, plan):
            optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=options.learning_rate)
            order = torch.Generator().manual_seed(options.seed)
            encoder.train()
            for _ in range(options.epochs):
                for batch in _chunks(train[torch.randperm(len(train), generator=order).numpy()], options.batch_size):
                    target = torch.tensor(labels[batch], device=input_device(model))
                    loss = nn.functional.cross_entropy(head(_pooled(encoder, inputs(batch), pooling)), target)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
            encoder.eval()
            with torch.no_grad():
                logits = [head(_pooled(encoder, inputs(batch), pooling)) for batch in _chunks(test, options.batch_size)]
        return torch.cat(logits).argmax(-1).cpu().numpy()

    return predict


def encode_rows(tokenizer, task: Task, rows: list[dict], max_length: int, device="cpu") -> dict:
    """A batch of rows as model inputs: one sentence, or a sentence pair encoded as a pair (with its separator)."""
    columns = [[row[field] for row in rows] for field in task.inputs]
    encoded = tokenizer(*columns, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {key: value.to(device) for key, value in encoded.items()}


def _pooled(model: PreTrainedModel, inputs: dict, pooling: str) -> torch.Tensor:
    """The pooled embedding in float32 (a probe or head needs no more, a bfloat16 mean over tokens needs it)."""
    hidden = model.base_model(**inputs).last_hidden_state.to(inputs["input_ids"].device, torch.float32)
    if pooling == "cls":
        return hidden[:, 0]
    mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1)


def _chunks(items, size: int) -> list:
    return [items[start : start + size] for start in range(0, len(items), size)]
