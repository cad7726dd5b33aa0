"""The web server's HTTP/1.1 parser (uvicorn's httptools protocol) with a bound on a request's head.

uvicorn puts no limit on the request line and headers when it parses with httptools: a single 16 MB header was read
whole and handed to the app, and every such request cost the web process memory before any check of apot's ran.
Here the bytes of a head are counted as they arrive, and a head past MAX_HEAD_BYTES is answered 431 and the
connection closed, before the parser has kept more than that and one read.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# The request line and every header together: browsers send a few KiB (cookies included), nginx's default allows
# 32 KiB. An API key or session cookie is far shorter.
MAX_HEAD_BYTES = 64 * 1024
TOO_LARGE = b"".join(
    [
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        b"content-type: text/plain; charset=utf-8\r\n",
        b"connection: close\r\n",
        b"content-length: 42\r\n\r\n",
        b"The request's headers are over 64 KiB.\r\n\r\n",
    ]
)


class BoundedHeadProtocol(HttpToolsProtocol):
    """httptools, refusing a request whose line and headers are over MAX_HEAD_BYTES with 431."""

    _head_bytes = 0
    _in_body = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes, self._in_body = 0, False

    def on_headers_complete(self) -> None:
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._head_bytes, self._in_body = 0, False  # the next bytes on this connection begin the next request
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        if not self._in_body:
            self._head_bytes += len(data)  # a read may hold the start of the body too: counted, which errs small
        super().data_received(data)
        if not self._in_body and self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self.logger.warning("refused a request whose head is over %d bytes", MAX_HEAD_BYTES)
            self.transport.write(TOO_LARGE)
            self.transport.close()
