"""Bad input, second review (issue 21): each class of defect is one line, exit code 2, before any model loads,
with nothing on disk created or changed. The examples of the issue, and a few more per class."""

import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from refusals import Loaded, assert_refused, on_disk

from painters.core.errors import PaintersError
from painters.core.staging import PREFIX, remove_stale, staging_folder

STORE = Path(__file__).parent.parent / "docs" / "figures" / "paper-smollm2-135m" / "results.db"
ARC = {"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "A"}


@pytest.fixture
def store(tmp_path):
    (tmp_path / "s.db").write_bytes(STORE.read_bytes())
    return tmp_path / "s.db"


# 1: no output may be what the command reads (the store, its SQLite side files, the model)
@pytest.mark.parametrize(
    "args, message",
    [
        (["results", "--db", "s.db", "--csv", "s.db"], "error: --csv 's.db' is what the command reads ('s.db')"),
        (["results", "--db", "s.db", "--csv", "s.db-wal"], "error: --csv 's.db-wal' is what the command reads"),
        (["results", "--db", "s.db", "--samples", "s.db-shm"], "error: --samples 's.db-shm' is what the command reads"),
        (["results", "--db", "s.db", "--samples", "./emptydir/../s.db"], "error: --samples 'emptydir/../s.db' is what"),
        (["results", "--db", "./s.db", "--csv", "hard.db"], "error: --csv 'hard.db' is what the command reads"),
        (["eval", "--json", "garbage.gguf", "-m", "garbage.gguf"], "error: --json 'garbage.gguf' is what the command reads"),
        (["bench", "--plans", "0-1", "--json", "garbage.gguf", "-m", "garbage.gguf"], "error: --json 'garbage.gguf' is what"),
        (["export", "--out", "models", "--force", "-m", "models/tiny", "--plan", "0-3"],
         "error: --out 'models' holds what the command reads ('models/tiny')"),
        (["export", "--out", "models/tiny", "--force", "-m", "models/tiny", "--plan", "0-3"],
         "error: --out 'models/tiny' is what the command reads ('models/tiny')"),
    ],
)  # fmt: skip
def test_no_output_is_an_input(cli, tmp_path, store, tiny_folder, args, message):
    os.link(store, tmp_path / "hard.db")
    shutil.copytree(tiny_folder, tmp_path / "models" / "tiny")
    assert_refused(cli, tmp_path, args, message)


# 2: every output path is checked writable (by trying: root passes permission checks), before any work
@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "--json", "/proc/x.json"], "error: --json '/proc/x.json' is not writable: give a path you can write to"),
        (["results", "--db", "s.db", "--samples", "/proc/x.jsonl"], "error: --samples '/proc/x.jsonl' is not writable"),
        (["report", "--db", "s.db", "--out", "/proc/x"], "error: --out '/proc/x': '/proc' is not a writable folder"),
        (["paper", "--out", "/proc/x"], "error: --out '/proc/x': '/proc' is not a writable folder"),
        (["similarity", "--out", "/proc/x"], "error: --out '/proc/x': '/proc' is not a writable folder"),
        (["export", "--out", "/proc/x", "--plan", "skip:n=2"], "error: --out '/proc/x': '/proc' is not a writable"),
        (["export", "--out", "afile/sub", "--plan", "skip:n=2"], "error: --out 'afile/sub': 'afile' is a file, not a folder"),
        (["export", "--format", "mergekit", "--out", ".", "--force", "--plan", "skip:n=2"], "error: --out '.' is a folder"),
        (["bench", "--plans", "skip:n=2", "--json", "/proc/x.json"], "error: --json '/proc/x.json' is not writable"),
        (["sweep", "--db", "/proc/x.db"], "error: --db '/proc/x.db': the folder '/proc' is not writable"),
        (["report", "--db", "s.db", "--out", ""], "error: Invalid value for '--out': the path is empty"),
        (["results", "--db", "", "--csv", "t.csv"], "error: Invalid value for '--db': the path is empty"),
        (["eval", "--data-dir", " "], "error: Invalid value for '--data-dir': the path is empty"),
        (["similarity", "--out", "o", "--text-file", ""], "error: Invalid value for '--text-file': the path is empty"),
        (["sweep", "--db", "loop.db"], "error: --db 'loop.db' is a symbolic link that leads nowhere"),
        (["eval", "--json", "dangling.json"], "error: --json 'dangling.json' is a symbolic link that leads nowhere"),
    ],
)  # fmt: skip
def test_output_paths_are_checked_before_any_work(cli, tmp_path, store, args, message):
    (tmp_path / "loop.db").symlink_to("loop.db")
    (tmp_path / "dangling.json").symlink_to("nowhere/x.json")
    assert_refused(cli, tmp_path, args, message)


