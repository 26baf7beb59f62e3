"""What the OSCQuery server answers over HTTP (a part of `OscQueryServer`, see oscquery.py): the
address space as JSON, one attribute of a node, HOST_INFO, the web remote's page; and the checks
every request meets first (the Host a browser was sent to, the WebSocket's Origin, a rate per
address). It runs on the server's thread, inside `websockets`' opening handshake: returning None
lets a WebSocket open; anything else is the answer, after which the connection closes.
"""

from __future__ import annotations

import http
import json
import socket
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ..report import Reporter
from ..resources import data_dir
from .oscreply import Buckets
from .oscroute import ip_of
from .osctree import EXTENSIONS, Snapshot, Tree

REMOTE = "/remote"


class QueryHttp:
    """The HTTP half of OscQueryServer (a mixin: the server holds the snapshot, tree, counters)."""

    # what the server holds, read here
    name: str
    osc: tuple[str, int] | None
    reporter: Reporter
    stats: Counter[str]
    _requests: Buckets  # HTTP requests a second, per address
    _names: set[str]  # this machine's own host names
    _snap: Snapshot
    _cache: tuple[Snapshot, bytes] | None  # (snapshot, JSON of the whole tree)
    _page: bytes | None  # the web remote's page, read at its first request
    _current_tree: Callable[[], Tree]  # the server's methods, called here
    _refuse: Callable[[str, str, str], None]

    def _http(self, conn: ServerConnection, request: Request) -> Response | None:
        """Every request: the WebSocket's opening handshake (None: accept it), or an answer."""
        host = conn.remote_address[0] if conn.remote_address else ""
        headers = request.headers
        if not self._host_ok(headers.get("Host", "")):
            return self._refused(conn, 421, "misdirected", "not a name of this machine")
        if headers.get("Upgrade", "").lower() == "websocket":
            origin = headers.get("Origin")
            if origin is not None and urllib.parse.urlsplit(origin).netloc != headers.get("Host", ""):
                return self._refused(conn, 403, "cross-site", f"a page from {origin[:80]} may not connect")
            return None
        if not self._requests.take(host, time.monotonic()):
            return self._refused(conn, 429, "throttled", f"HTTP requests from {host} come too fast")
        self.stats["requests"] += 1
        raw, _, query = request.path.partition("?")
        path = urllib.parse.unquote(raw.split("#")[0]) or "/"
        if len(path) > 1:
            path = path.rstrip("/") or "/"
        query = urllib.parse.unquote(query.split("#")[0])
        if path == REMOTE:
            return self._remote_page()
        snap, tree = self._snap, self._current_tree()
        if query == "HOST_INFO":
            return _json(200, self._host_info(conn))
        if path not in tree.static:
            return _json(404, {"ERROR": f"no node {path[:200]}"})
        if not query:
            if path == "/":
                return _json(200, None, self._whole(snap, tree))
            return _json(200, tree.node(path, snap))
        status, body = tree.attribute(path, query, snap)
        return _json(status, body)

    def _refused(self, conn: ServerConnection, status: int, kind: str, why: str) -> Response:
        host = conn.remote_address[0] if conn.remote_address else ""
        self._refuse(kind, host, f"{host}: {why}")
        return _json(status, {"ERROR": why})

    def _host_ok(self, host_header: str) -> bool:
        name = urllib.parse.urlsplit(f"//{host_header}").hostname or ""
        if not name:
            return False
        try:
            ip_of(name)
            return True
        except ValueError:
            return name.lower().rstrip(".") in self._names

    def _whole(self, snap: Snapshot, tree: Tree) -> bytes:
        """The whole tree with its values: one serialisation a frame however often it is asked."""
        cache = self._cache
        if cache is not None and cache[0] is snap:
            return cache[1]
        data = json.dumps(tree.node("/", snap), separators=(",", ":")).encode()
        self._cache = (snap, data)
        return data

    def _host_info(self, conn: ServerConnection) -> dict[str, Any]:
        info: dict[str, Any] = {"NAME": self.name, "EXTENSIONS": EXTENSIONS}
        if self.osc is not None:
            ip = self.osc[0]
            if ip in ("0.0.0.0", "::", ""):  # listening everywhere: the address this client reached
                ip = conn.local_address[0]
            info.update(OSC_IP=ip, OSC_PORT=self.osc[1], OSC_TRANSPORT="UDP")
        return info

    def _remote_page(self) -> Response:
        if self._page is None:
            try:
                self._page = (data_dir("web") / "remote.html").read_bytes()
            except OSError as exc:
                self.reporter.error("oscquery", f"the web remote's page is missing: {exc}")
                return _json(404, {"ERROR": "the web remote is not installed"})
        headers = Headers([("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
                           ("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                            "script-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:"),
                           ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")])
        return _response(200, headers, self._page)


def own_names() -> set[str]:
    """The names a Host header may carry here (anything else is a rebinding attempt)."""
    names = {"localhost", "localhost.localdomain", "ip6-localhost"}
    for name in (socket.gethostname(), socket.getfqdn()):
        name = name.lower().rstrip(".")
        if name:
            names.update({name, f"{name.split('.')[0]}.local"})
    return names


def _response(status: int, headers: Headers, body: bytes) -> Response:
    headers["Content-Length"] = str(len(body))
    headers["Connection"] = "close"
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    return Response(status, reason, headers, body)


def _json(status: int, obj: Any, data: bytes | None = None) -> Response:
    body = data if data is not None else b"" if obj is None else json.dumps(obj).encode()
    headers = Headers([("Cache-Control", "no-store")])
    if body:
        headers["Content-Type"] = "application/json"
    return _response(status, headers, body)
