"""Getting a model: the embedded offline models, loading by name, folder, GGUF or hub id, where it
runs and in what precision (the one place that knows devices), and what a plan will cost there.

May import `painters.core`.
"""
