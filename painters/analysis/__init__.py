"""Hidden states under a plan: the texts they are read from, capturing them, layer similarity
(cosine, CKA), importance (Block Influence, angular distance) and their files and figures.

May import `painters.core`, `painters.models` and `painters.tasks` (for task texts).
"""
