"""Plan search: the plan that keeps the most quality within a budget of layer calls. Calibration text and
its batches, the objective every candidate is scored by (log-likelihood per token, KL divergence from the
full model; candidates of a round share their common steps), the search spaces and methods (greedy, beam,
and the one-shot baselines), and the search itself, stored and resumable, judged on held-out documents.

May import `painters.core`, `painters.models`, `painters.tasks`, `painters.analysis` and `painters.study`.
"""
