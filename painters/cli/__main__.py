"""`python -m painters.cli`: the same program as the `painters` command."""

from painters.cli.main import main

main()
