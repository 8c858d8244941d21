"""The ``gateway`` command (composition layer: the only place that builds everything)."""

from gateway.cli.app import app, main

__all__ = ["app", "main"]
