"""Bad and edge-case input on the command line: one line on stderr, exit code 2, no traceback, nothing
created or changed on disk, and all of it before a model loads. One test per defect of issue 14."""

import hashlib
import importlib.util
import json
import sqlite3
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from refusals import Loaded, assert_refused
from safetensors.torch import save_file

import painters.models.loading
import painters.tasks.data
from painters import Plan
from painters.checks import comma_list
from painters.core.errors import PaintersError
from painters.core.grammar import PlanError
from painters.core.variants import VARIANTS
from painters.study.store import Store
from painters.tasks.evaluation import format_table
from painters.tasks.metrics import aggregate

STORE = Path(__file__).parent.parent / "docs" / "figures" / "paper-smollm2-135m" / "results.db"
RECORDLESS = STORE.parent.parent / "paper-minilm-l6" / "results.db"  # written before stores kept records


NEEDS_RAY = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is optional (painters[ray])")
DEFECTS = [
    # 1: a missing --data-dir (or a file) is an error, not the bundled data
    (["eval", "--data-dir", "./no_such_dir"], "error: --data-dir 'no_such_dir' does not exist: give a folder"),
    (["similarity", "--out", "o", "--data-dir", "afile"], "error: --data-dir 'afile' is a file, not a folder"),
    # 2: a 0-byte file is not a store, and reading never makes one
    (["results", "--db", "empty.db"], "error: 'empty.db' is an empty file, not a painters results store"),
    (["report", "--db", "empty.db", "--out", "r"], "error: 'empty.db' is an empty file, not a painters results store"),
    # 3: GLUE folds need items of every class; the message gives the smallest limit that works
    (["eval", "--model", "minilm-l6", "--tasks", "sst2", "--limit", "2"],
     "error: sst2: 2 items are too few for 5-fold cross-validation (each class needs 5 items): use --limit 10 or more"),
    (["eval", "--model", "minilm-l6", "--tasks", "sst2", "--limit", "6"],
     "error: sst2: 6 items are too few for 5-fold cross-validation (each class needs 5 items): use --limit 10 or more"),
    (["eval", "--model", "minilm-l6", "--tasks", "sst2", "--limit", "4", "--folds", "2"],
     "error: sst2: 4 items are too few for 2-fold cross-validation (each class needs 2 items): use --limit 5 or more"),
    (["sweep", "--db", "x.db", "--model", "minilm-l6", "--tasks", "sst2", "--n", "1:2", "--limit", "4"],
     "error: sst2: 4 items are too few for 5-fold cross-validation"),
    # 5: output paths are checked before any work
    (["eval", "--json", "./nodir/s.json"], "error: --json 'nodir/s.json': the folder 'nodir' does not exist"),
    (["eval", "--json", "emptydir"], "error: --json 'emptydir' is a folder: give a file name inside it"),
    (["results", "--db", str(STORE), "--csv", "./nodir/o.csv"], "error: --csv 'nodir/o.csv': the folder 'nodir'"),
    (["report", "--db", str(STORE), "--out", "afile"], "error: --out 'afile' is an existing file, not a folder"),
    (["paper", "--out", "afile"], "error: --out 'afile' is an existing file, not a folder"),
    (["similarity", "--out", "afile"], "error: --out 'afile' is an existing file, not a folder"),
    # 6: bad models
    (["layers", "--model", "./emptydir"], "error: folder './emptydir' holds no model: a model folder has a config.json"),
    (["layers", "--model", ""], "error: empty --model: give an embedded name (smollm2-135m, minilm-l6, gemma3-270m)"),
    (["layers", "--model", "garbage.gguf"], "error: cannot read the GGUF header of 'garbage.gguf' (it does not start with 'GGUF')"),
    (["paper", "--model", "./emptydir"], "error: folder './emptydir' holds no model"),
    (["layers", "--model", "afile"], "error: 'afile' is a file but not a .gguf"),
    # 7
    (["generate", "--prompt", ""], "error: empty --prompt: give the text to continue"),
    # 8: no plan beyond the layer-call cap, however it is built
    (["generate", "--prompt", "hi", "--plan", "looped_parallel:n=6,loops=20000"],
     "error: loops=20000 runs more than 100000 layer calls: give at most 16666 loops"),
    (["plan", "looped_parallel", "--layers", "30", "--n", "6", "--loops", "1000000"],
     "error: loops=1000000 runs more than 100000 layer calls: give at most 16666 loops"),
    # 9
    (["sweep", "--db", "x.db", "--tasks", ""], "error: no values given for --tasks: pass a comma list"),
    (["sweep", "--db", "x.db", "--tasks", " , "], "error: no values given for --tasks: pass a comma list"),
    # 10: plan, kind, grid errors before the model loads and before the store exists
    (["eval", "--plan", "0-11,,x"], "error: empty step in plan '0-11,,x'"),
    (["eval", "--model", "minilm-l6", "--tasks", "arc_easy"], "error: the model is an encoder: arc_easy needs a decoder"),
    (["sweep", "--db", "x.db", "--variants", "looped_parallel", "--loops", "0"], "error: loops=0 is out of range"),
    (["sweep", "--db", "x.db", "--seeds", "0"], "error: --seeds 0 is out of range: give at least 1"),
    (["sweep", "--db", "x.db", "--n", "40"], "error: n=40 is out of range: the model has 30 layers (valid n: 0-29)"),
    (["suggest", "--n", "30"], "error: --n 30 is out of range: drop between 1 and 29 of the plan's steps"),
    # 11: messages that say what is wrong
    (["sweep", "--db", "nodir/x.db"], "error: --db 'nodir/x.db': the folder 'nodir' does not exist; create it first"),
    (["plan", "skip", "--layers", "30", "--n", "30"], "error: n=30 is out of range: the model has 30 layers (valid n: 0-29)"),
    (["plan", "skip", "--layers", "30", "--band", "5:3"], "error: band 5:3 is reversed: a band A:B needs A <= B"),
    (["eval", "--plan", "skip:foo=1"], "error: unknown option 'foo' for variant 'skip' in 'skip:foo=1': valid options are n, band"),
    (["eval", "--plan", "0 29"], "error: missing comma in plan '0 29' at '0 29'"),
    (["generate", "--prompt", "hi", "--model", "minilm-l6"], "error: the model is an encoder: generation needs a decoder"),
    # 12: no silent aliases
    (["plan", "shuffle", "--layers", "30", "--n", "4", "--seed", "-1"], "error: seed=-1 is out of range"),
    (["eval", "--plan", "skip:n=٣"], "error: bad value '٣' for option 'n' in 'skip:n=٣': expected a whole number"),
    (["similarity", "--out", "o", "--task", "arc_easy", "--text-file", "afile"], "error: give --task or --text-file, not both"),
    (["eval", "--tasks", "arc_easy", "--folds", "3"], "error: --folds applies to the GLUE tasks (sst2, mrpc, rte) only"),
    (["sweep", "--db", "x.db", "--protocol", "finetune"], "error: --protocol applies to the GLUE tasks"),
    # 14
    (["generate", "--prompt", "hi", "--max-new-tokens", "100000"],
     "error: --max-new-tokens 100000 does not fit the model's context of 8192 tokens: give at most 8191"),
    (["eval", "--limit", "x"], "error: Invalid value for '--limit'"),  # the rest is typer's words, which vary
    (["eval", "--bogus"], "error: No such option: --bogus (see `painters eval --help`)"),
    (["nope"], "error: No such command 'nope'."),
    # Ray (issue 11): workers' options need --ray; a cluster that is not there is one line
    (["sweep", "--db", "x.db", "--workers", "2"], "error: --workers sets the Ray workers: give --ray auto|HOST:PORT|local too"),
    pytest.param(["sweep", "--db", "x.db", "--ray", "nonsense"],
                 "error: --ray nonsense: give auto, local, or the head node's HOST:PORT", marks=NEEDS_RAY),
    pytest.param(["sweep", "--db", "x.db", "--ray", "127.0.0.1:1"],
                 "error: no Ray cluster at --ray 127.0.0.1:1 (Connection refused)", marks=NEEDS_RAY),
    pytest.param(["sweep", "--db", "x.db", "--ray", "auto"],
                 "error: no Ray cluster at --ray auto (Could not find any running Ray", marks=NEEDS_RAY),
    (["results", "--db", str(RECORDLESS), "--samples", "s.jsonl"], f"error: '{RECORDLESS}' holds no per-document records"),
    (["results", "--db", str(STORE), "--samples", "s.jsonl", "--csv", "t.csv"], "error: give --csv (the table) or --samples"),
]  # fmt: skip


