"""What the OSC port sends back, and what a sender beyond this machine may do — over real UDP.

Every sender here is on 127.0.0.1; the shows are made with `local=()` where the test is about
senders beyond this machine, so loopback is treated as the network would be (the same code path a
LAN sender takes; only the classification of the address is overridden).
"""

from __future__ import annotations

import socket
import time

import pytest

from instrument.clock import OfflineClock
from instrument.control import ControlQueue
from instrument.control.osc import OscControl
from instrument.control.oscwire import OscError, build, parse
from instrument.patch import load_patch
from instrument.report import Reporter
from instrument.show import Show


def rx_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.3)
    return s


def drain(sock: socket.socket, wait: float = 0.3) -> list[bytes]:
    """Everything that arrives at `sock` within `wait` seconds of quiet."""
    out = []
    sock.settimeout(wait)
    try:
        while True:
            out.append(sock.recv(65536))
    except (TimeoutError, BlockingIOError):
        return out


@pytest.fixture
def remote(ctx):
    """A show whose OSC port treats every sender as one beyond this machine."""
    queue, reporter = ControlQueue(), Reporter()
    osc = OscControl(queue, reporter, "127.0.0.1", 0, local=(), ttl=30.0)
    show = Show(ctx, load_patch("testcard"), (64, 48), clock=OfflineClock(60), queue=queue,
                reporter=reporter, feedback=[osc])
    show.step()
    yield show, osc
    show.close()
    osc.close()


def pump(show, osc, n: int = 3) -> None:
    for _ in range(n):
        time.sleep(0.01)
        osc.poll()
        show.step()


def test_an_unconfirmed_sender_gets_back_at_most_3x_what_it_sent(remote):
    """The reflection a forged source could aim at a victim: dumps, subscribes, confirms with wrong
    nonces, in a storm. Before: a 24-byte dump answered with 43 datagrams (and 66.5 KB after a long
    prompt). Now everything that reaches the sender's own port and the ports it names is measured."""
    show, osc = remote
    tx, victim = rx_socket(), rx_socket()
    vport = victim.getsockname()[1]
    # a 60 KB prompt first: before, every dump then carried it back
    tx.sendto(build("/noclip/prompt", "x" * 60_000), osc.address)
    pump(show, osc)
    sent = 0
    requests = [build("/noclip/cmd/dump"), build("/noclip/cmd/dump", vport),
                build("/noclip/cmd/dump", vport, "norm"), build("/noclip/cmd/subscribe", vport),
                build("/noclip/cmd/subscribe", vport, "norm"), build("/noclip/cmd/confirm", 12345),
                build("/noclip/cmd/unsubscribe", vport)]
    for i in range(600):
        p = requests[i % len(requests)]
        tx.sendto(p, osc.address)
        sent += len(p)
        if i % 50 == 0:
            pump(show, osc, 1)
    pump(show, osc, 5)
    back = drain(tx) + drain(victim)
    got = sum(len(p) for p in back)
    assert got <= 3 * sent, (got, sent)
    assert got <= 0.1 * sent  # challenges are rate-limited too: a storm gets a handful
    assert all(parse(p)[0][0] == "/noclip/confirm" for p in back)  # nothing but challenges
    assert all(len(p) == 24 for p in back)
    assert osc.stats["subscribed"] == 0 and not osc._subs
    assert len(show.fp["prompt"]) == 1000  # cut in the registry, whatever the entrance
    tx.close()
    victim.close()


def handshake(show, osc, tx: socket.socket, *args) -> int:
    tx.sendto(build("/noclip/cmd/subscribe", *args), osc.address)
    pump(show, osc, 1)
    tx.settimeout(2.0)
    (address, (nonce,), _), = parse(tx.recv(65536))
    assert address == "/noclip/confirm" and isinstance(nonce, int)
    return nonce


def test_a_subscription_starts_when_the_nonce_comes_back(remote):
    show, osc = remote
    tx, rx = rx_socket(), rx_socket()
    port = rx.getsockname()[1]
    nonce = handshake(show, osc, tx, port)
    pump(show, osc)
    assert drain(rx, 0.1) == [] and not osc._subs  # nothing before the echo
    other = rx_socket()  # the echo must come from where the nonce went
    other.sendto(build("/noclip/cmd/confirm", nonce), osc.address)
    tx.sendto(build("/noclip/cmd/confirm", nonce + 1), osc.address)
    pump(show, osc)
    assert not osc._subs and osc.stats["bad handshake"] == 2
    tx.sendto(build("/noclip/cmd/confirm", nonce), osc.address)
    pump(show, osc)
    assert list(osc._subs) == [("127.0.0.1", port)]
    values = {m[0]: m[1][0] for p in drain(rx, 0.1) for m in parse(p)}
    assert values["/noclip/seed"] == show.fp["seed"]  # everything once, then changes
    tx.sendto(build("/noclip/seed", 777), osc.address)
    pump(show, osc)
    assert {m[0]: m[1][0] for p in drain(rx, 0.1) for m in parse(p)}["/noclip/seed"] == 777
    # only the sender that confirmed renews without a handshake; anyone else is challenged
    other.sendto(build("/noclip/cmd/subscribe", port), osc.address)
    pump(show, osc)
    assert [parse(p)[0][0] for p in drain(other, 0.1)] == ["/noclip/confirm"]
    # a confirmed sender may dump, rate-limited
    tx.sendto(build("/noclip/cmd/dump"), osc.address)
    pump(show, osc)
    assert len(drain(tx, 0.1)) > 20
    for s in (tx, rx, other):
        s.close()


