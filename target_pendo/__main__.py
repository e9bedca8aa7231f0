"""`python -m target_pendo` runs the target CLI."""

from target_pendo.target import main

main()