@pytest.mark.parametrize("args, message", DEFECTS)
def test_each_defect_is_one_line_exit_2_and_leaves_the_disk_alone(cli, tmp_path, args, message):
    assert_refused(cli, tmp_path, args, message)


ARC = {"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "A"}


def test_ray_without_ray_installed_says_how_to_install_it(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert_refused(cli, tmp_path, ["sweep", "--db", "x.db", "--ray", "local"],
                   "error: --ray needs Ray, which is not installed: pip install 'painters[ray]' (ray>=2.60)")  # fmt: skip


@pytest.mark.parametrize(
    "content, message",
    [
        (json.dumps({**ARC, "answerKey": "E"}), "arc_easy.jsonl line 1: field 'answerKey' is \"E\": it must be one of"),
        (json.dumps({**ARC, "choices": ["a", "b"]}), 'arc_easy.jsonl line 1: field \'choices\' is ["a", "b"]'),
        ("3", "arc_easy.jsonl line 1: a row must be a JSON object"),
        (b"\xff\xfe\n", "arc_easy.jsonl line 1 is not UTF-8 text"),
        (None, "arc_easy.jsonl is not a file"),
    ],
)
def test_bad_rows_in_data_dir_name_the_file_line_and_field(cli, tmp_path, content, message):
    data = tmp_path / "data"
    data.mkdir()
    target = data / "arc_easy.jsonl"
    if content is None:
        target.mkdir()
    else:
        target.write_bytes(content if isinstance(content, bytes) else content.encode() + b"\n")
    assert_refused(cli, tmp_path, ["eval", "--data-dir", "data"], "error: data/" + message)


def test_a_subset_in_data_dir_is_accepted_and_said_once(cli, tmp_path, tiny_folder):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "arc_easy.jsonl").write_text((json.dumps(ARC) + "\n") * 3)
    with pytest.raises(Loaded):  # every check passed: the model would load now
        cli("eval", "-m", str(tiny_folder), "--data-dir", "data", "--limit", "2")


def test_reading_a_store_never_writes(cli, tmp_path):
    """results and report open the store read-only: no -wal/-shm, no change, and a read-only file works."""
    store = tmp_path / "store.db"
    store.write_bytes(STORE.read_bytes())
    store.chmod(0o444)
    before = store.read_bytes()
    code, out, err = cli("results", "--db", "store.db")
    assert code == 0, err
    assert len(out.splitlines()) == 1 + 2070  # header; 396 (cell, grid point) pairs, one row per non-stderr metric
    code, out, err = cli("report", "--db", "store.db", "--out", "report")
    assert code == 0, err
    assert store.read_bytes() == before
    assert sorted(p.name for p in tmp_path.glob("store.db*")) == ["store.db"]
    with Store(store, read_only=True) as opened, pytest.raises(sqlite3.OperationalError, match="readonly"):
        opened._db.execute("DELETE FROM cells")


def test_an_empty_store_has_no_results_to_show(cli, tmp_path):
    Store(tmp_path / "new.db").close()
    assert_refused(cli, tmp_path, ["results", "--db", "new.db"], "error: the store 'new.db' has no results yet")


def test_an_existing_non_store_is_refused_before_the_model_loads(cli, tmp_path):
    assert_refused(cli, tmp_path, ["sweep", "--db", "afile"], "error: 'afile' is not a painters results store")
    assert_refused(cli, tmp_path, ["sweep", "--db", "emptydir"], "error: --db 'emptydir' is not a file")


def test_a_truncated_cached_model_is_rebuilt(tmp_path, monkeypatch, capsys):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + bytes(100))
    builds = []

    def write(source, folder):
        builds.append(source)
        save_file({"w": __import__("torch").zeros(4)}, str(folder / "model.safetensors"))

    monkeypatch.setattr(painters.models.loading, "_write_dequantized", write)
    cached = painters.models.loading.dequantized(gguf, tmp_path / "cache")
    assert painters.models.loading.dequantized(gguf, tmp_path / "cache") == cached and len(builds) == 1
    weights = cached / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])  # a copy cut short
    assert painters.models.loading.dequantized(gguf, tmp_path / "cache") == cached and len(builds) == 2
    assert (
        capsys.readouterr().err == f"note: the cached model {cached} is damaged or not this version's: rebuilding it\n"
    )
    assert painters.models.loading._readable(weights)


