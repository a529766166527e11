"""benchmarks/gpu_check.py: a dry run of every check on the CPU here, the real run where CUDA is."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "gpu_check.py"


def run(out: Path, *args):
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), *args], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def test_the_gpu_check_runs_every_check_on_a_cpu_in_bfloat16(tmp_path):
    out = tmp_path / "gpu-check.json"
    args = ("--shape", "tiny", "--device", "cpu", "--batch", "2", "--tokens", "32", "--new-tokens", "4")
    args += ("--repeats", "1")
    code, lines = run(out, *args)
    checks = [line["check"] for line in lines]
    assert code == 0 and lines[-1] == {"check": "summary", "ok": True}
    assert checks.count("cached_generation") == 9 and checks.count("speed") == 5
    assert checks.count("shared_prefix_attention") == 2
    assert all(line.get("ok", True) for line in lines)
    assert json.loads(out.read_text()) == {"ok": True, "records": lines}  # one file holds every line printed
    speeds = {line["plan"]: line for line in lines if line["check"] == "speed"}
    assert speeds["plain"]["prefill_ratio_to_plain"] == 1.0 and speeds["plain"]["decode_ratio_to_plain"] == 1.0
    assert [speeds[plan]["layer_calls"] for plan in speeds] == [12, 12, 4, 12, 20]
    assert all(row["decode_ms_batch_1"] > 0 and row["decode_tokens_per_s_batch_b"] > 0 for row in speeds.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_gpu_check_holds_on_this_gpu(tmp_path):
    code, lines = run(tmp_path / "gpu-check.json", "--shape", "smollm2-135m")
    assert code == 0, lines


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cached_decoding_may_differ_only_by_rounding_and_at_near_ties():
    """bfloat16 tolerance here: 8 eps (0.0078) of the largest logit (4.0) = 0.25."""
    compare = _gpu_check().compare_decoding
    logits = (torch.tensor([[4.0, 1.0, 0.0]]), torch.tensor([[0.0, 3.0, 2.9]]))  # step 2: a near tie (0.1)
    same = (torch.tensor([[0, 1]]), logits)
    assert compare(same, same, torch.bfloat16) | {"cached": None, "recomputed": None} == {
        "ok": True, "max_abs_logit_diff": 0.0, "tolerance": 0.25, "near_tie_flips": 0, "cached": None,
        "recomputed": None,
    }  # fmt: skip
    rounded = (torch.tensor([[0, 2]]), (logits[0] + 0.1, logits[1]))  # rounding apart, then the tie goes the other way
    assert (
        compare(rounded, same, torch.bfloat16)["ok"] and compare(rounded, same, torch.bfloat16)["near_tie_flips"] == 1
    )
    assert not compare(rounded, same, torch.float32)["ok"]  # float32's tolerance is far tighter
    clear = (torch.tensor([[1, 1]]), logits)  # a different token where the best leads by 3
    assert not compare(clear, same, torch.bfloat16)["ok"]
    drifted = (torch.tensor([[0, 1]]), (logits[0], logits[1] + torch.tensor([[0.0, 0.0, 0.5]])))
    assert not compare(drifted, same, torch.bfloat16)["ok"]  # same tokens, logits apart by more than rounding
