"""`python -m launcher.cli`: the same as the `launch` command."""

from launcher.cli import main

main()
