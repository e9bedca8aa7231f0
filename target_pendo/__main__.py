"""`python -m target_pendo` runs the target CLI."""

from target_pendo.cli.main import main

main()
