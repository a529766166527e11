"""The plan and how a model runs it: plan values and their text, the paper's variants, the adapter
table (where each architecture keeps its layers), planned execution and the shared-prefix memo.

The bottom of the package: imports nothing else from painters.
"""