def test_a_cached_model_is_keyed_by_its_source_and_converter(tmp_path, monkeypatch, capsys):
    """Another transformers (or gguf) version, or another source file, writes another folder; a folder whose
    record is missing or names other versions (copied from elsewhere) is rebuilt, never reused."""
    loading = painters.models.loading
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + bytes(100))
    builds = []
    monkeypatch.setattr(loading, "_write_dequantized", lambda source, folder: builds.append(source) or save_file(
        {"w": __import__("torch").zeros(4)}, str(folder / "model.safetensors")))  # fmt: skip
    cached = loading.dequantized(gguf, tmp_path / "cache")
    record = json.loads((cached / "painters-cache.json").read_text())
    assert record == {"source_sha256": hashlib.sha256(gguf.read_bytes()).hexdigest(), "layout": "hf",
                      **painters.core.versions.converter_versions()}  # fmt: skip
    monkeypatch.setattr(loading, "converter_versions", lambda: {"transformers": "5.0.0.test", "gguf": "0.0.test"})
    other = loading.dequantized(gguf, tmp_path / "cache")
    assert other != cached and len(builds) == 2
    gguf.write_bytes(b"GGUF" + bytes(101))
    assert loading.dequantized(gguf, tmp_path / "cache") not in (cached, other) and len(builds) == 3
    gguf.write_bytes(b"GGUF" + bytes(100))
    (other / "painters-cache.json").write_text(json.dumps({**record, "transformers": "5.99.0"}))  # from elsewhere
    assert loading.dequantized(gguf, tmp_path / "cache") == other and len(builds) == 4
    (other / "painters-cache.json").unlink()
    assert loading.dequantized(gguf, tmp_path / "cache") == other and len(builds) == 5
    assert loading.dequantized(gguf, tmp_path / "cache") == other and len(builds) == 5
    assert capsys.readouterr().err.count("not this version's: rebuilding it") == 2


