"""The checks `apot run` makes before it starts anything."""

from __future__ import annotations

import socket

from ml.demo import DEMOS
from webapp.cli.startup import DEMO_NAMES, port_problem


def test_the_light_demo_check_names_every_demo() -> None:
    assert tuple(DEMOS) == DEMO_NAMES


def test_a_port_another_server_listens_on_is_a_problem_and_a_free_one_is_not() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        assert "already in use" in (port_problem("127.0.0.1", port) or "")
    assert port_problem("127.0.0.1", port) is None
