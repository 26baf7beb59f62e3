"""Ableton Link: our layer against aalink's API faked, and a real two-peer session on loopback
where aalink is installed (it is an optional extra)."""

import select
import socket
import sys
import time

import pytest

from instrument.control import ControlQueue
from instrument.control.link import LinkFollower, LinkUnavailable, load_aalink
from instrument.control.tempo import ClockFeed


class FakeLink:
    """aalink.Link's surface: a session tempo we must never write after joining."""

    def __init__(self, bpm, loop=None):
        self._tempo, self.num_peers, self.playing, self.enabled = bpm, 0, False, False
        self.quantum, self.start_stop_sync_enabled, self.t0 = 1.0, False, time.perf_counter()
        self.writes = 0

    @property
    def tempo(self):
        return self._tempo

    @tempo.setter
    def tempo(self, value):
        self.writes += 1
        self._tempo = value

    @property
    def beat(self):
        return (time.perf_counter() - self.t0) * self._tempo / 60.0


class FakeModule:
    Link = FakeLink


def test_follower_reads_the_session_and_never_writes_its_tempo():
    f = LinkFollower(quantum=3, aalink=FakeModule)
    link = f.link
    assert link.enabled and link.start_stop_sync_enabled and link.quantum == 3 and f.numerator == 3
    assert f.tempo is None  # alone: not a clock, the next source plays
    link.num_peers, link._tempo = 1, 97.0  # joined Live's session at its tempo
    assert f.tempo == 97.0 and link.writes == 0
    t = time.perf_counter()
    assert f.beat(t + 0.5) == pytest.approx(link.beat + 0.5 * 97 / 60, abs=1e-3)
    assert f.running  # nobody uses start/stop: the timeline runs
    link.playing = True
    assert f.running
    link.playing = False
    assert not f.running  # start/stop sync in use: stopped is stopped
    q = ControlQueue()
    (e,) = ClockFeed(q, {"link": f}).poll()
    assert e.value["source"] == "link" and e.value["tempo"] == 97.0 and e.value["numerator"] == 3
    f.close()
    assert not link.enabled


def test_missing_aalink_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "aalink", None)  # what an absent module looks like to import
    with pytest.raises(LinkUnavailable, match=r"noclip\[link\]"):
        load_aalink()


LINK_GROUP = ("224.76.78.75", 20808)  # Link's discovery multicast group and port
SESSION_EPS = 0.5  # two sessions merge into the older only when it is older by more (Link's Sessions.hpp)


def link_announcements() -> socket.socket:
    """A listener on Link's discovery group on loopback: the first announcement of a peer is the
    moment its session exists (its timeline's ghost clock starts then)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # Link's own sockets share the port
    sock.bind(LINK_GROUP)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                    socket.inet_aton(LINK_GROUP[0]) + socket.inet_aton("127.0.0.1"))
    return sock


def first_announcement(sock: socket.socket, timeout: float) -> float | None:
    end = time.perf_counter() + timeout
    while (left := end - time.perf_counter()) > 0:
        if select.select([sock], [], [], left)[0] and sock.recv(2048).startswith(b"_asdp_v"):
            return time.perf_counter()
    return None


def test_two_real_peers_on_loopback_share_tempo_and_phase():
    aalink = pytest.importorskip("aalink", reason="aalink (the optional noclip[link] extra) is not installed")
    import asyncio
    import warnings

    loop = asyncio.new_event_loop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        live = aalink.Link(133.0, loop)  # the session as Live holds it
    live.quantum = 4
    listener = link_announcements()
    live.enabled = True
    ours = None
    try:
        # Link enables on its own thread, measured here 0 or 500 ms after the call: Live's session
        # exists from its first announcement, and Link keeps the older session only when it is
        # older by more than SESSION_EPS (else the lower random session id wins, a coin toss)
        founded = first_announcement(listener, 3.0)
        assert founded is not None, "Live's Link peer never announced itself on loopback"
        time.sleep(max(0.0, founded + SESSION_EPS + 0.2 - time.perf_counter()))
        ours = LinkFollower(quantum=4, aalink=aalink)
        end = time.perf_counter() + 3.0
        while (ours.tempo is None or abs(ours.tempo - 133.0) > 0.01) and time.perf_counter() < end:
            time.sleep(0.05)
        assert ours.peers >= 1 and ours.tempo == pytest.approx(133.0, abs=0.01)  # we took Live's tempo
        assert live.tempo == pytest.approx(133.0, abs=0.01)  # and never moved it
        # Link shares the phase within the quantum, not the beat count: each peer numbers its own
        # bars (a follower joining mid-bar may count a bar apart), and the downbeats line up
        t = time.perf_counter()
        apart = (ours.beat(t) - live.beat + 2.0) % 4.0 - 2.0
        assert abs(apart) * 60 / 133.0 * 1000 < 5.0
    finally:
        listener.close()
        if ours is not None:
            ours.close()
        live.enabled = False
        loop.close()