def test_duplicates_in_comma_lists_count_once():
    assert comma_list("arc_easy, winogrande,arc_easy,", "--tasks", "x") == ["arc_easy", "winogrande"]
    with pytest.raises(PaintersError, match="no values given for --tasks"):
        comma_list(" , ", "--tasks", "x")


def test_one_document_has_undefined_standard_errors_alike():
    assert aggregate("perplexity", [-2.0])[1] != aggregate("perplexity", [-2.0])[1]  # nan
    assert aggregate("acc", [1.0])[1] != aggregate("acc", [1.0])[1]
    table = format_table(
        {
            "plan": "0-5",
            "results": {
                "lambada_openai": {
                    "perplexity": 7.39,
                    "perplexity_stderr": float("nan"),
                    "acc": 1.0,
                    "acc_stderr": float("nan"),
                    "docs": 1,
                }
            },
        }
    )
    assert [line.split()[3] for line in table.splitlines()[2:]] == ["nan", "nan"]  # fmt: skip


def test_help_is_plain_and_flags_have_no_metavar(cli):
    code, out, _ = cli("paper", "--help")
    assert code == 0
    assert "<bool>" not in out and "╭" not in out
    assert "--data-dir" in out and "--full " in out


@pytest.mark.parametrize("command", ["eval", "sweep", "similarity", "suggest"])
def test_task_and_tasks_are_one_option(cli, tmp_path, command):
    """--task and --tasks name the same option in every command that reads tasks."""
    out = ["--db", "x.db"] if command == "sweep" else ["--out", "o"] if command == "similarity" else []
    extra = ["--n", "2"] if command == "suggest" else []
    for flag in ("--task", "--tasks"):
        assert_refused(cli, tmp_path, [command, *out, *extra, flag, "nope"], "error: unknown task 'nope'")


def test_suggest_takes_a_plan_and_the_similarity_options(cli, tmp_path):
    assert_refused(cli, tmp_path, ["suggest", "--n", "2", "--plan", "0-30"], "error: layer 30 in step '0-30'")
    assert_refused(
        cli, tmp_path, ["suggest", "--n", "2", "--max-length", "0"], "error: Invalid value for '--max-length'"
    )
    assert_refused(
        cli, tmp_path, ["suggest", "--n", "2", "--batch-size", "0"], "error: Invalid value for '--batch-size'"
    )


# The fuzz tests: random plan text and option values never crash the parser or the command line.

PLAN_TEXT = st.text(alphabet="0123456789-,[]x :=abcdeflnoprsuwy٣\n", max_size=40)


@settings(max_examples=400, deadline=None)
@given(text=PLAN_TEXT, layers=st.integers(1, 40))
def test_random_plan_text_is_a_plan_or_one_line_error(text, layers):
    try:
        plan = Plan.resolve(text, layers)
    except PlanError as error:
        assert "\n" not in str(error)
    else:
        assert Plan.parse(str(plan), layers) == plan


