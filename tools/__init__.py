"""Developer tools run from the repository root (`python -m tools.<name>`), not shipped in
the `banking` package: they import it, it never imports them."""
