"""The command line: outputs, and one-line errors with exit code 2."""

import os
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from painters import Plan
from painters.analysis.files import FILES
from painters.cli import app

runner = CliRunner()


@pytest.fixture
def painters(painters_cache):
    """Run the real console entry point in a fresh process, as a user would."""
    code = "import sys; from painters.cli import main; sys.argv = ['painters', *sys.argv[1:]]; main()"

    def run(*args):
        env = {**os.environ, "PAINTERS_CACHE": str(painters_cache)}
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env)

    return run


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["plan", "skip", "--layers", "30", "--n", "6"],
        ["eval", "--limit", "0"],
        ["eval", "--tasks", "nope", "--device", "cuda:3"],
        ["sweep", "--db", "s.db", "--n", "99"],
        ["paper", "--device", "gpu"],
        ["similarity", "--out", "o", "--dtype", "float8"],
    ],
)
def test_what_needs_no_model_imports_no_torch(args, tmp_path):
    """The command line answers help, plan text and bad input without torch or transformers (their imports
    take seconds): a fresh process that imports either here fails. Timings: benchmarks/startup.py."""
    code = (
        "import sys; from painters.cli import main; sys.argv = ['painters', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit as done:\n    code = done.code\n"
        "print(code, 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    expected_code = "0" if args[0] in ("--help", "plan") else "2"
    assert done.stdout.splitlines()[-1].split() == [expected_code, "False", "False"], done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, text",
    [
        (["swap", "--layers", "30", "--layer", "4"], "0-3,5-4,6-29"),
        (["skip", "--layers", "30", "--n", "6"], "0-11,18-29"),
        (["looped_parallel", "--layers", "30", "--n", "6"], "0-11,[12-17]x3,18-29"),
        (["looped_parallel", "--layers", "30", "--band", "10:14", "--loops", "2"], "0-9,[10-13]x2,14-29"),
        (["shuffle", "--layers", "30", "--n", "8", "--seed", "1"], "0-10,14,17,12,16,18,11,15,13,19-29"),
        (["middle_repeat", "--layers", "30", "--n", "6"], "0-11,15x6,18-29"),
        (["full", "--layers", "30"], "0-29"),
    ],
)
def test_plan_prints_the_plan_text(args, text):
    result = runner.invoke(app, ["plan", *args])
    assert result.exit_code == 0, result.output
    assert result.output == text + "\n"


