"""Sweeps: grids of plans, units of work and the workers that run them (in process or on Ray),
the results store, its fingerprints, and the results table read back from it.

May import `painters.core`, `painters.models`, `painters.tasks` and `painters.tools`.
"""
