"""The `apot` command and the processes it starts: web, worker, reconciler, the supervisor and the embedded broker."""

from webapp.cli.main import cli, main

__all__ = ["cli", "main"]
