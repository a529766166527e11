"""Benchmarks scored as lm-eval scores them, and OLMES's basic skills as OLMES ranks their choices: task
data, lm-eval's prompts, log-likelihood scoring, greedy generation (GSM8K), GLUE probes, metrics,
`painters.evaluate`, and lm-eval itself as a harness.

May import `painters.core` and `painters.models`.
"""
