"""OSCQuery beside the OSC port: HTTP + WebSocket on one TCP port, on a thread of its own (the HTTP
answers are `oschttp`'s, the address space `osctree`'s).

What it serves (Vidvox's OSCQueryProposal; the address space is `osctree`'s, from the registry):
- `GET /path` the node and everything under it as JSON, `GET /path?ATTRIBUTE` one attribute
  (`?VALUE`: the show's value at the last frame), `GET /?HOST_INFO` the server and its OSC port;
- `GET /remote` the web remote (web/remote.html, package data): faders for every parameter;
- a WebSocket on the same port: `{"COMMAND": "LISTEN"|"IGNORE", "DATA": path}` in text frames,
  value changes streamed back as OSC packets in binary frames (a message, or a bundle of a
  frame's changes), PATH_ADDED / PATH_CHANGED / PATH_REMOVED when a patch's chain changes the
  tree; OSC packets sent in binary frames control the show through the UDP port's own parser
  (`oscwire`) and rules (`oscroute`: allow-list, remote senders, NaN, heavy commands).

Why a thread: HTTP and WebSockets are TCP, whose clients can be slow or hostile in ways a frame
loop must never wait on. The frame loop only publishes an immutable snapshot of its frame
(`publish`, a reference swap and, while a WebSocket client is connected, one wake-up of this
thread's event loop); values come back to the show as ControlEvents in its queue, as OSC's do.
`websockets` (a small, maintained library) does the HTTP/1.1 and RFC 6455 parsing within its
limits: a request line and each header at most 8 KiB, at most 128 headers, messages at most
`MAX_MESSAGE` bytes, and `max_queue` frames read ahead (past it, the client's TCP window closes).

Bounded against a hostile client (DESIGN, principle 3):
- at most `max_clients` TCP connections at once (more are cut off on accept); a request must
  arrive whole within `OPEN_TIMEOUT` seconds; dead WebSockets are found by pings;
- HTTP requests: `REQUESTS` a second per address; the tree's JSON is cached per frame;
- parsing what WebSocket clients send has the UDP port's budget: `BURST` seconds at once and
  `SHARE` of the wall clock; spent, the reading waits (and the client's TCP window fills);
- streaming: a frame's changes go out once per listen set (clients that listen alike share the
  packet), at most every `STREAM_GAP` seconds (an unpaced loop's frames coalesce: the newest
  value wins), without deflate (it would cost a compression per client per frame);
- a client that does not read its stream: past `MAX_BUFFERED` bytes waiting it misses values
  and is sent its values whole once it catches up; full for `STALL` seconds, it is closed;
- senders outside --osc-allow are cut off on accept; a browser page from another site may not
  open the WebSocket (its Origin must be the page's own host), and a Host header that is not an
  address, `localhost` or this machine's name is refused (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import cast

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from ..commands import COMMANDS
from ..events import ControlQueue
from ..net import tcp_listener
from ..params import REGISTRY, FrameParams, Registry
from ..report import Reporter
from .oschttp import QueryHttp, own_names
from .oscreply import Buckets
from .oscroute import LOCAL, OscRouter
from .osctree import Snapshot, Tree, changed_paths, diff, snapshot
from .oscwire import bundle

log = logging.getLogger("noclip")

MAX_CLIENTS = 32          # TCP connections at once, HTTP and WebSocket together
MAX_MESSAGE = 65536       # bytes in one WebSocket message: an OSC packet is at most a datagram
MAX_TEXT = 4096           # characters in one JSON command
OPEN_TIMEOUT = 5.0        # s for a whole HTTP request (a slow one is cut off)
MAX_BUFFERED = 256 << 10  # bytes waiting to go to one client before it misses values
STALL = 10.0              # s a client may keep that much waiting before it is closed
BURST, SHARE = 0.003, 0.05  # s of parsing at once, and share of the wall clock: as the UDP port
REQUESTS = (50.0, 100.0)  # HTTP requests a second per address, and the burst
STREAM_GAP = 1 / 120      # s between two streamings at least: an unpaced loop's frames coalesce


class Client:
    """One WebSocket: what it listens to, and whether it fell behind."""

    __slots__ = ("conn", "full_since", "listens", "local", "sender", "stale")

    def __init__(self, conn: ServerConnection, local: bool) -> None:
        self.conn = conn
        self.sender: tuple[str, int] = tuple(conn.remote_address[:2])
        self.local = local
        self.listens: set[str] = set()
        self.stale = False
        self.full_since: float | None = None

    def buffered(self) -> int:
        transport = self.conn.transport
        return transport.get_write_buffer_size() if transport is not None else 0


class OscQueryServer(QueryHttp):
    """The OSCQuery server of one show (see the module's docstring). `publish` is its Feedback."""

    def __init__(self, queue: ControlQueue, reporter: Reporter, host: str = "127.0.0.1", port: int = 9001,
                 *, osc: tuple[str, int] | None = None, allow: tuple[str, ...] | list[str] = (),
                 allow_quit: bool = False, local: tuple[str, ...] = LOCAL, registry: Registry = REGISTRY,
                 commands: Mapping[str, str] = COMMANDS, max_clients: int = MAX_CLIENTS,
                 name: str = "noclip") -> None:
        self.router = OscRouter(queue, reporter, allow, registry, allow_quit=allow_quit, local=local,
                                source="oscquery")
        self.stats = self.router.stats
        self.reporter, self.registry, self.commands = reporter, registry, commands
        self.osc, self.name, self.max_clients = osc, name, max_clients
        self.sock = tcp_listener(host, port, 64)
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self._snap: Snapshot = snapshot(registry, commands, None)
        self._tree = Tree(self._snap)
        self._streamed = self._snap          # the snapshot the clients were last streamed from
        self._cache: tuple[Snapshot, bytes] | None = None  # (snapshot, JSON of the whole tree)
        self.clients: dict[ServerConnection, Client] = {}
        self._open = 0                       # TCP connections open (counted on accept)
        self._connected = 0                  # WebSockets open: read by the loop's thread
        self._woken = False
        self._last_flush = 0.0
        self._tokens, self._refilled = BURST, time.perf_counter()
        self._requests = Buckets(*REQUESTS)
        self._names = own_names()
        self._page: bytes | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="oscquery", daemon=True)

    # -- the loop's side -----------------------------------------------------------------------

    def start(self) -> OscQueryServer:
        self._thread.start()
        if not self._ready.wait(10.0):
            raise OSError("the OSCQuery server did not start")
        return self

    def publish(self, fp: FrameParams) -> None:
        """Called by the frame loop once a frame: the snapshot the server reads, and a wake-up of
        its thread while a WebSocket is open (at most one pending)."""
        self._snap = snapshot(self.registry, self.commands, fp, self._snap)
        if self._connected and not self._woken:
            self._woken = True
            try:
                self._loop.call_soon_threadsafe(self._flush)
            except RuntimeError:  # the server's loop has closed
                self._woken = False

    def close(self) -> None:
        if self._thread.is_alive() and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
            self._thread.join(timeout=5.0)
        self.sock.close()

    # -- the server's thread -------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except Exception as exc:  # the show goes on without its OSCQuery server
            self.reporter.error("oscquery", f"the server stopped: {type(exc).__name__}: {exc}")
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        quiet = logging.getLogger("noclip.oscquery.websockets")
        quiet.setLevel(logging.CRITICAL)  # refused and broken clients are counted, not logged each
        server = await serve(self._ws, sock=self.sock, process_request=self._http,
                             create_connection=self._connection_class(), open_timeout=OPEN_TIMEOUT,
                             ping_interval=5.0, ping_timeout=10.0, close_timeout=2.0, max_size=MAX_MESSAGE,
                             max_queue=16, server_header="noclip", logger=quiet,
                             compression=None)  # deflate per client per frame costs more than it saves
        self._ready.set()
        await self._stop.wait()
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), 3.0)
        except TimeoutError:
            pass

    def _connection_class(self) -> type[ServerConnection]:
        outer = self

        class Connection(ServerConnection):
            """Cut off on accept: senders outside the allow-list, connections past the cap."""

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                outer._open += 1
                peer = transport.get_extra_info("peername")
                host = peer[0] if peer else ""
                if not outer.router.admit(host)[0]:
                    outer._refuse("denied", host, f"connection from {host} not in --osc-allow")
                    cast(asyncio.Transport, transport).abort()  # a TCP server's transport
                elif outer._open > outer.max_clients:
                    outer._refuse("full", host, f"connection from {host} refused: {outer.max_clients} open")
                    cast(asyncio.Transport, transport).abort()

            def connection_lost(self, exc: Exception | None) -> None:
                outer._open -= 1
                super().connection_lost(exc)

        return Connection

    def _refuse(self, kind: str, key: str, message: str) -> None:
        self.stats[kind] += 1
        self.reporter.problem(f"oscquery {kind}", key, message)

    # -- the address space ---------------------------------------------------------------------

    def _current_tree(self) -> Tree:
        """The tree of the latest snapshot's registry: rebuilt when a chain declared parameters,
        and every WebSocket told what changed."""
        snap = self._snap
        if snap.version == self._tree.version:
            return self._tree
        old, self._tree = self._tree, Tree(snap)
        added, changed, removed = diff(old, self._tree)
        notes = ([("PATH_ADDED", p) for p in added] + [("PATH_CHANGED", p) for p in changed]
                 + [("PATH_REMOVED", p) for p in removed])
        for client in list(self.clients.values()):
            client.listens.difference_update(removed)
            for command, path in notes:
                self._send(client, json.dumps({"COMMAND": command, "DATA": path}))
        return self._tree

    # -- WebSockets ----------------------------------------------------------------------------

    async def _ws(self, conn: ServerConnection) -> None:
        client = Client(conn, self.router.admit(conn.remote_address[0])[1])
        self.clients[conn] = client
        self._connected += 1
        self.stats["websockets"] += 1
        try:
            async for message in conn:
                t0 = time.perf_counter()
                if isinstance(message, str):
                    self._command(client, message)
                else:
                    self.router.handle(bytes(message), client.sender, t0)
                await self._spend(time.perf_counter() - t0)
        except ConnectionClosed:
            pass
        finally:
            self.clients.pop(conn, None)
            self._connected -= 1

    async def _spend(self, cost: float) -> None:
        """The parsing budget of all WebSockets together; spent, this client's reading waits."""
        now = time.perf_counter()
        self._tokens = min(BURST, self._tokens + (now - self._refilled) * SHARE) - cost
        self._refilled = now
        if self._tokens < 0.0:
            self.stats["waited"] += 1
            await asyncio.sleep(-self._tokens / SHARE)

    def _command(self, client: Client, text: str) -> None:
        """LISTEN / IGNORE a path (JSON); anything else is counted and dropped."""
        try:
            msg = json.loads(text) if len(text) <= MAX_TEXT else None
        except ValueError:
            msg = None
        command = msg.get("COMMAND") if isinstance(msg, dict) else None
        path = msg.get("DATA") if isinstance(msg, dict) else None
        if command not in ("LISTEN", "IGNORE") or not isinstance(path, str):
            return self._refuse("bad command", client.sender[0], f"not a LISTEN or IGNORE: {text[:80]!r}")
        tree = self._current_tree()
        if command == "IGNORE":
            client.listens.discard(path)
            return None
        if path not in tree.readers:
            return self._refuse("bad command", client.sender[0], f"LISTEN {path[:80]}: no such value")
        client.listens.add(path)
        data = tree.message(path, self._snap)  # where it stands now: later changes follow
        if data is not None:
            self._send(client, data)
        return None

    def _flush(self) -> None:
        """A frame was published: stream what changed since the last streaming to those who listen
        to it, at most every STREAM_GAP seconds (later frames wait and coalesce: the newest wins)."""
        now = time.monotonic()
        wait = self._last_flush + STREAM_GAP - now
        if wait > 0.0:
            self._loop.call_later(wait, self._flush)
            return
        self._woken = False
        self._last_flush = now
        tree = self._current_tree()
        snap, before = self._snap, self._streamed
        self._streamed = snap
        if snap is before:
            return
        paths = changed_paths(before, snap, tree)
        built: dict[str, bytes | None] = {}
        packed: dict[tuple[str, ...], bytes | None] = {}  # clients that listen alike share the bytes
        for client in list(self.clients.values()):
            if not client.listens:
                continue
            if client.buffered() > MAX_BUFFERED:  # it does not read: it misses values, then catches up
                if not client.stale:
                    self.stats["behind"] += 1
                client.stale = True
                client.full_since = client.full_since or now
                if now - client.full_since > STALL:
                    who = client.sender[0]
                    self._refuse("stalled", who, f"{who} read nothing for {STALL:g} s")
                    client.conn.transport.abort()
                continue
            client.full_since = None
            want = tuple(sorted(client.listens) if client.stale else [p for p in paths if p in client.listens])
            client.stale = False
            if not want:
                continue
            if want not in packed:
                packets = []
                for path in want:
                    if path not in built:
                        built[path] = tree.message(path, snap)
                    message = built[path]
                    if message is not None:
                        packets.append(message)
                packed[want] = (packets[0] if len(packets) == 1 else bundle(packets)) if packets else None
            data = packed[want]
            if data is not None:
                self._send(client, data)

    def _send(self, client: Client, data: bytes | str) -> None:
        broadcast([client.conn], data)
        self.stats["sent"] += 1
