"""GLUE on encoders: folds, pair encoding, pooling, the three protocols, and their wiring into evaluate."""

import json

import numpy as np
import pytest
import torch
from tiny import tiny_model
from transformers import AutoModel, AutoTokenizer, BertConfig

from painters import Plan, evaluate
from painters.core.errors import PaintersError
from painters.models.embedded import embedded_path
from painters.tasks.catalog import get_task
from painters.tasks.documents import GlueOptions, task_data
from painters.tasks.glue import classify, default_pooling, encode_rows, splits


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(embedded_path("minilm-l6"))


@pytest.fixture(scope="module")
def encoder():
    """A tiny random BERT with MiniLM's vocabulary, so MiniLM's tokenizer drives it."""
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, intermediate_size=64, num_hidden_layers=6,
                        num_attention_heads=4, max_position_embeddings=512)  # fmt: skip
    return AutoModel.from_config(config, attn_implementation="eager").eval()


def test_folds_are_stratified_and_never_share_an_item():
    labels = np.array([0] * 30 + [1] * 12)
    folds = splits(labels, None, GlueOptions(folds=5, seed=3))
    assert len(folds) == 5
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(42))  # every item is tested exactly once
    for train, test in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 42
        assert 2 <= labels[test].sum() <= 3  # 12 positives spread over 5 folds
    assert [t.tolist() for _, t in splits(labels, None, GlueOptions(folds=5, seed=3))] == [t.tolist() for _, t in folds]
    ((train, test),) = splits(labels, 30, GlueOptions())
    assert train.tolist() == list(range(30)) and test.tolist() == list(range(30, 42))


def test_pairs_are_encoded_as_pairs(tokenizer):
    row = {"sentence1": "The cat sat.", "sentence2": "A cat was sitting.", "label": 1}
    encoded = encode_rows(tokenizer, get_task("mrpc"), [row], 64)
    ids = encoded["input_ids"][0].tolist()
    assert ids.count(tokenizer.sep_token_id) == 2 and ids[0] == tokenizer.cls_token_id
    assert encoded["token_type_ids"][0].tolist() == [0] * (ids.index(tokenizer.sep_token_id) + 1) + [1] * (
        len(ids) - ids.index(tokenizer.sep_token_id) - 1
    )
    single = encode_rows(tokenizer, get_task("sst2"), [{"sentence": "fine .", "label": 1}], 64)
    assert single["input_ids"][0].tolist().count(tokenizer.sep_token_id) == 1


def test_pooling_follows_the_model(encoder):
    from painters import load_model

    minilm, _ = load_model("minilm-l6")
    assert default_pooling(minilm) == "mean"  # a sentence-transformers model: its 1_Pooling config says so
    assert default_pooling(encoder) == "cls"


def rows(task, count=40):
    return task_data(task).rows[:count]


@pytest.mark.parametrize("task", ["sst2", "mrpc"])
def test_probes_are_deterministic_and_report_glue_metrics(encoder, tokenizer, task):
    options = GlueOptions(folds=4, seed=1)
    plan = Plan.parse("0-1,[2-3],4-5")
    first = classify(encoder, tokenizer, get_task(task), rows(task), plan, options)
    assert first == classify(encoder, tokenizer, get_task(task), rows(task), plan, options)
    assert len(first) == 4 and sum(record["items"] for record in first) == 40
    assert set(first[0]) == ({"acc", "f1", "chance", "items"} if task == "mrpc" else {"acc", "chance", "items"})
    assert all(0 <= record["acc"] <= 1 and 0.5 <= record["chance"] <= 1 for record in first)


def test_probe_from_full_under_the_full_plan_is_probe_under_plan(encoder, tokenizer):
    task, full = get_task("rte"), Plan.full(6)
    under = classify(encoder, tokenizer, task, rows("rte"), full, GlueOptions(folds=3))
    from_full = classify(encoder, tokenizer, task, rows("rte"), full, GlueOptions("probe-from-full", folds=3))
    assert under == from_full
    skipped = classify(
        encoder, tokenizer, task, rows("rte"), Plan.parse("0,5"), GlueOptions("probe-from-full", folds=3)
    )
    assert skipped != from_full


