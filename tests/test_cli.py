"""The command line: outputs, and one-line errors with exit code 2."""

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from painters.cli import app

runner = CliRunner()


@pytest.fixture
def painters(painters_cache):
    """Run the real console entry point in a fresh process, as a user would."""
    code = "import sys; from painters.cli import main; sys.argv = ['painters', *sys.argv[1:]]; main()"
    env = {**os.environ, "PAINTERS_CACHE": str(painters_cache)}

    def run(*args):
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env)

    return run


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
        (["eval", "--tasks", ","], "error: no tasks given"),
        (["eval", "--limit", "0"], "error: --limit 0 is out of range"),
        (["eval", "--harness", "lm-eval", "--data-dir", "."], "error: --data-dir works with the painters harness only"),
        (["eval", "--harness", "nope"], "error: unknown harness 'nope'"),
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
