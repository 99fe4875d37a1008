"""`python -m tui` is the same as the `kcockpit` command."""

from tui.cli import main

main()