def test_a_writable_check_leaves_no_trace(tmp_path):
    from painters.checks import output_file, output_folder

    (tmp_path / "sub").mkdir()
    before = on_disk(tmp_path)
    output_file(tmp_path / "sub" / "x.json", "--json")
    output_folder(tmp_path / "sub" / "new" / "deeper", "--out")
    assert on_disk(tmp_path) == before  # the try-file is gone and the folder's times are put back


# 3: a killed run's staging is removed by the next one in the same folder
def test_staging_left_by_a_dead_process_is_removed_and_a_live_ones_kept(tmp_path, capsys):
    import socket
    import subprocess

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    stale = tmp_path / f"{PREFIX}{dead.stdout.strip()}@{host}.abc"
    (stale / "model.safetensors").parent.mkdir()
    (stale / "model.safetensors").write_bytes(b"x" * 1000)
    live = tmp_path / f"{PREFIX}{os.getpid()}@{host}.def"
    elsewhere = tmp_path / f"{PREFIX}1@another-machine.ghi"
    live.mkdir(), elsewhere.mkdir()
    new = staging_folder(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, elsewhere.name, new.name])
    assert f"note: removed {stale}" in capsys.readouterr().err
    assert remove_stale(tmp_path) == []


# 4: counts are bounded, with the limit named, before anything is built
@pytest.mark.parametrize(
    "args, message",
    [
        (["sweep", "--db", "x.db", "--variants", "looped_parallel", "--n", "2", "--loops", "1:100000"],
         "error: --loops '1:100000' gives 100000 values, more than 10000: give fewer"),
        (["sweep", "--db", "x.db", "--n", "1:99999999999999999999"],
         "error: --n '1:99999999999999999999' gives 99999999999999999999 values, more than 10000"),
        (["plan", "skip", "--layers", "99999999999999999999", "--n", "6"],
         "error: num_layers=99999999999999999999 is out of range: a model has 1 to 100000 layers here"),
        (["plan", "full", "--layers", "9999999999"], "error: num_layers=9999999999 is out of range"),
        (["plan", "full", "--layers", "0"], "error: num_layers=0 is out of range"),
        (["sweep", "--db", "x.db", "--variants", "shuffle", "--seeds", "1000000000"],
         "error: the grid has more than 10000 plans: give fewer --variants, --n, --seeds or --loops values"),
        (["sweep", "--db", "x.db", "--variants", "shuffle,looped_parallel", "--n", "1:29", "--seeds", "300",
          "--loops", "1:100"], "error: the grid has more than 10000 plans"),
    ],
)  # fmt: skip
def test_huge_counts_are_one_line(cli, tmp_path, args, message):
    assert_refused(cli, tmp_path, args, message)


