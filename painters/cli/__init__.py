"""The `painters` command line: one module per group of commands (model, tools, evaluate, analysis, study)
over one vocabulary of shared options (`painters.cli.options`); `painters.cli.main` lists the commands.

The top of the package: may import any stage, and no stage imports it.
"""

from painters.cli.main import app, main

__all__ = ["app", "main"]
