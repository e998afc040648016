"""`python -m churnsaver.backend.cli`, the same as the `churnsaver` script."""

from churnsaver.backend.cli.main import main

main()
