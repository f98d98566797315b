"""Run the command line as ``python -m surveil``."""

from surveil.cli import main

main()
