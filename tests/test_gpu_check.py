"""benchmarks/gpu_check.py: a dry run of every check on the CPU here, the real run where CUDA is."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "gpu_check.py"


def run(*args):
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def test_the_gpu_check_runs_every_check_on_a_cpu():
    code, lines = run("--shape", "tiny", "--device", "cpu", "--batch", "1", "--tokens", "32", "--repeats", "1")
    checks = [line["check"] for line in lines]
    assert code == 0 and lines[-1] == {"check": "summary", "ok": True}
    assert checks.count("cached_generation") == 9 and checks.count("prefill") == 4
    assert all(line.get("ok", True) for line in lines)
    speeds = {line["plan"]: line for line in lines if line["check"] == "prefill"}
    assert speeds["plain"]["ratio_to_plain"] == 1.0 and speeds["skip:n=8"]["tflops"] >= 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_gpu_check_holds_on_this_gpu():
    code, lines = run("--shape", "smollm2-135m")
    assert code == 0, lines
