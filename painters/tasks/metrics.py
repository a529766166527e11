"""Per-document scores and their aggregation, with standard errors computed as lm-eval-harness computes them.

Means get the sample standard error (Bessel-corrected standard deviation / sqrt(n)); perplexity gets
lm-eval's bootstrap: chunks of 1000 resamples, chunk i drawn by `random.Random(i).choices`. We draw
the identical resamples with NumPy from the same Mersenne Twister states, which is exact and fast.
"""

from __future__ import annotations

import math
import random

import numpy as np

BOOTSTRAP_ITERS = 100_000  # lm-eval's default
_CHUNK = 1000


def choice_scores(
    metrics: tuple[str, ...], lls: list[float], gold: int, chars: tuple[int, ...], tokens: list[int]
) -> dict[str, float]:
    """Whether the gold choice ranks first, for each of `metrics`: `acc` by log-likelihood; `acc_norm`
    (lm-eval) and `acc_per_char` (OLMES) by log-likelihood per character, `acc_per_token` per token of
    the continuation. Ties go to the first choice, as NumPy's argmax gives them to lm-eval and OLMES."""
    divisors = {"acc": None, "acc_norm": chars, "acc_per_char": chars, "acc_per_token": tokens}
    scores = {}
    for metric in metrics:
        if metric in divisors:
            values = np.array(lls) if divisors[metric] is None else np.array(lls) / np.array(divisors[metric], float)
            scores[metric] = float(int(np.argmax(values)) == gold)
    return scores


def sample_stddev(values: list[float]) -> float:
    """Bessel-corrected standard deviation, summed in the same order as lm-eval (so equal to the last bit)."""
    if len(values) < 2:
        return float("nan")
    mu = sum(values) / len(values)
    return math.sqrt(sum((x - mu) ** 2 for x in values) / (len(values) - 1))


def mean_stderr(values: list[float]) -> float:
    return sample_stddev(values) / math.sqrt(len(values))


def perplexity(lls: list[float] | np.ndarray) -> float:
    return math.exp(-float(np.mean(lls)))


def perplexity_stderr(lls: list[float], iters: int = BOOTSTRAP_ITERS) -> float:
    """lm-eval's bootstrap standard error of perplexity, reproduced draw for draw; undefined (nan) for one document.

    lm-eval's bootstrap gives 0 for one document; like the standard error of a mean, it is undefined there.
    """
    if len(lls) < 2:
        return float("nan")
    values = np.asarray(lls, dtype=float)
    n, size = len(values), min(_CHUNK, iters)
    replicates = []
    for chunk in range(iters // size):
        state = np.random.RandomState()
        _, key, _ = random.Random(chunk).getstate()
        state.set_state(("MT19937", np.array(key[:-1], dtype=np.uint32), key[-1]))
        # random.choices(xs, k=n) picks xs[floor(random() * n)]; random_sample draws the same doubles, a
        # chunk's resamples one after another; cumsum adds left to right as Python's sum does
        picks = (state.random_sample((size, n)) * n).astype(np.int64)
        sums = values[picks].cumsum(axis=1)[:, -1]
        replicates.extend(math.exp(-total / n) for total in sums.tolist())
    return sample_stddev(replicates)


def aggregate(metric: str, values: list[float]) -> tuple[float, float]:
    """The task-level value and standard error of a metric from its per-document values."""
    if metric == "perplexity":
        return perplexity(values), perplexity_stderr(values)
    return sum(values) / len(values), mean_stderr(values)
