"""The broker's admin web page and its JSON API, served from a daemon thread.

Why the standard library's :class:`~http.server.ThreadingHTTPServer`: the page has a handful
of operators, not traffic; it adds no dependency to the broker; and the broker's asyncio loop
is busy with gRPC deliveries, so the admin work (blocking confluent-kafka reads of a DLQ, a
replay that waits for Kafka's acknowledgements) belongs on threads of its own, where a slow
Kafka read can never delay a delivery. ``/metrics`` is served the same way
(:class:`~courier.observability.http_server.BackgroundHttpServer`).

Routes::

    GET  /                                      the page (static HTML; data comes from the API)
    GET  /static/admin.js, /static/admin.css
    GET  /api/consumers                         consumers, partitions, lag, breaker, failures
    GET  /api/consumers/<name>/dlq              DLQ records (?limit=&type=&status=&error=)
    POST /api/consumers/<name>/dlq/replay       replay, or a dry run (the page's confirmation)

Security: every POST needs ``Authorization: Bearer <token>`` (no token configured: state
changes are refused); 401 without credentials, 403 with a wrong token. On a loopback address
reads are open; on any other address a token is required to start and reads need it too.
Requests whose ``Host`` is not a loopback name are refused on a loopback server (DNS
rebinding), a POST must be JSON (no cross-site form can send it) and from the same origin.
Responses carry a strict Content-Security-Policy (scripts only from ``/static``), and JSON
escapes ``<``, ``>`` and ``&``; the page builds the DOM with ``textContent`` only, since every
header and payload value is attacker-controlled.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from http.server import BaseHTTPRequestHandler
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from courier.broker.kafka_clients import KafkaUnavailable
from courier.observability.admin.backend import AdminBackend
from courier.observability.admin.dlq_view import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    AdminFilter,
    BadRequest,
    ReplayRequest,
)
from courier.observability.http_server import BackgroundHttpServer

logger = logging.getLogger("courier.observability.admin")

DEFAULT_ADMIN_HOST = "127.0.0.1"
TOKEN_ENV = "COURIER_ADMIN_TOKEN"
MAX_BODY = 1 << 20

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/admin.js": ("admin.js", "text/javascript; charset=utf-8"),
    "/static/admin.css": ("admin.css", "text/css; charset=utf-8"),
}
_SECURITY_HEADERS = (
    ("Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
     "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)  # fmt: skip


class AdminServerError(OSError):
    """The admin server cannot start (port taken, bad address, no token off loopback)."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def json_bytes(value: Any) -> bytes:
    """JSON with ``<``, ``>`` and ``&`` escaped, so no value can read as markup anywhere."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


class AdminServer(BackgroundHttpServer):
    """Serves the admin page for ``backend``; :meth:`start`, :meth:`stop`.

    ``token``: the bearer token for state changes (None: they are refused). Raises
    :class:`AdminServerError` if the address cannot be bound, or is not loopback and no
    token is given.
    """

    serves = "the admin page"
    bind_error = AdminServerError
    thread_name = "courier-admin"

    def __init__(
        self,
        backend: AdminBackend,
        *,
        host: str = DEFAULT_ADMIN_HOST,
        port: int = 0,
        token: str | None = None,
    ) -> None:
        self.backend = backend
        self.token = token or None
        self.loopback = is_loopback(host)
        if not self.loopback and self.token is None:
            raise AdminServerError(
                f"the admin page on {host} (not loopback) needs a token: "
                f"--admin-token or ${TOKEN_ENV}"
            )
        self._static = {
            path: (
                resources.files("courier.observability.admin")
                .joinpath("static", name)
                .read_bytes(),
                kind,
            )
            for path, (name, kind) in _STATIC.items()
        }
        super().__init__(host, port, _handler_class(self))

    def check_token(self, authorization: str | None) -> tuple[int, str] | None:
        """None if ``authorization`` carries the token; else (401 or 403, why)."""
        if self.token is None:
            return (
                403,
                f"state changes are disabled: start the broker with --admin-token or ${TOKEN_ENV}",
            )
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return 401, "a bearer token is required (Authorization: Bearer <token>)"
        if not hmac.compare_digest(credentials.strip().encode(), self.token.encode()):
            return 403, "wrong token"
        return None


class _Reply(Exception):
    """Answer the request with ``status`` and a JSON ``{"error": message}`` now."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _handler_class(owner: AdminServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "courier-admin"
        sys_version = ""

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            try:
                self._check_host()
                url = urlsplit(self.path)
                status, body, kind = self._route(method, url.path, parse_qs(url.query))
            except _Reply as reply:
                status, body, kind = reply.status, json_bytes({"error": reply.message}), "json"
            except BadRequest as exc:
                status, body, kind = 400, json_bytes({"error": str(exc)}), "json"
            except KafkaUnavailable as exc:
                status, body, kind = 502, json_bytes({"error": f"Kafka: {exc}"}), "json"
            except Exception:
                logger.exception("admin request failed", extra={"path": self.path})
                status, body, kind = (
                    500,
                    json_bytes({"error": "internal error (see the broker log)"}),
                    "json",
                )
            self._answer(status, body, kind)

        def _check_host(self) -> None:
            if not owner.loopback:
                return
            host = urlsplit(f"//{self.headers.get('Host', '')}").hostname or ""
            if not is_loopback(host):
                raise _Reply(421, "this admin page answers only to loopback host names")

        def _route(
            self, method: str, path: str, query: dict[str, list[str]]
        ) -> tuple[int, bytes, str]:
            if path in owner._static:
                self._allow(method, "GET")
                return 200, *owner._static[path]
            parts = [unquote(p) for p in path.split("/")[1:]]
            if parts[:2] != ["api", "consumers"]:
                raise _Reply(404, "not found")
            if not owner.loopback:
                self._authorize()  # reads need the token off loopback
            if len(parts) == 2:
                self._allow(method, "GET")
                return 200, json_bytes(owner.backend.snapshot()), "json"
            name = parts[2]
            if name not in owner.backend.consumer_names():
                raise _Reply(404, f"no consumer {name!r} in this broker")
            if parts[3:] == ["dlq"]:
                self._allow(method, "GET")
                selection, limit = _dlq_query(query)
                return 200, json_bytes(owner.backend.dlq(name, selection, limit)), "json"
            if parts[3:] == ["dlq", "replay"]:
                self._allow(method, "POST")
                self._check_same_origin()
                self._authorize()
                request = ReplayRequest.from_json(self._json_body())
                result = owner.backend.replay(name, request)
                logger.info(
                    "admin replay" + (" (dry run)" if request.dry_run else ""),
                    extra={"consumer": name, "matched": result.get("matched"),
                           "replayed": result.get("replayed")},
                )  # fmt: skip
                return 200, json_bytes(result), "json"
            raise _Reply(404, "not found")

        def _allow(self, method: str, allowed: str) -> None:
            if method != allowed:
                raise _Reply(405, f"use {allowed}")

        def _authorize(self) -> None:
            problem = owner.check_token(self.headers.get("Authorization"))
            if problem is not None:
                raise _Reply(*problem)

        def _check_same_origin(self) -> None:
            origin = self.headers.get("Origin")
            if origin is None or origin == "null":
                return  # not a browser, or a browser that sends none: the token still decides
            if urlsplit(origin).netloc != self.headers.get("Host", ""):
                raise _Reply(403, "cross-origin requests are refused")

        def _json_body(self) -> Any:
            kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                raise _Reply(415, "send the body as application/json")
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                raise _Reply(400, "bad Content-Length") from None
            if length > MAX_BODY:
                raise _Reply(413, "body too large")
            try:
                return json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                raise _Reply(400, "the body is not JSON") from None

        def _answer(self, status: int, body: bytes, kind: str) -> None:
            content_type = "application/json" if kind == "json" else kind
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in _SECURITY_HEADERS:
                self.send_header(name, value)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="courier-admin"')
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("admin %s", format % args)

    return Handler


def _dlq_query(query: dict[str, list[str]]) -> tuple[AdminFilter, int]:
    limit_text = query.get("limit", [str(DEFAULT_LIMIT)])[-1]
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise BadRequest(f"limit: a number from 1 to {MAX_LIMIT}")
    selection = AdminFilter(
        types=frozenset(t for t in query.get("type", []) if t),
        statuses=frozenset(s.upper() for s in query.get("status", []) if s),
        error=(query.get("error", [""])[-1] or None),
    )
    return selection, int(limit_text)