def test_finetune_is_deterministic_and_leaves_the_model_as_it_was(encoder, tokenizer):
    before = {name: value.clone() for name, value in encoder.state_dict().items()}
    options = GlueOptions("finetune", folds=2, epochs=1, batch_size=8, learning_rate=1e-3)
    task = get_task("sst2")
    first = classify(encoder, tokenizer, task, rows("sst2", 16), Plan.parse("0-2,2,3-5"), options)
    assert first == classify(encoder, tokenizer, task, rows("sst2", 16), Plan.parse("0-2,2,3-5"), options)
    assert len(first) == 2 and sum(record["items"] for record in first) == 16
    assert all(torch.equal(value, before[name]) for name, value in encoder.state_dict().items())


def test_a_train_split_is_trained_on_and_validation_scored(encoder, tokenizer, tmp_path):
    validation = task_data("sst2").rows
    train = validation[100:160]
    (tmp_path / "sst2_train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in train))
    (tmp_path / "sst2.jsonl").write_text("".join(json.dumps(row) + "\n" for row in validation))  # --data-dir: all or none
    from painters.tasks import data

    sizes = data.SPLITS["sst2_train"]
    data.SPLITS["sst2_train"] = sizes.__class__(sizes.hub, 60, sizes.fields)
    try:
        loaded = task_data("sst2", limit=20, data_dir=tmp_path)
    finally:
        data.SPLITS["sst2_train"] = sizes
    assert loaded.train_rows == train and len(loaded.rows) == 20
    (record,) = classify(encoder, tokenizer, loaded.task, loaded.rows, Plan.full(6), GlueOptions(), loaded.train_rows)
    assert record["items"] == 20


def test_evaluate_routes_glue_to_encoders_only(encoder, tokenizer):
    result = evaluate(encoder, tokenizer, "0-2,4-5", ["sst2", "mrpc"], limit=30, progress=False,
                      glue=GlueOptions(folds=3))  # fmt: skip
    sst2, mrpc = result["results"]["sst2"], result["results"]["mrpc"]
    assert sst2["docs"] == 30 and len(result["samples"]["sst2"]) == 3
    accs = [fold["acc"] for fold in result["samples"]["sst2"]]
    assert sst2["acc"] == pytest.approx(np.mean(accs)) and sst2["acc_stderr"] == pytest.approx(
        np.std(accs, ddof=1) / np.sqrt(3)
    )
    assert result["average"] == pytest.approx((sst2["acc"] + (mrpc["acc"] + mrpc["f1"]) / 2) / 2)
    with pytest.raises(PaintersError, match="'bert' is an encoder: arc_easy needs a decoder model"):
        evaluate(encoder, tokenizer, None, ["arc_easy"])
    with pytest.raises(PaintersError, match="sst2 is a GLUE task for encoders: 'llama' is a decoder"):
        evaluate(tiny_model("llama"), tokenizer, None, ["sst2"])
    with pytest.raises(PaintersError, match="unknown protocol 'probe': valid protocols are probe-under-plan"):
        evaluate(encoder, tokenizer, None, ["sst2"], glue=GlueOptions("probe"))


@pytest.mark.slow
def test_minilm_probe_on_sst2_is_well_above_chance():
    from painters import load_model

    model, tokenizer = load_model("minilm-l6")
    result = evaluate(model, tokenizer, None, ["sst2"], progress=False)["results"]["sst2"]
    assert result["docs"] == 872 and result["chance"] == pytest.approx(444 / 872, abs=0.01)
    assert result["acc"] > 0.75  # 0.789 measured; chance (the majority class) is 0.509


def test_sweep_stores_glue_cells_equal_to_evaluate(encoder, tokenizer, tmp_path):
    from painters.study.grid import grid
    from painters.study.results import results_frame
    from painters.study.store import Store
    from painters.study.sweep import sweep

    options = GlueOptions(folds=3)
    points = grid(6, ["skip", "parallel"], [2])
    with Store(tmp_path / "r.db") as store:
        assert sweep(encoder, tokenizer, "tiny-bert", points, ["rte"], store, 30, progress=False, glue=options) == 3
        assert sweep(encoder, tokenizer, "tiny-bert", points, ["rte"], store, 30, progress=False, glue=options) == 0
        assert sweep(encoder, tokenizer, "tiny-bert", points, ["rte"], store, 30, progress=False) == 3  # other protocol
        frame = results_frame(store)
    for point in points:
        direct = evaluate(encoder, tokenizer, point.plan, ["rte"], 30, progress=False, glue=options)["results"]["rte"]
        stored = frame[(frame.plan == str(point.plan)) & (frame.metric == "acc")]
        assert direct["acc"] in stored.value.tolist()