@pytest.mark.parametrize(
    "args, message",
    [
        (["plan", "bogus", "--layers", "30"], "error: unknown variant 'bogus': valid variants are full, skip"),
        (["plan", "skip", "--layers", "30", "--n", "40"], "error: n=40 is out of range"),
        (["plan", "skip", "--layers", "30", "--band", "3-5"], "error: bad band '3-5'"),
        (["generate", "--prompt", "hi", "--model", "./no/such/folder"], "error: no model at './no/such/folder'"),
        (["layers", "--model", "org/not-here"], "error: cannot load model 'org/not-here'"),
        (["eval", "--tasks", "arc_easy,bogus"], "error: unknown task 'bogus': valid tasks are arc_easy, arc_challenge"),
        (["eval", "--tasks", ","], "error: no values given for --tasks: pass a comma list"),
        (["eval", "--limit", "0"], "error: --limit 0 is out of range"),
        (["eval", "--harness", "lm-eval", "--data-dir", "."], "error: --data-dir works with the painters harness only"),
        (["eval", "--harness", "nope"], "error: unknown harness 'nope'"),
        (["similarity", "--out", "o", "--text-file", "/no/such.txt"], "error: cannot read text file '/no/such.txt'"),
        (["similarity", "--out", "o", "--limit", "0"], "error: --limit 0 is out of range"),
        (["similarity", "--out", "o", "--task", "nope"], "error: unknown task 'nope'"),
        (["suggest", "--n", "2", "--metric", "bi"], "error: unknown metric 'bi': valid metrics are block_influence"),
        (["suggest", "--n", "0"], "error: --n 0 is out of range: drop at least 1 layer"),
        (["eval", "--device", "cuda:99"], "error: --device cuda:99: this machine has"),
        (["generate", "--prompt", "x", "--device", "npu"], "error: unknown --device 'npu': valid devices are auto"),
        (["layers", "--dtype", "float8"], "error: unknown --dtype 'float8': valid dtypes are auto, float32"),
        (["similarity", "--out", "o", "--device-map", "all"], "error: unknown --device-map 'all': valid maps"),
        (["suggest", "--n", "2", "--attn", "flash"], "error: unknown --attn 'flash': valid kernels are sdpa"),
        (["plan", "skip", "--n", "6"], "error: give one of --layers L (the number of layers) and --model M"),
        (["export", "--out", "o", "--plan", "0-3,[4-5]x2,6-29", "-m", "/no/such"], "error: plan '0-3,[4-5]x2,6-29' runs"),
        (["export", "--out", "o", "--plan", "skip:n=6", "--format", "gguf"], "error: unknown format 'gguf': valid"),
        (["bench", "--plans", " ; "], "error: no plans given: pass --plans with plans separated by ';'"),
        (["bench", "--plans", "skip:n=6;0-3,[4-5", "-m", "/no/such"], "error: unbalanced brackets in plan '0-3,[4-5'"),
        (["bench", "--plans", "skip:n=6", "--rounds", "0"], "error: --rounds 0 is out of range"),
    ],
)
def test_bad_input_is_one_line_exit_2_no_traceback(painters, args, message):
    result = painters(*args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_layers_describes_the_embedded_models():
    result = runner.invoke(app, ["layers", "--model", "minilm-l6"])
    assert result.exit_code == 0, result.output
    assert "BertModel (bert, encoder)" in result.output
    assert "layers        6\n" in result.output
    assert "hidden size   384\n" in result.output
    assert "parameters    22,713,216\n" in result.output
    assert "weights       0.08 GiB\n" in result.output  # float32 on this CPU
    assert "KV cache      0.000 GiB per 1,000 tokens\n" in result.output  # an encoder keeps no cache


@pytest.mark.slow
def test_plan_with_a_model_reads_its_layers_and_prints_the_cost(painters):
    result = painters("plan", "skip", "--n", "6", "--model", "smollm2-135m", "--dtype", "bfloat16")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "0-11,18-29\n"  # the cost goes to stderr, so $(painters plan ...) stays a plan
    assert "layer calls   24\n" in result.stderr
    assert "weights       0.25 GiB\n" in result.stderr  # 134,515,008 parameters in bfloat16
    assert "KV cache      0.017 GiB per 1,000 tokens\n" in result.stderr  # 24 calls x 3 heads x 64 x 2 x 2 bytes


@pytest.mark.slow
def test_generate_under_a_plan_and_its_errors(painters):
    full = painters("generate", "--prompt", "The capital of France is", "--max-new-tokens", "4")
    assert full.returncode == 0, full.stderr
    assert full.stdout.strip().startswith("Paris")
    assert "plan: 0-29" in full.stderr
    bad = painters("generate", "--prompt", "x", "--plan", "0-30")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "error: layer 30 in step '0-30' is out of range: this model has 30 layers (valid indices 0-29)"
    )
    encoder = painters("generate", "--prompt", "x", "--model", "minilm-l6")
    assert encoder.returncode == 2
    assert "is an encoder" in encoder.stderr