# 5: with --data-dir every task comes from there; an option given twice is refused, not dropped
@pytest.mark.parametrize(
    "files, args, message",
    [
        ({"arc-easy.jsonl": ARC}, ["eval", "--data-dir", "data"],
         "error: --data-dir 'data' has no arc_easy.jsonl (found 'arc-easy.jsonl': rename it)"),
        ({"arc_easy.jsonl": ARC}, ["eval", "--data-dir", "data", "--tasks", "arc_easy,hellaswag"],
         "error: --data-dir 'data' has no hellaswag.jsonl: with --data-dir, every task's documents come from there"),
        ({"arc_easy.jsonl": "dangling"}, ["eval", "--data-dir", "data"],
         "error: data/arc_easy.jsonl is a symbolic link that leads nowhere (dangling or a loop)"),
        ({"arc_easy.jsonl": "loop"}, ["eval", "--data-dir", "data"],
         "error: data/arc_easy.jsonl is a symbolic link that leads nowhere (dangling or a loop)"),
        ({}, ["eval", "--tasks", "arc_easy", "--task", "hellaswag"],
         "error: Invalid value for '--tasks' / '--task' / '-t': given twice (as --tasks and --task): give it once"),
        ({}, ["eval", "--limit", "3", "--limit=4"], "error: Invalid value for '--limit': given twice: give it once"),
        ({}, ["sweep", "--db", "x.db", "-m", "a", "--model", "b"], "error: Invalid value for '--model' / '-m': given twice"),
        ({}, ["plan", "skip", "--layers", "30", "--n", "6", "--n", "4"], "error: Invalid value for '--n': given twice: give"),
    ],
)  # fmt: skip
def test_data_dir_and_repeated_options_never_fall_back_silently(cli, tmp_path, files, args, message):
    (tmp_path / "data").mkdir()
    for name, content in files.items():
        if content == "dangling":
            (tmp_path / "data" / name).symlink_to("no_such.jsonl")
        elif content == "loop":
            (tmp_path / "data" / name).symlink_to(name)
        else:
            (tmp_path / "data" / name).write_text(json.dumps(content) + "\n")
    assert_refused(cli, tmp_path, args, message)


def test_repeated_multi_word_values_are_not_options(cli, tmp_path):
    """Only option names count: a value that looks like an option is a value."""
    with pytest.raises(Loaded):
        cli("generate", "--prompt", "--plan", "--plan", "0-29")


# 6: rows the checker let through or crashed on
@pytest.mark.parametrize(
    "task, line, message",
    [
        ("arc_easy", "[" * 100000 + "]" * 100000, "arc_easy.jsonl line 1 is JSON no task row can be: maximum recursion"),
        ("arc_easy", json.dumps({**ARC, "x": 1}).replace(": 1}", ": " + "1" * 5000 + "}"),
         "arc_easy.jsonl line 1 is JSON no task row can be: Exceeds the limit (4300 digits)"),
        ("arc_easy", json.dumps({**ARC, "question": "q\ud800"}), "arc_easy.jsonl line 1 escapes half a UTF-16 pair"),
        ("arc_easy", json.dumps({**ARC, "choices": {"text": ["", " "], "label": ["A", "B"]}}),
         "arc_easy.jsonl line 1: field 'choices' is {\"text\": [\"\", \" \"]"),
        ("lambada_openai", json.dumps({"text": ""}), "lambada_openai.jsonl line 1: field 'text' is \"\": it must be a non-empty string"),
        ("gsm8k", json.dumps({"question": "q", "answer": " "}), "gsm8k.jsonl line 1: field 'answer' is \" \": it must be"),
        ("winogrande", json.dumps({"sentence": " _ ", "option1": "a", "option2": "b", "answer": "1"}),
         "winogrande.jsonl line 1: field 'sentence' is \" _ \": it must be a string with the blank '_' and text beside it"),
        ("hellaswag", json.dumps({"activity_label": "a", "ctx_a": "c", "ctx_b": "", "endings": ["x", ""], "label": 0}),
         "hellaswag.jsonl line 1: field 'endings' is [\"x\", \"\"]: it must be a list of at least two non-empty strings"),
    ],
)  # fmt: skip
def test_meaningless_or_unreadable_rows_are_refused(cli, tmp_path, task, line, message):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / f"{task}.jsonl").write_text(line + "\n")
    assert_refused(cli, tmp_path, ["eval", "--data-dir", "data", "--tasks", task], "error: data/" + message)


