"""`python -m banking.cli`: the same command as the `banking` console script."""

from banking.cli import app

app()
