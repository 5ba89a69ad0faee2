"""The ``learning-machines`` command line (typer + rich)."""

from ._app import app, main

__all__ = ["app", "main"]