def test_an_empty_hellaswag_ctx_b_is_a_row(cli, tmp_path, tiny_folder):
    """HellaSwag leaves ctx_b empty in 6,799 of its 10,042 rows: empty there is fine."""
    (tmp_path / "data").mkdir()
    row = {"activity_label": "a", "ctx_a": "c", "ctx_b": "", "endings": ["x", "y"], "label": 0}
    (tmp_path / "data" / "hellaswag.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(Loaded):
        cli("eval", "-m", str(tiny_folder), "--data-dir", "data", "--tasks", "hellaswag")


# 7: broken models are named before they load
def _folder(tmp_path: Path, config: dict, weights: bytes | None = None) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    if weights is not None:
        (tmp_path / "m" / "model.safetensors").write_bytes(weights)


LLAMA = {"model_type": "llama", "num_hidden_layers": 4, "max_position_embeddings": 128}


@pytest.mark.parametrize(
    "config, weights, message",
    [
        ({"model_type": "t5", "num_layers": 6}, None, "error: unsupported architecture 't5': painters supports bert"),
        ({**LLAMA, "max_position_embeddings": "lots"}, None,
         "error: 'm/config.json': max_position_embeddings is \"lots\", not a positive whole number"),
        ({**LLAMA, "num_hidden_layers": True}, None, "error: 'm/config.json' gives no layer count"),
        ({"num_hidden_layers": 4}, None, "error: 'm/config.json' is not a Hugging Face model config: it names no model_type"),
        (LLAMA, b"\xff" * 64, "error: 'm/model.safetensors' is not a safetensors file (its header is damaged)"),
        (LLAMA, (10).to_bytes(8, "little") + b"{not json}", "error: 'm/model.safetensors' is not a safetensors file"),
        (LLAMA, b"\x01", "error: 'm/model.safetensors' is not a safetensors file"),
    ],
)  # fmt: skip
def test_broken_model_folders_are_named(cli, tmp_path, config, weights, message):
    _folder(tmp_path, config, weights)
    assert_refused(cli, tmp_path, ["layers", "--model", "m"], message)


def test_a_config_that_is_not_json_is_named(cli, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{model_type: llama")
    assert_refused(cli, tmp_path, ["eval", "-m", "m"], "error: 'm/config.json' is not JSON (")


def test_export_checks_the_model_like_every_command(cli, tmp_path):
    assert_refused(cli, tmp_path, ["export", "--out", "o", "--plan", "skip:n=2", "-m", "garbage.gguf"],
                   "error: cannot read the GGUF header of 'garbage.gguf'")  # fmt: skip


def test_flash_attention_without_its_package_says_what_to_install(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "flash_attn", None)
    assert_refused(cli, tmp_path, ["generate", "--prompt", "hi", "--attn", "flash_attention_2"],
                   "error: --attn flash_attention_2 needs the flash-attn package: pip install flash-attn")  # fmt: skip


@pytest.mark.slow
def test_a_gguf_cut_short_is_one_line_when_converted(tmp_path):
    """The header is whole, so the checks pass; the tensors are cut, which only converting finds."""
    from painters.models.embedded import embedded_path
    from painters.models.loading import dequantized

    source = embedded_path("smollm2-135m").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(source[: len(source) * 3 // 4])
    with pytest.raises(PaintersError, match=r"^cannot convert 'cut.gguf' \(.*\): the file is damaged or cut short$"):
        dequantized(tmp_path / "cut.gguf", tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # its staging removed


# 8: options accepted but meaningless are refused; options out of range are named
@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "-m", "minilm-l6", "--tasks", "sst2", "--protocol", "finetune", "--learning-rate", "-1"],
         "error: --learning-rate -1.0 is out of range: give a rate between 0 and 1"),
        (["eval", "-m", "minilm-l6", "--tasks", "sst2", "--seed", "-1"], "error: --seed -1 is out of range"),
        (["eval", "-m", "minilm-l6", "--tasks", "sst2", "--learning-rate", "1e-4"],
         "error: --learning-rate applies to --protocol finetune only: a probe trains no network"),
        (["eval", "-m", "minilm-l6", "--tasks", "sst2", "--epochs", "2"], "error: --epochs applies to --protocol finetune"),
        (["eval", "--tasks", "arc_easy", "--skip-generation"],
         "error: --skip-generation applies to gsm8k (a generation task), and it is not among the tasks"),
        (["sweep", "--db", "x.db", "--tasks", "arc_easy", "--skip-generation"], "error: --skip-generation applies to gsm8k"),
        (["eval", "--tasks", "arc_easy", "--exact-attention"],
         "error: --exact-attention applies to gsm8k (a generation task), and it is not among the tasks"),
        (["sweep", "--db", "x.db", "--tasks", "gsm8k", "--skip-generation", "--exact-attention"],
         "error: --exact-attention says how gsm8k generates, and --skip-generation skips generation"),
        (["paper", "--out", "p", "--exact-attention"],
         "error: --exact-attention says how gsm8k generates, which only --full runs: give --full too"),
        (["sweep", "--db", "x.db", "--variants", "skip", "--seeds", "3"],
         "error: --seeds applies to the shuffle variant, and it is not among --variants"),
        (["sweep", "--db", "x.db", "--variants", "skip", "--loops", "2"], "error: --loops applies to the looped_parallel"),
        (["search", "--db", "x.db", "--remove", "0"], "error: --remove needs layer counts of at least 1"),
        (["search", "--db", "x.db", "--remove", "30"], "error: --remove 30 leaves no layer: the model has 30; give 1 to 29"),
        (["search", "--db", "x.db", "--remove", "two"], "error: bad value 'two' for --remove (layer calls, e.g. 3,6,9): expected a whole number"),
        (["search", "--db", "x.db", "--remove", "6", "--method", "sleb"], "error: unknown --method 'sleb'"),
        (["search", "--db", "x.db", "--remove", "6", "--baselines", "middle,beam"], "error: unknown --baselines 'beam'"),
        (["search", "--db", "x.db", "--remove", "6", "--space", "wide"], "error: unknown --space 'wide'"),
        (["search", "--db", "x.db", "--remove", "6", "--objective", "acc"], "error: unknown --objective 'acc'"),
        (["search", "--db", "x.db", "--remove", "6", "--calibration", "lambada_openai:0-99"],
         "error: --calibration lambada_openai:0-99 (documents 0-99) overlaps the held-out evaluation of lambada_openai"),
        (["search", "--db", "x.db", "--remove", "6", "--calibration", "arc_easy:9999"],
         "error: --calibration arc_easy:9999: arc_easy has"),
        (["search", "--db", "x.db", "--remove", "6", "--calibration", "lambada_openai:8", "--text-file", "afile"],
         "error: give --calibration or --text-file, not both"),
        (["search", "--db", "x.db", "--remove", "2", "-m", "minilm-l6"], "error: the model is an encoder"),
        (["bench", "--plans", "skip:n=2", "-m", "minilm-l6", "--new-tokens", "4"],
         "error: --new-tokens sets how many tokens to decode, and an encoder decodes none"),
    ],
)  # fmt: skip
def test_options_that_mean_nothing_are_refused(cli, tmp_path, args, message):
    assert_refused(cli, tmp_path, args, message)


# 9: invalid UTF-8 on the command line (Python hands it over as lone surrogates)
def test_a_prompt_that_is_not_utf8_is_one_line(cli, tmp_path):
    prompt = b"\xff\xfe".decode("utf-8", "surrogateescape")
    assert_refused(
        cli, tmp_path, ["generate", "--prompt", prompt], "error: --prompt is not UTF-8 text: give it in UTF-8"
    )


# 10: a damaged store is neither read nor written
def _damage(path: Path) -> None:
    with path.open("r+b") as f:
        f.seek(8192)
        f.write(b"\xde\xad" * 2000)


@pytest.mark.parametrize(
    "args",
    [["sweep", "--db", "s.db", "--limit", "1"], ["results", "--db", "s.db"], ["report", "--db", "s.db", "--out", "r"]],
)
def test_a_damaged_store_is_named_and_left_alone(cli, tmp_path, store, args):
    _damage(store)
    assert_refused(cli, tmp_path, args, "error: 's.db' is damaged (database disk image is malformed")


def test_an_intact_store_passes_the_integrity_check(store):
    from painters.study.store import open_existing

    with open_existing(store) as opened:
        assert opened.query("SELECT COUNT(*) AS n FROM cells")[0]["n"] > 0
    assert sqlite3.connect(store).execute("PRAGMA quick_check").fetchone() == ("ok",)


# 11: checks that ran only after the model loaded
@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "--plans", "0-40"], "error: layer 40 in step '0-40' is out of range: this model has 30 layers"),
        (["bench", "--plans", "skip:n=40"], "error: n=40 is out of range: the model has 30 layers"),
        (["bench", "--plans", "skip:n=2", "--prompt-tokens", "9000"],
         "error: --prompt-tokens 9000 plus --new-tokens 32 exceed the model's 8192 positions: give fewer tokens"),
        (["export", "--out", "o", "--plan", "parallel:n=6"], "error: plan '0-11,[12-17],18-29' runs parallel blocks"),
        (["export", "--out", "o", "--plan", "0-40"], "error: layer 40 in step '0-40' is out of range"),
    ],
)  # fmt: skip
def test_plan_and_shape_checks_come_before_loading(cli, tmp_path, args, message):
    assert_refused(cli, tmp_path, args, message)


