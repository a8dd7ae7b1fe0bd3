"""A standard-library HTTP server on a daemon thread: what the metrics and admin servers share.

:class:`BackgroundHttpServer` binds at construction (so a taken port or a foreign address is
an error before anything starts), serves from a daemon thread that never keeps a process
alive, and releases the port on :meth:`~BackgroundHttpServer.stop`. IPv6 addresses are
accepted with or without brackets (``::1``, ``[::1]``).
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar, Self


class _ThreadingHTTPServer6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class BackgroundHttpServer:
    """Serves ``handler`` on ``host:port`` from a daemon thread; :meth:`start`, :meth:`stop`.

    Subclasses say what they serve (``serves``, for the bind error), the exception to raise
    when the address cannot be bound (``bind_error``), their thread's name and the path
    :attr:`url` points at.
    """

    serves: ClassVar[str] = "HTTP"
    bind_error: ClassVar[type[OSError]] = OSError
    thread_name: ClassVar[str] = "courier-http"
    url_path: ClassVar[str] = "/"

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        address = host.strip("[]")
        server_class = _ThreadingHTTPServer6 if ":" in address else ThreadingHTTPServer
        try:
            self._httpd = server_class((address, port), handler)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise self.bind_error(f"cannot serve {self.serves} on {host}:{port}: {reason}") from exc
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port`` and the subclass's ``url_path``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.url_path}"

    def start(self) -> Self:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._serve, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        self._httpd.serve_forever(poll_interval=0.1)  # stop() waits at most one interval

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
