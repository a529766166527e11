"""Benchmarks scored as lm-eval scores them: task data, lm-eval's prompts, log-likelihood scoring,
greedy generation (GSM8K), GLUE probes, metrics, `painters.evaluate`, and lm-eval itself as a harness.

May import `painters.core` and `painters.models`.
"""
