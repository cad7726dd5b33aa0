"""A TCP proxy a test can break: `python -m tests.faults.tcpproxy LISTEN_PORT TARGET_PORT`.

SIGSTOP freezes it (connections are accepted by the kernel, no byte moves: a hung server or network); SIGUSR1 drops
every open connection silently (nothing is forwarded on them any more, yet neither side is told: a firewall that
forgets its state), while new connections work.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from contextlib import suppress
from types import FrameType

BUFFER = 65536


class Proxy:
    def __init__(self, listen_port: int, target_port: int) -> None:
        self.target_port = target_port
        self.server = socket.create_server(("127.0.0.1", listen_port))
        self.generation = 0
        self.dropped: list[socket.socket] = []  # kept open, so no FIN or RST is ever sent on them
        self.lock = threading.Lock()
        self.open: list[tuple[int, socket.socket]] = []

    def drop_all(self, _signum: int, _frame: FrameType | None) -> None:
        with self.lock:
            self.generation += 1
            self.dropped.extend(sock for _, sock in self.open)
            self.open.clear()

    def serve(self) -> None:
        while True:
            client, _ = self.server.accept()
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                generation = self.generation
                self.open += [(generation, client), (generation, upstream)]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(source, sink, generation), daemon=True).start()

    def pump(self, source: socket.socket, sink: socket.socket, generation: int) -> None:
        try:
            while data := source.recv(BUFFER):
                if generation != self.generation:
                    return  # dropped: swallow this and everything after it
                sink.sendall(data)
        except OSError:
            pass
        if generation == self.generation:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def main() -> None:
    proxy = Proxy(int(sys.argv[1]), int(sys.argv[2]))
    signal.signal(signal.SIGUSR1, proxy.drop_all)
    print("listening", flush=True)
    proxy.serve()


if __name__ == "__main__":
    main()
