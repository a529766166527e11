"""The plan and how a model runs it: plan values and their text, the paper's variants, the adapter
table (where each architecture keeps its layers), planned execution, the shared-prefix memo, attention
that reads a shared prefix once for many rows, and `versions` (what differs between the supported
transformers versions: the one place that knows).

The bottom of the package: imports nothing else from painters.
"""
