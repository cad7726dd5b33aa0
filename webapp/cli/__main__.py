"""`python -m webapp.cli`, the same as the `apot` command (tests run it this way, with the interpreter they run in)."""

from webapp.cli.main import main

main()