def test_similarity_rejects_a_text_file_without_text(painters, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    result = painters("similarity", "--out", str(tmp_path / "out"), "--text-file", str(empty))
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1] == f"error: text file '{empty}' has no text: give one document per line"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_similarity_writes_the_matrices_and_suggest_prints_a_plan(painters, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("The cat sat on the mat and looked out of the window.\n\nParis is the capital of France.\n")
    out = tmp_path / "out"
    result = painters("similarity", "--out", str(out), "--text-file", str(text), "--plan", "0-9,[10-13],14-29")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    cosine = pd.read_csv(out / "cosine.csv", index_col=0)
    labels = ["embeddings", *map(str, range(10)), "[10-13]", *map(str, range(14, 30))]
    assert list(cosine.index) == list(cosine.columns) == labels
    np.testing.assert_allclose(np.diag(cosine), 1.0, atol=1e-6)
    np.testing.assert_allclose(cosine.to_numpy(), cosine.to_numpy().T, atol=1e-12)
    importance = pd.read_csv(out / "importance.csv")
    assert list(importance.columns) == ["metric", "n", "start", "layers", "value", "best"]
    suggested = painters("suggest", "--n", "4", "--metric", "angular", "--text-file", str(text))
    assert suggested.returncode == 0, suggested.stderr
    plan = Plan.parse(suggested.stdout.strip(), 30)
    assert len(plan.layers()) == 26 and plan.layers() == tuple(sorted(plan.layers()))
    too_many = painters("suggest", "--n", "30", "--text-file", str(text))
    assert too_many.stderr.strip().splitlines()[-1] == (
        "error: --n 30 is out of range: drop between 1 and 29 of the plan's steps"
    )


SWEEP = ["--variants", "skip,reverse,parallel,middle_repeat", "--n", "1:4", "--tasks", "arc_easy,winogrande"]


@pytest.mark.slow
def test_a_killed_sweep_resumes_to_the_uninterrupted_numbers(painters, tiny_folder, tmp_path):
    whole = painters("sweep", "--db", str(tmp_path / "whole.db"), "--model", str(tiny_folder), *SWEEP, "--limit", "6")
    assert whole.returncode == 0, whole.stderr
    # a line per cell: 15 distinct plans (at n=1 reverse, middle_repeat and parallel are the full model), 2 tasks
    assert len(whole.stdout.strip().splitlines()) == 2 * 15
    db = tmp_path / "killed.db"
    command = [sys.executable, "-m", "painters.cli", "sweep", "--db", str(db), "--model", str(tiny_folder), *SWEEP]
    process = subprocess.Popen([*command, "--limit", "6"], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith("arc_easy")  # the first task's cells are stored
    process.kill()  # SIGKILL while the second task runs
    process.wait()
    resumed = painters("sweep", "--db", str(db), "--model", str(tiny_folder), *SWEEP, "--limit", "6")
    assert resumed.returncode == 0, resumed.stderr
    stored = int(resumed.stdout.split(" of 30 cells already stored")[0])
    assert 1 <= stored < 30  # the kill came after the first cell was written and before the last
    assert len(resumed.stdout.strip().splitlines()) == 1 + 30 - stored
    exported = []
    for name in ("whole.db", "killed.db"):
        result = painters("results", "--db", str(tmp_path / name), "--csv", str(tmp_path / f"{name}.csv"))
        assert result.returncode == 0, result.stderr
        exported.append(pd.read_csv(tmp_path / f"{name}.csv"))
    assert len(exported[1]) == len(exported[1].drop_duplicates())
    key = ["plan", "variant", "n", "task", "metric"]
    pd.testing.assert_frame_equal(
        exported[1].sort_values(key).reset_index(drop=True), exported[0].sort_values(key).reset_index(drop=True)
    )
    report = painters("report", "--db", str(db), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "report" / "index.html").read_text()
    figures = sorted(path.name for path in (tmp_path / "report").glob("*.png"))
    assert page.count("data:image/png;base64,") == len(figures) >= 4 and "<table" in page
    assert {"variants_arc_easy.png", "variants_arc_easy_gold.png", "variants_winogrande.png"} <= set(figures)
    assert "Left out (other runs)" not in page  # one run per task: nothing to leave out
    assert "<h2>Accuracy against speed</h2>" in page  # score against measured speed-up


@pytest.mark.slow
def test_ctrl_c_says_what_the_sweep_kept_and_how_to_resume(tiny_folder, tmp_path, painters_cache):
    import signal

    db = tmp_path / "x.db"
    command = [sys.executable, "-m", "painters.cli", "sweep", "--db", str(db), "--model", str(tiny_folder), *SWEEP]
    env = {**os.environ, "PAINTERS_CACHE": str(painters_cache)}
    # a child inherits an ignored SIGINT across exec (and Python then keeps ignoring it): restore the default, in
    # case an earlier test of the session left the parent ignoring it
    process = subprocess.Popen([*command, "--limit", "200"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    # the first group (arc_easy's 15 plans) is being stored; 200 documents leave the rest long enough to still be
    # running when the signal lands (at 40, a loaded machine once let the whole sweep finish first)
    assert process.stdout.readline().startswith("arc_easy")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert process.returncode == 130 and lines[-1] == "interrupted"
    said = next(line for line in lines if line.startswith("interrupted: "))
    kept = int(said.split()[1])
    stored = sqlite3.connect(db).execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    assert 1 <= kept == stored < 30
    assert said == (
        f"interrupted: {kept} of this run's 30 cells are stored in {db} ({kept} in all); of the {30 - kept} others, "
        "every finished unit of work is stored; run the same command again to resume"
    )


@pytest.mark.slow
def test_a_sweep_on_ray_writes_what_the_single_process_sweep_writes(painters, tiny_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as each worker runs: on CPUs, threads change float32 rounding
    sweep = ["sweep", "--model", str(tiny_folder), *SWEEP, "--limit", "4", "--device", "cpu", "--dtype", "float32"]
    single = painters(*sweep, "--db", str(tmp_path / "single.db"))
    on_ray = painters(*sweep, "--db", str(tmp_path / "ray.db"), "--ray", "local", "--workers", "2")
    assert single.returncode == on_ray.returncode == 0, on_ray.stderr
    assert sorted(on_ray.stdout.splitlines()) == sorted(single.stdout.splitlines())  # a line per cell, the same
    exported = []
    for name in ("single", "ray"):
        samples = tmp_path / f"{name}.jsonl"
        result = painters("results", "--db", str(tmp_path / f"{name}.db"), "--samples", str(samples))
        assert result.returncode == 0 and result.stderr == f"{2 * 15 * 4} records written to {samples}\n"
        exported.append(samples.read_text())
    assert exported[0] == exported[1]
    again = painters(*sweep, "--db", str(tmp_path / "ray.db"), "--ray", "local", "--workers", "2")
    assert again.returncode == 0 and again.stdout.startswith("30 of 30 cells already stored")


@pytest.mark.parametrize(
    "args, message",
    [
        (["sweep", "--db", "x.db", "--n", "2:x"], "error: bad --n '2:x': give a comma list such as 2,4,8"),
        (["sweep", "--db", "x.db", "--variants", "skip,nope"], "error: unknown variant 'nope'"),
        (["sweep", "--db", "x.db", "--tasks", "arc_easy,nope"], "error: unknown task 'nope'"),
        (["sweep", "--db", "x.db", "--loops", ""], "error: --loops '' gives no values"),
        (["results", "--db", "/no/such.db"], "error: no results store at '/no/such.db'"),
        (["report", "--db", "/no/such.db", "--out", "r"], "error: no results store at '/no/such.db'"),
        (["paper", "--limit", "0"], "error: --limit 0 is out of range"),
    ],
)
def test_bad_sweep_input_is_one_line_exit_2(painters, args, message, tmp_path):
    result = painters(*[str(tmp_path / arg) if arg == "x.db" else arg for arg in args])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_file_that_is_not_a_store_is_refused_and_kept(painters, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n" * 100)
    result = painters("results", "--db", str(notes))
    assert result.returncode == 2
    assert "is not a painters results store" in result.stderr.strip().splitlines()[-1]
    assert notes.read_text() == "my notes\n" * 100
    empty = tmp_path / "empty.db"
    from painters.study.store import Store

    Store(empty).close()
    report = painters("report", "--db", str(empty), "--out", str(tmp_path / "r"))
    assert report.stderr.strip().splitlines()[-1].startswith(f"error: the store '{empty}' has no results yet")