NUMBER = st.one_of(st.integers(-5, 40).map(str), st.sampled_from(["", "x", "1.5", "٣", "10**9", "1000000", "-0"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    variant=st.sampled_from([*VARIANTS, "bogus"]),
    options=st.dictionaries(st.sampled_from(["--n", "--band", "--seed", "--loops", "--layer"]), NUMBER, max_size=3),
    layers=NUMBER,
)
def test_random_plan_options_print_a_plan_that_round_trips_or_one_line_error(cli, variant, options, layers):
    args = ["plan", variant, "--layers", layers, *[part for item in options.items() for part in item]]
    code, out, err = cli(*args)
    if code == 0:
        plan = Plan.parse(out.strip(), int(layers))
        spec = variant + ":" + ",".join(f"{k[2:]}={v}" for k, v in options.items())
        assert Plan.resolve(spec if options else variant, int(layers)) == plan  # the --plan form agrees
    else:
        assert (code, err.count("\n")) == (2, 1) and err.startswith("error: "), err


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plan=PLAN_TEXT,
    n=st.sampled_from(["2:28:2", "1,2", "0", "", "5:1", "2:x", "40", "1:3:0"]),
    loops=st.sampled_from(["3", "1:4", "0", "", "100000"]),
    seeds=st.sampled_from(["1", "0", "-1", "x"]),
    limit=st.sampled_from(["1", "0", "-3", "x"]),
)
def test_random_command_lines_fail_in_one_line_or_reach_the_model(cli, tmp_path, plan, n, loops, seeds, limit):
    folder = tmp_path / "tiny"
    if not folder.exists():
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 6}))
    for args in (
        ["sweep", "--db", "x.db", "--model", "tiny", "--variants", "skip,looped_parallel", "--n", n, "--loops", loops,
         "--seeds", seeds, "--limit", limit, "--tasks", "piqa"],
        ["eval", "--model", "tiny", "--plan", plan, "--limit", limit, "--tasks", "piqa"],
    ):  # fmt: skip
        try:
            code, _, err = cli(*args)
        except Loaded:
            continue
        assert (code, err.count("\n")) == (2, 1) and err.startswith("error: "), err
        assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("text", ["0", "0,1", "0-5"])
def test_short_plans_draw_their_figures_without_warnings(text, tmp_path):
    """A one-step plan has no block to compare: its importance figure has one panel, and matplotlib stays quiet."""
    import warnings
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from painters.analysis.figures import heatmap, importance_figure
    from painters.analysis.importance import importance_table

    plan = Plan.parse(text)
    states = len(plan.units) + 1
    result = SimpleNamespace(plan=plan, cosine=pd.DataFrame(np.eye(states)), angular=pd.DataFrame(np.eye(states)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importance_figure(importance_table(result), "title", tmp_path / "importance.png")
        heatmap(result.cosine, "title", tmp_path / "cosine.png", "cosine")
    assert (tmp_path / "importance.png").stat().st_size > 0


def test_the_gguf_header_gives_layers_and_context_and_a_cut_file_is_an_error(tmp_path):
    from painters.checks import model_source
    from painters.models.embedded import embedded_path

    assert model_source("smollm2-135m") == model_source(str(embedded_path("smollm2-135m")))
    facts = model_source("smollm2-135m")
    assert (facts.num_layers, facts.encoder, facts.context_length) == (30, False, 8192)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(embedded_path("smollm2-135m").read_bytes()[:200])
    with pytest.raises(PaintersError, match=r"cannot read the GGUF header of '.*cut.gguf' \(unpack requires"):
        model_source(str(cut))


def test_a_sweep_into_a_read_only_store_is_refused_before_any_work(cli, tmp_path, monkeypatch):
    """Root writes anywhere, so the file system's answer is stood in for: the check tries to open the file."""
    import painters.checks

    (tmp_path / "store.db").write_bytes(STORE.read_bytes())
    monkeypatch.setattr(painters.checks, "_can_rewrite", lambda path: False)
    assert_refused(
        cli,
        tmp_path,
        ["sweep", "--db", "store.db"],
        "error: --db 'store.db' is read-only: a sweep writes into its store",
    )


def test_bundled_data_without_the_datasets_library_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` raises ImportError
    with pytest.raises(PaintersError) as raised:
        painters.tasks.data.load_docs("hellaswag")
    assert str(raised.value) == (
        "hellaswag's bundled data (a datasets folder) needs the datasets library: pip install 'painters[datasets]'"
    )
    assert len(painters.tasks.data.load_docs("arc_easy")) == 2376  # request files need no datasets


def test_a_gguf_without_the_gguf_library_says_what_to_install(tmp_path, monkeypatch):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + bytes(100))
    monkeypatch.setattr(painters.models.loading.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PaintersError) as raised:
        painters.models.loading.dequantized(gguf, tmp_path / "cache")
    assert str(raised.value) == "converting 'm.gguf' needs the gguf library: pip install 'painters[gguf]'"
    assert not (tmp_path / "cache").exists()
