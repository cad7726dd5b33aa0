"""apot's Python client: `from apot import Client`. It imports no server code, only httpx2."""

from apot.client import ApotError, Client, Progress

__all__ = ["ApotError", "Client", "Progress"]
