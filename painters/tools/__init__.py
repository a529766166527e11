"""Tools for one plan at a time: `painters bench` (speed and peak memory per plan) and
`painters export` (a plan written as a standard checkpoint or mergekit recipe).

May import `painters.core` and `painters.models`.
"""