def test_lm_eval_missing_is_said_before_loading(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lm_eval", None)
    assert_refused(cli, tmp_path, ["eval", "--harness", "lm-eval", "--tasks", "arc_easy"],
                   "error: --harness lm-eval needs lm-eval-harness: pip install 'painters[lm-eval]'")  # fmt: skip


# Ctrl-C: exit code 130 and one line, from every command that runs long
@pytest.mark.parametrize(
    "args",
    [
        ["eval", "--limit", "2"],
        ["similarity", "--out", "o"],
        ["suggest", "--n", "2"],
        ["generate", "--prompt", "hi"],
        ["bench", "--plans", "skip:n=2"],
        ["export", "--out", "o", "--plan", "skip:n=2"],
        ["sweep", "--db", "x.db", "--n", "2", "--limit", "1"],
        ["paper", "--out", "p", "--limit", "1"],
        ["search", "--db", "x.db", "--remove", "2"],
    ],
)
def test_ctrl_c_is_130_and_one_line_for_every_long_command(cli, tmp_path, monkeypatch, args):
    import painters.models.loading

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(painters.models.loading, "load_model", interrupted)
    before = on_disk(tmp_path)
    code, _, err = cli(*args)
    assert (code, err.splitlines()[-1]) == (130, "interrupted"), err
    assert "Traceback" not in err
    assert on_disk(tmp_path) == before


def test_a_pending_log_in_a_read_only_folder_is_named_as_such(cli, tmp_path, store, monkeypatch):
    """Root writes anywhere, so SQLite's answer for a read-only folder is stood in for."""
    import painters.study.store

    (tmp_path / "s.db-wal").write_bytes(b"\0" * 32)

    def connect(*args, **kwargs):
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(painters.study.store.sqlite3, "connect", connect)
    assert_refused(cli, tmp_path, ["results", "--db", "s.db"],
                   "error: 's.db' has changes in its write-ahead log that SQLite can only read with write access")  # fmt: skip


def test_a_prompt_past_the_context_is_refused_before_the_weights_load(cli, tmp_path, tiny_folder):
    """The tiny model takes 512 positions; the tokenizer alone counts the prompt."""
    assert_refused(cli, tmp_path, ["generate", "-m", str(tiny_folder), "--prompt", "The quick brown fox " * 200],
                   "error: 1000 prompt tokens and --max-new-tokens 32 exceed the model's context of 512 tokens")  # fmt: skip
    with pytest.raises(Loaded):
        cli("generate", "-m", str(tiny_folder), "--prompt", "The quick brown fox")
