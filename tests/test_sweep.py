"""Sweeps: plans sharing prefixes give bit-identical scores, the grid, the store, and resuming."""

import json
import sqlite3

import pandas as pd
import pytest
import torch
from tiny import DECODERS, CharTokenizer, tiny_model

import painters.study.sweep as sweep_module
from painters import Plan, apply_plan
from painters.core.adapters import adapter_for
from painters.core.errors import PaintersError
from painters.core.prefix_memo import PrefixMemo, shared_steps, sharing_order
from painters.study.grid import grid, parse_values, parse_variants
from painters.study.results import COLUMNS, results_frame, write_samples
from painters.study.store import NONE, Cell, Label, Store, StoreError
from painters.study.units import Worker
from painters.tasks.catalog import Doc
from painters.tasks.scoring import loglikelihoods, plan_loglikelihoods

DOCS = [
    Doc((("Question: what is red?\nAnswer:", " a rose"), ("Question: what is red?\nAnswer:", " the sky"))),
    Doc((("The cat sat on the", " mat"),)),
    Doc((("Option one fills the blank", " and the rest"), ("Option two", " and the rest"))),
    Doc((("A longer context that needs more padding than the others", " end"),)),
]  # fmt: skip
PLANS = [Plan.parse(text) for text in ("0-5", "0-2,5", "0-1,[2-3],4-5", "0-1,[2-3]x2,4-5", "0-1,3-2,4-5", "0,5")]


@pytest.mark.parametrize("model_type", DECODERS)
def test_shared_prefixes_give_the_scores_of_each_plan_run_alone(model_type):
    model, tokenizer = tiny_model(model_type), CharTokenizer()
    shared = plan_loglikelihoods(model, tokenizer, DOCS, PLANS, batch_size=2, max_tokens=64)
    for plan in PLANS:
        with apply_plan(model, plan):
            alone = loglikelihoods(model, tokenizer, DOCS, batch_size=2, max_tokens=64)
        assert shared[plan] == alone, plan  # bit-identical, not close


def test_shared_steps_run_once_per_batch():
    model = tiny_model("llama")
    calls = {index: 0 for index in range(6)}
    layers = adapter_for("llama").layer_list(model)
    hooks = [layers[i].register_forward_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1)) for i in range(6)]
    plans = [Plan.parse("0-5"), Plan.parse("0-2,5"), Plan.parse("0-1,3-2,4-5")]
    plan_loglikelihoods(model, CharTokenizer(), DOCS[:1], plans, batch_size=1)
    for hook in hooks:
        hook.remove()
    passes = 2  # the shared context, then the continuations against its cache
    assert calls[0] == calls[1] == passes  # in every plan, run once
    assert calls[2] == 2 * passes  # 0-2 shared by two plans; 3-2 starts another
    assert calls[5] == 3 * passes  # after the plans diverge, every plan runs its own


@pytest.mark.parametrize("budget, kept", [(0, False), (1 << 30, True)])
def test_the_memo_keeps_no_more_than_its_budget_and_the_numbers_stay(monkeypatch, budget, kept):
    model, tokenizer = tiny_model("llama"), CharTokenizer()
    held = []
    call = PrefixMemo.call

    def spy(self, *args):
        output = call(self, *args)
        held.append(self.bytes)
        return output

    monkeypatch.setattr(PrefixMemo, "call", spy)
    bounded = plan_loglikelihoods(model, tokenizer, DOCS, PLANS, batch_size=2, max_tokens=64, memo_bytes=budget)
    monkeypatch.setattr(PrefixMemo, "call", call)
    assert (max(held) > 0) == kept
    for plan in PLANS:
        with apply_plan(model, plan):
            assert bounded[plan] == loglikelihoods(model, tokenizer, DOCS, batch_size=2, max_tokens=64)


def test_sharing_order_puts_plans_with_common_prefixes_together():
    order = sharing_order([*PLANS, PLANS[0]])
    assert sorted(map(str, order)) == sorted(map(str, PLANS))
    for i, plan in enumerate(order[:-1]):  # the next plan shares at least as much as any later one
        assert all(shared_steps(plan, order[i + 1]) >= shared_steps(plan, later) for later in order[i + 1 :])
    assert shared_steps(Plan.parse("0-2,5"), Plan.parse("0-5")) == 3
    assert shared_steps(Plan.parse("0-5"), None) == 0


