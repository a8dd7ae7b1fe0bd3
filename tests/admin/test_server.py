"""The admin HTTP API without Kafka: routes, auth (401/403), escaping, unknown consumers.

The server is real (a ThreadingHTTPServer on a loopback port, spoken to over HTTP); the
broker behind it is a small in-memory :class:`AdminBackend`, since these tests are about the
HTTP layer. tests/admin/test_admin_broker.py runs the same server on a real broker and Kafka.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from courier.observability.admin.dlq_view import AdminFilter, ReplayRequest
from courier.observability.admin.server import (
    AdminServer,
    AdminServerError,
    is_loopback,
    json_bytes,
)

TOKEN = "s3cret-token"
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class InMemoryBackend:
    """Answers with fixed data and remembers the replays it was asked for."""

    def __init__(self) -> None:
        self.replays: list[tuple[str, ReplayRequest]] = []
        self.dlq_queries: list[tuple[str, AdminFilter, int]] = []

    def consumer_names(self) -> Sequence[str]:
        return ["service-a", "we ird/name"]

    def snapshot(self) -> dict[str, Any]:
        return {
            "healthy": True,
            "generated_at": 0,
            "consumers": [{"name": "service-a", "breaker": "open", "note": XSS}],
        }

    def dlq(self, name: str, selection: AdminFilter, limit: int) -> dict[str, Any]:
        self.dlq_queries.append((name, selection, limit))
        return {"consumer": name, "events": [{"id": XSS, "headers": [["ce_source", XSS]]}]}

    def replay(self, name: str, request: ReplayRequest) -> dict[str, Any]:
        self.replays.append((name, request))
        return {"consumer": name, "replayed": 0 if request.dry_run else 1, "matched": 1}


@pytest.fixture()
def backend() -> InMemoryBackend:
    return InMemoryBackend()


@pytest.fixture()
def server(backend: InMemoryBackend) -> Iterator[AdminServer]:
    with AdminServer(backend, host="127.0.0.1", port=0, token=TOKEN) as running:
        yield running


def request(
    server: AdminServer,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    sent = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


REPLAY = "/api/consumers/service-a/dlq/replay"


def test_the_page_is_static_html_with_a_strict_content_security_policy(
    server: AdminServer,
) -> None:
    status, headers, body = request(server, "GET", "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    page = body.decode()
    assert '<script src="/static/admin.js" defer></script>' in page
    assert page.count("<script") == 1  # no inline script: CSP would block it anyway
    for path, kind in (("/static/admin.js", "text/javascript"), ("/static/admin.css", "text/css")):
        status, headers, _ = request(server, "GET", path)
        assert status == 200 and headers["Content-Type"].startswith(kind)


def test_the_script_never_writes_html() -> None:
    from importlib import resources

    script = (
        resources.files("courier.observability.admin").joinpath("static", "admin.js").read_text()
    )
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    assert "textContent" in script


def test_consumers_json_escapes_markup(server: AdminServer) -> None:
    status, headers, body = request(server, "GET", "/api/consumers")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert b"<" not in body and b">" not in body
    assert json.loads(body)["consumers"][0]["note"] == XSS  # escaped, not altered


def test_json_bytes_escapes_angle_brackets_and_ampersands() -> None:
    raw = json_bytes({"k<": "a&b</script>"})
    assert raw == b'{"k\\u003c":"a\\u0026b\\u003c/script\\u003e"}'
    assert json.loads(raw) == {"k<": "a&b</script>"}


def test_dlq_read_passes_filters_and_escapes(server: AdminServer, backend: InMemoryBackend) -> None:
    status, _, body = request(
        server, "GET", "/api/consumers/service-a/dlq?limit=5&type=a.v1.T&status=invalid_argument"
    )
    assert status == 200 and b"<" not in body
    name, selection, limit = backend.dlq_queries[-1]
    assert (name, limit) == ("service-a", 5)
    assert selection.types == {"a.v1.T"} and selection.statuses == {"INVALID_ARGUMENT"}
    status, _, body = request(server, "GET", "/api/consumers/service-a/dlq?limit=0")
    assert status == 400 and b"limit" in body


def test_consumer_names_are_url_decoded(server: AdminServer, backend: InMemoryBackend) -> None:
    status, _, _ = request(server, "GET", "/api/consumers/we%20ird%2Fname/dlq")
    assert status == 200
    assert backend.dlq_queries[-1][0] == "we ird/name"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/consumers/nope/dlq"),
        ("POST", "/api/consumers/nope/dlq/replay"),
        ("GET", "/api/consumers/service-a/elsewhere"),
        ("GET", "/nothing-here"),
    ],
)
def test_unknown_consumers_and_paths_are_404(server: AdminServer, method: str, path: str) -> None:
    status, _, body = request(server, method, path, {"all": True} if method == "POST" else None,
                              bearer())  # fmt: skip
    assert status == 404
    assert "error" in json.loads(body)


def test_replay_without_credentials_is_401(server: AdminServer, backend: InMemoryBackend) -> None:
    status, headers, _ = request(server, "POST", REPLAY, {"positions": ["0:1"]})
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, _, _ = request(server, "POST", REPLAY, {"positions": ["0:1"]},
                           {"Authorization": f"Basic {TOKEN}"})  # fmt: skip
    assert status == 401
    assert backend.replays == []


def test_replay_with_a_wrong_token_is_403(server: AdminServer, backend: InMemoryBackend) -> None:
    for wrong in ("nope", TOKEN + "x", TOKEN[:-1]):
        status, _, body = request(server, "POST", REPLAY, {"positions": ["0:1"]}, bearer(wrong))
        assert status == 403, wrong
        assert b"wrong token" in body
    assert backend.replays == []


def test_replay_is_refused_when_no_token_is_configured(backend: InMemoryBackend) -> None:
    with AdminServer(backend, port=0, token=None) as open_server:
        status, _, body = request(open_server, "POST", REPLAY, {"positions": ["0:1"]}, bearer())
        assert status == 403 and b"disabled" in body
        assert request(open_server, "GET", "/api/consumers")[0] == 200  # reads stay open
    assert backend.replays == []


def test_replay_with_the_token_reaches_the_broker(
    server: AdminServer, backend: InMemoryBackend
) -> None:
    status, _, body = request(server, "POST", REPLAY,
                              {"positions": ["1:7"], "dry_run": True}, bearer())  # fmt: skip
    assert status == 200 and json.loads(body)["replayed"] == 0
    status, _, body = request(server, "POST", REPLAY, {"types": ["a.v1.T"]}, bearer())
    assert status == 200 and json.loads(body)["replayed"] == 1
    (name, first), (_, second) = backend.replays
    assert name == "service-a"
    assert first.dry_run and first.selection.positions == {(1, 7)}
    assert not second.dry_run and second.selection.types == {"a.v1.T"}


def test_replay_must_be_a_post_of_json(server: AdminServer, backend: InMemoryBackend) -> None:
    assert request(server, "GET", REPLAY, headers=bearer())[0] == 405
    form = {**bearer(), "Content-Type": "application/x-www-form-urlencoded"}
    status, _, _ = request(server, "POST", REPLAY, b"all=true", form)
    assert status == 415
    assert request(server, "POST", REPLAY, b"{not json", bearer())[0] == 400
    assert request(server, "POST", REPLAY, {}, bearer())[0] == 400  # selects nothing
    assert request(server, "POST", REPLAY, {"positions": ["x"]}, bearer())[0] == 400
    assert backend.replays == []


def test_cross_origin_posts_are_refused(server: AdminServer, backend: InMemoryBackend) -> None:
    headers = {**bearer(), "Origin": "http://evil.example"}
    assert request(server, "POST", REPLAY, {"all": True}, headers)[0] == 403
    same = {**bearer(), "Origin": f"http://127.0.0.1:{server.port}"}
    assert request(server, "POST", REPLAY, {"all": True}, same)[0] == 200


def test_foreign_host_names_are_refused_on_loopback(server: AdminServer) -> None:
    # A DNS-rebinding page would send its own host name.
    status, _, _ = request(server, "GET", "/api/consumers", headers={"Host": "evil.example"})
    assert status == 421
    assert request(server, "GET", "/", headers={"Host": "localhost:1234"})[0] == 200


def test_off_loopback_a_token_is_required_for_everything(backend: InMemoryBackend) -> None:
    with pytest.raises(AdminServerError, match="needs a token"):
        AdminServer(backend, host="0.0.0.0", port=0)
    with AdminServer(backend, host="0.0.0.0", port=0, token=TOKEN) as wide:
        assert request(wide, "GET", "/api/consumers")[0] == 401
        assert request(wide, "GET", "/api/consumers", headers=bearer("x"))[0] == 403
        assert request(wide, "GET", "/api/consumers", headers=bearer())[0] == 200
        assert request(wide, "GET", "/")[0] == 200  # the page itself holds no data


def test_a_taken_port_is_a_clear_error(server: AdminServer, backend: InMemoryBackend) -> None:
    with pytest.raises(AdminServerError, match=f"127.0.0.1:{server.port}"):
        AdminServer(backend, port=server.port)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("10.0.0.1", False), ("example.com", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