def test_subscriptions_expire_unless_renewed_and_are_capped(remote):
    show, osc = remote
    tx = rx_socket()
    rxs = [rx_socket() for _ in range(10)]
    osc.replies.max_subs = 8
    now = [time.monotonic()]  # the subscriptions' clock, stepped by hand
    osc.replies.clock = lambda: now[0]
    osc.replies.ttl = 0.6
    for rx in rxs[:8]:
        nonce = handshake(show, osc, tx, rx.getsockname()[1])
        tx.sendto(build("/noclip/cmd/confirm", nonce), osc.address)
        pump(show, osc, 1)
        osc.replies._per_host._b.clear()  # this test is about the cap, not the handshake rate
    assert len(osc._subs) == 8
    nonce = handshake(show, osc, tx, rxs[8].getsockname()[1])
    tx.sendto(build("/noclip/cmd/confirm", nonce), osc.address)
    pump(show, osc, 1)
    assert len(osc._subs) == 8 and osc.stats["subscribers full"] == 1
    # renew one (no new handshake while it runs), let the rest lapse (ttl 0.6 s)
    kept = rxs[0].getsockname()[1]
    for _ in range(4):
        now[0] += 0.2
        tx.sendto(build("/noclip/cmd/subscribe", kept), osc.address)
        pump(show, osc, 1)
    now[0] += 0.3
    pump(show, osc, 2)
    assert list(osc._subs) == [("127.0.0.1", kept)] and osc.stats["expired"] == 7
    assert set(osc.replies._sent) <= {("127.0.0.1", kept)}  # what was sent to the lapsed is forgotten
    for rx in rxs[1:8]:
        drain(rx, 0.05)
    tx.sendto(build("/noclip/seed", 4321), osc.address)
    pump(show, osc)
    assert all(drain(rx, 0.05) == [] for rx in rxs[1:8])
    assert any(b"/noclip/seed" in p for p in drain(rxs[0], 0.1))
    tx.sendto(build("/noclip/cmd/unsubscribe", kept), osc.address)
    pump(show, osc)
    assert not osc._subs and not osc.replies._sent
    for s in (tx, *rxs):
        s.close()


def test_a_network_sender_names_patches_never_paths_and_may_not_quit(remote, tmp_path):
    show, osc = remote
    tx = rx_socket()
    secret = tmp_path / "mine.toml"
    secret.write_text('version = 1\nname = "mine"\n[params]\nseed = 99\n')
    for path in (str(secret), "../patches/fresh_sp", "/etc/passwd", "fresh_sp.toml"):
        tx.sendto(build("/noclip/cmd/patch/load", path), osc.address)
    tx.sendto(build("/noclip/cmd/quit"), osc.address)
    pump(show, osc)
    assert show.patch.name == "testcard" and show.running
    assert osc.stats["refused"] == 5
    tx.sendto(build("/noclip/cmd/patch/load", "fresh_sp"), osc.address)
    pump(show, osc)
    assert show.patch.name == "fresh_sp"
    # heavy commands: two at once, then one a second per sender
    for _ in range(10):
        tx.sendto(build("/noclip/cmd/patch/load", "testcard"), osc.address)
    pump(show, osc)
    assert osc.stats["throttled"] == 9
    assert show.patch.name == "testcard"
    tx.close()


def test_quit_from_the_network_when_allowed(ctx):
    queue, reporter = ControlQueue(), Reporter()
    osc = OscControl(queue, reporter, "127.0.0.1", 0, local=(), allow_quit=True)
    show = Show(ctx, load_patch("testcard"), (64, 48), clock=OfflineClock(60), queue=queue, reporter=reporter)
    tx = rx_socket()
    try:
        tx.sendto(build("/noclip/cmd/quit"), osc.address)
        pump(show, osc)
        assert not show.running
    finally:
        tx.close()
        show.close()
        osc.close()


def test_repeats_of_heavy_commands_in_one_frame_run_once(ctx):
    """100 patch/load in a frame stalled the loop 0.18 s: now the last one runs, whichever source
    put them in the queue (here put straight in, past any per-sender throttle)."""
    from instrument.control import ControlEvent

    queue, reporter = ControlQueue(), Reporter()
    show = Show(ctx, load_patch("testcard"), (64, 48), clock=OfflineClock(60), queue=queue, reporter=reporter)
    loaded = []
    show.commands["patch/load"] = lambda e: loaded.append(e.value)
    for i in range(100):
        queue.put(ControlEvent("osc", "cmd/patch/load", (f"p{i}",)))
    show.step()
    assert loaded == [("p99",)]
    show.close()


def test_the_parser_refuses_what_python_osc_hung_on():
    from instrument.bench.hostile import STUCK

    with pytest.raises(OscError, match="element size -4"):
        parse(STUCK)