@pytest.mark.parametrize(
    "text, values",
    [("2:28:2", list(range(2, 29, 2))), ("1,3, 5", [1, 3, 5]), ("4:4", [4]), ("1:6", [1, 2, 3, 4, 5, 6])],
)
def test_values_take_lists_and_inclusive_ranges(text, values):
    assert parse_values(text, "--n") == values


@pytest.mark.parametrize("text", ["2:x", "1:5:0", "a,b", "5:1", "1:2:3:4"])
def test_bad_values_are_one_line_errors(text):
    with pytest.raises(PaintersError, match=f"--n '{text}'"):
        parse_values(text, "--n")


def test_grid_labels_every_point_and_starts_with_the_full_model():
    points = grid(8, ["skip", "shuffle", "looped_parallel", "swap", "skip_layer"], [2, 4], seeds=2, loops=[1, 2])
    assert points[0].label == Label("full") and points[0].plan == Plan.full(8)
    labels = [p.label for p in points]
    assert Label("skip", n=2) in labels and Label("shuffle", n=4, seed=1) in labels
    assert Label("looped_parallel", n=2, loops=1) in labels and Label("swap", layer=6) in labels
    assert len(points) == 1 + 2 + 4 + 4 + 7 + 8
    by_label = {p.label: str(p.plan) for p in points}
    assert by_label[Label("looped_parallel", n=4, loops=2)] == "0-1,[2-5]x2,6-7"
    assert by_label[Label("skip_layer", layer=0)] == "1-7"
    with pytest.raises(PaintersError, match="unknown variant 'bogus': valid variants are full"):
        parse_variants("skip,bogus")
    with pytest.raises(PaintersError, match=r"n=8 is out of range: the model has 8 layers \(valid n: 0-7\)"):
        grid(8, ["skip"], [8])


def cell(plan="0-5", task="arc_easy"):
    return Cell("model", plan, task, 5, "data")


def test_the_store_keeps_one_row_per_cell_and_reopens(tmp_path):
    path = tmp_path / "results.db"
    with Store(path) as store:
        assert not store.has(cell())
        store.put(cell(), "tiny", {"acc": 0.5, "acc_stderr": float("nan")}, 5, 1.0)
        store.put(cell(), "tiny", {"acc": 0.9}, 5, 1.0)  # already there: kept as it was
        store.label("model", "0-5", Label("full"))
        assert store.has(cell()) and not store.has(cell(task="hellaswag"))
        assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    with Store(path) as store:
        frame = results_frame(store)
    assert list(frame.columns) == COLUMNS
    assert frame[["plan", "variant", "task", "metric", "value"]].values.tolist() == [
        ["0-5", "full", "arc_easy", "acc", 0.5]
    ]
    assert pd.isna(frame.stderr[0]) and pd.isna(frame.n[0]) and frame["limit"][0] == 5


def test_a_file_that_is_not_a_store_or_from_another_version_is_a_clear_error(tmp_path):
    text = tmp_path / "notes.db"
    text.write_text("not a database at all, just some text that is long enough" * 20)
    with pytest.raises(StoreError, match="is not a painters results store"):
        Store(text)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE things (x)").connection.commit()
    with pytest.raises(StoreError, match="is not a painters results store"):
        Store(other)
    old = tmp_path / "old.db"
    Store(old).close()
    with sqlite3.connect(old) as db:
        db.execute("UPDATE meta SET value = '0.0.1' WHERE key = 'version'")
    with pytest.raises(StoreError, match="was written by painters 0.0.1 .*this is painters"):
        Store(old)


def test_a_schema_1_store_is_read_as_it_is_and_upgraded_by_a_writer(tmp_path):
    path = tmp_path / "old.db"
    Store(path).close()
    with sqlite3.connect(path) as db:  # what painters wrote before units of work were stored
        db.execute("DROP TABLE pieces")
        db.execute("DROP TABLE samples")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    with Store(path, read_only=True) as store:
        assert store.samples() == []
    with Store(path) as store:
        assert store.query("SELECT value FROM meta WHERE key = 'schema'")[0][0] == "4"
        assert store.model_facts() == {}  # written before painters recorded them
        assert store.samples() == [] and store.indices(Cell("m", "0-5", "arc_easy", 3, "d"), "scores") == set()


def run_sweep(path, model, points, **options):
    with Store(path) as store:
        sweep_module.sweep(model, CharTokenizer(), "tiny", points, ["arc_easy", "winogrande"], store, 3, 4, **options)
        return results_frame(store), store.query("SELECT COUNT(*) FROM cells")[0][0]


