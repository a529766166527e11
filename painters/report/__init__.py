"""The paper's figures and one self-contained page from a results store: the page, and one module
per family of sections (similarity, variants, single layers, the paired order test, trade-off).

May import `painters.core`, `painters.tasks`, `painters.analysis` and `painters.study`.
"""
