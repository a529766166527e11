"""How long the command line takes to answer what needs no model: help, plan text, and one-line input errors.

    .venv/bin/python benchmarks/startup.py [--rounds 5]

Each command runs as a fresh process (as a user types it), one at a time; prints the median wall time of
`--rounds` runs per command and the modules that matter that it imported (torch, transformers). Results:
docs/benchmarks.md.
"""

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "--help": ["--help"],
    "plan skip --layers 30 --n 6": ["plan", "skip", "--layers", "30", "--n", "6"],
    "eval --limit 0 (input error)": ["eval", "--limit", "0"],
    "eval --tasks nope (input error)": ["eval", "--tasks", "nope"],
    "sweep --n 99 (input error)": ["sweep", "--db", "/tmp/painters-startup.db", "--n", "99"],
    "layers --model smollm2-135m": ["layers", "--model", "smollm2-135m"],
}
PROBE = (
    "import sys, runpy; sys.argv = ['painters', *sys.argv[1:]]\n"
    "try:\n    runpy.run_module('painters.cli', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    "print('torch' in sys.modules, 'transformers' in sys.modules, file=sys.stderr)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'command':<34}{'median s':>9}  imports torch / transformers")
    for name, argv in COMMANDS.items():
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True)
            times.append(time.perf_counter() - start)
        loaded = done.stderr.strip().splitlines()[-1]
        print(f"{name:<34}{statistics.median(times):>9.2f}  {loaded}")


if __name__ == "__main__":
    main()