def test_an_interrupted_sweep_resumes_to_the_same_numbers_without_duplicates(tmp_path, monkeypatch):
    model = tiny_model("llama")
    points = grid(6, ["skip", "reverse", "parallel"], [2, 4])
    expected, cells = run_sweep(tmp_path / "whole.db", model, points, progress=False)
    assert cells == 7 * 2  # 6 plans + full, 2 tasks
    monkeypatch.setattr(sweep_module, "GROUP", 3)
    monkeypatch.setattr(sweep_module, "UNIT_SECONDS", 0.0)  # units of one batch
    original = Worker.run
    interrupted_at(3, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(tmp_path / "resumed.db", model, points, progress=False)
    with Store(tmp_path / "resumed.db") as store:
        assert store.query("SELECT COUNT(*) FROM cells")[0][0] == 0  # no cell was complete, but
        pieces = store.query("SELECT plan, part, idx FROM pieces ORDER BY plan, idx")
        assert len(pieces) == 2 * 3  # the first two units (one batch x the first group's 3 plans) are kept
    monkeypatch.setattr(Worker, "run", original)
    resumed, cells = run_sweep(tmp_path / "resumed.db", model, points, progress=False)
    assert cells == 7 * 2
    columns = ["plan", "variant", "n", "task", "metric", "value", "stderr"]
    pd.testing.assert_frame_equal(
        resumed[columns].sort_values(columns[:5]).reset_index(drop=True),
        expected[columns].sort_values(columns[:5]).reset_index(drop=True),
    )
    with Store(tmp_path / "resumed.db") as store:
        assert store.query("SELECT COUNT(*) FROM pieces")[0][0] == 0  # a complete cell keeps its records instead
        assert store.query("SELECT COUNT(*) FROM samples")[0][0] == 7 * 2


def test_sweep_scores_equal_evaluate_for_each_plan(tmp_path):
    from painters.tasks.evaluation import evaluate

    model = tiny_model("qwen2")
    points = grid(6, ["middle_repeat", "shuffle"], [2], seeds=2)
    frame, _ = run_sweep(tmp_path / "r.db", model, points, progress=False)
    with Store(tmp_path / "r.db") as store:
        assert write_samples(store, tmp_path / "samples.jsonl") == 3 * 2 * 3  # 3 distinct plans, 2 tasks, 3 docs
    samples = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    for point in points:
        direct = evaluate(model, CharTokenizer(), point.plan, ["arc_easy", "winogrande"], 3, 4, progress=False)
        for task, records in direct["samples"].items():
            stored = [dict(s) for s in samples if s["plan"] == str(point.plan) and s["task"] == task]
            assert [s.pop("doc") for s in stored] == [0, 1, 2] and {s.pop("limit") for s in stored} == {3}
            assert [{k: v for k, v in s.items() if k not in ("plan", "task", "model_fingerprint", "data_fingerprint")}
                    for s in stored] == records  # fmt: skip
        for task, summary in direct["results"].items():
            values = frame[(frame.plan == str(point.plan)) & (frame.task == task)].groupby("metric").value
            assert (values.nunique() == 1).all()  # a plan two grid points build is one cell
            for metric in ("acc", "gold_ll", "chance"):
                assert values.first()[metric] == summary[metric]
    assert frame[frame.variant == "shuffle"].seed.dropna().unique().tolist() == [0, 1]
    assert NONE not in frame.n.dropna().tolist()


def test_cells_are_keyed_by_model_and_data(tmp_path):
    model = tiny_model("llama")
    points = grid(6, ["skip"], [2])
    run_sweep(tmp_path / "r.db", model, points, progress=False)
    with pytest.raises(StoreError, match=r"holds results of another model \(tiny; fingerprints differ\)"):
        run_sweep(tmp_path / "r.db", tiny_model("llama", seed=1), points, progress=False)  # refused before any work
    with Store(tmp_path / "r.db") as store:
        assert store.query("SELECT COUNT(*) FROM cells")[0][0] == 2 * 2
        assert store.query("SELECT COUNT(DISTINCT model_fingerprint) FROM labels")[0][0] == 1
    assert torch.equal(next(model.parameters()), next(tiny_model("llama").parameters()))


def test_the_cpu_study_measures_reasoning_on_olmes_and_the_full_generates_gsm8k(tiny_folder, tmp_path, monkeypatch):
    """The CPU study's tasks are those a small model is above chance on, with arithmetic and logic against
    common knowledge at four times the documents and the smaller n; --full adds GSM8K, generated."""
    from painters.paper import run_paper, study

    cpu, full = study(30, full=False), study(30, full=True)
    assert [(part.name, part.tasks, part.limit, part.ns) for part in cpu.parts[:3]] == [
        ("variants", ["arc_easy", "hellaswag", "lambada_openai"], 24, [2, 6, 10, 14, 18, 22, 26]),
        ("reasoning", ["arithmetic", "logic", "knowledge"], 96, [2, 6, 10, 14]),
        ("looped", ["arc_easy", "hellaswag", "lambada_openai"], 24, [2, 6, 10, 14])]  # fmt: skip
    assert cpu.parts[1].variants == ["skip", "middle_repeat", "reverse", "shuffle", "parallel"]
    assert {"gsm8k", "winogrande", "arithmetic", "logic"} <= set(full.parts[0].tasks)
    calls = []
    monkeypatch.setattr("painters.study.sweep.sweep", lambda *args, **options: calls.append(options["generate"]))
    monkeypatch.setattr("painters.report.page.report", lambda store, folder: folder / "index.html")
    for is_full in (False, True):
        run_paper(str(tiny_folder), tmp_path / f"out-{is_full}", full=is_full, limit=2)
    assert calls == [False] * 4 + [True] * 3


def interrupted_at(call: int, monkeypatch) -> None:
    """Make the sweep's worker raise KeyboardInterrupt on its `call`-th unit."""
    original, calls = Worker.run, []

    def run(self, *args):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(Worker, "run", run)


def test_pieces_of_another_batching_never_mix_into_a_cell(tmp_path, monkeypatch):
    model, points = tiny_model("llama"), grid(6, ["skip", "parallel"], [2])
    fresh, _ = run_sweep(tmp_path / "fresh.db", model, points, progress=False)  # at batch size 4
    monkeypatch.setattr(sweep_module, "UNIT_SECONDS", 0.0)
    interrupted_at(3, monkeypatch)
    with pytest.raises(KeyboardInterrupt), Store(tmp_path / "r.db") as store:
        sweep_module.sweep(
            model, CharTokenizer(), "tiny", points, ["arc_easy", "winogrande"], store, 3, 1, progress=False
        )
    with Store(tmp_path / "r.db") as store:
        assert {row[0] for row in store.query("SELECT part FROM pieces")} == {"scores batch_size=1 max_tokens=1024"}
    monkeypatch.undo()
    resumed, cells = run_sweep(tmp_path / "r.db", model, points, progress=False)  # at batch size 4: other batches
    assert cells == 3 * 2
    pd.testing.assert_frame_equal(resumed, fresh)
    with Store(tmp_path / "r.db") as store:
        assert store.query("SELECT COUNT(*) FROM pieces")[0][0] == 0  # a finished cell drops every piece it had


class TextTokenizer(CharTokenizer):
    """CharTokenizer decoding each token to a character of its own (generation's texts differ)."""

    def decode(self, ids, **options):
        return "".join("<s>" if i == 1 else chr(32 + i) for i in ([ids] if isinstance(ids, int) else ids))


def test_gsm8k_generations_do_not_depend_on_the_units(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, LlamaConfig

    from painters.tasks import gsm8k
    from painters.tasks.evaluation import evaluate

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=6,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192)  # fmt: skip
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", dtype=torch.float32).eval()
    points = grid(6, ["skip"], [2])
    monkeypatch.setattr(sweep_module, "UNIT_SECONDS", 0.0)  # one chunk of 4 documents (batch size 1) per unit
    monkeypatch.setattr(gsm8k, "MAX_NEW_TOKENS", 24)
    with Store(tmp_path / "r.db") as store:
        sweep_module.sweep(model, TextTokenizer(), "tiny", points, ["gsm8k"], store, 5, 1, progress=False)
        stored = {row["plan"]: json.loads(row["records"]) for row in store.samples()}
    assert len(stored) == 2
    for plan, records in stored.items():
        direct = evaluate(model, TextTokenizer(), plan, ["gsm8k"], 5, 1, progress=False)["samples"]["gsm8k"]
        assert records == direct and [len(record["generation"]) for record in records] == [24] * 5
