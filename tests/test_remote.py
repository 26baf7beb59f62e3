"""The web remote in a real browser (headless Chromium over the DevTools protocol), at phone size:
a fader moved by input events changes the show's parameter (read back through OSCQuery's VALUE),
an OSC change moves the fader, the pads run commands and REC shows the show's state."""

from __future__ import annotations

import io
import os
import socket
import time

import numpy as np
import pytest
from PIL import Image

from instrument.bench.browser import PHONE, Browser, find_chromium
from instrument.clock import OfflineClock
from instrument.control import ControlQueue
from instrument.control.osc import OscControl
from instrument.control.oscquery import OscQueryServer
from instrument.control.oscwire import build
from instrument.patch import load_patch
from instrument.report import Reporter
from instrument.show import Show

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium; .ci/run does)")


def until(cond, step, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        step()
        if cond():
            return True
        time.sleep(0.01)
    return bool(cond())


@pytest.fixture(scope="module")
def rig(ctx):
    queue, reporter = ControlQueue(), Reporter()
    osc = OscControl(queue, reporter, "127.0.0.1", 0)
    server = OscQueryServer(queue, reporter, "127.0.0.1", 0, osc=osc.address).start()
    show = Show(ctx, load_patch("testcard"), (160, 120), clock=OfflineClock(60), queue=queue,
                reporter=reporter, feedback=[osc, server], sources=[osc])
    show.step()
    browser = Browser(CHROMIUM)
    browser.goto(f"http://127.0.0.1:{server.address[1]}/remote")
    browser.wait("window.remote && window.remote.ready")
    yield show, server, osc, browser
    browser.close()
    show.close()
    server.close()
    osc.close()


def value(server, name):
    import http.client
    import json

    c = http.client.HTTPConnection("127.0.0.1", server.address[1], timeout=5)
    c.request("GET", f"/noclip/{name}?VALUE")
    out = json.loads(c.getresponse().read())["VALUE"][0]
    c.close()
    return out


def test_every_parameter_has_a_control_by_group(rig):
    show, _, _, browser = rig
    paths = set(browser.eval("[...document.querySelectorAll('#params .row')].map(r => r.dataset.path)"))
    assert paths == {f"/noclip/{spec.name}" for spec in show.bank.registry}
    groups = browser.eval("[...document.querySelectorAll('#tabs .tab')].map(t => t.dataset.group)")
    assert sorted(groups) == sorted({spec.group for spec in show.bank.registry})
    pads = browser.eval("[...document.querySelectorAll('.pad')].map(p => p.dataset.cmd)")
    for cmd in ("seed/next", "noclip", "tracking/jump", "record/toggle", "tap"):
        assert cmd in pads
    assert "quit" not in pads


def test_a_fader_moves_the_show_and_osc_moves_the_fader(rig):
    show, server, osc, browser = rig
    browser.tap('.tab[data-group="generator"]')
    browser.wait("document.querySelector('[data-path=\"/noclip/prompt_fade\"]').offsetHeight > 0")
    browser.drag('[data-path="/noclip/prompt_fade"] .fader', 0.1, 0.75)
    # the last position of the drag is the show's value, read back through OSCQuery
    assert until(lambda: abs(value(server, "prompt_fade") - 22.5) < 0.6, show.step)
    sent = browser.eval("remote.controls.get('/noclip/prompt_fade').value")
    assert value(server, "prompt_fade") == pytest.approx(sent, abs=1e-5)
    assert browser.wait("remote.rtts.length > 0")  # the echo came back and was timed
    # an OSC message from elsewhere moves the fader (once the finger's hold is over)
    time.sleep(0.5)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.sendto(build("/noclip/prompt_fade", 6.0), osc.address)
    udp.close()
    assert until(lambda: browser.eval("remote.controls.get('/noclip/prompt_fade').value") == 6.0, show.step)
    width = browser.eval("document.querySelector('[data-path=\"/noclip/prompt_fade\"] .fill').style.width")
    assert float(width.rstrip("%")) == pytest.approx(20.0, abs=0.01)


def test_toggles_menus_and_pads(rig):
    show, server, _, browser = rig
    browser.tap('.tab[data-group="vhs"]')
    before = show.fp["interlace"]
    browser.tap('[data-path="/noclip/interlace"] .toggle')
    assert until(lambda: show.fp["interlace"] is (not before), show.step)
    browser.tap('[data-path="/noclip/tape_speed"] button[data-v="EP"]')
    assert until(lambda: show.fp["tape_speed"] == "EP", show.step)
    seed = show.fp["seed"]
    browser.tap('.pad[data-cmd="seed/next"]')
    assert until(lambda: show.fp["seed"] == seed + 1, show.step)
    assert not browser.eval("document.getElementById('rec').classList.contains('on')")
    browser.tap('.pad[data-cmd="record/toggle"]')
    assert until(lambda: show.recording, show.step)
    assert until(lambda: browser.eval("document.getElementById('rec').classList.contains('on')"), show.step)
    assert value(server, "recording") is True
    browser.tap('.pad[data-cmd="record/toggle"]')
    assert until(lambda: not browser.eval("document.getElementById('rec').classList.contains('on')"), show.step)


def test_phone_screenshot(rig, tmp_path):
    show, _, _, browser = rig
    browser.tap('.tab[data-group="vhs"]')
    for _ in range(5):
        show.step()
    time.sleep(0.3)
    png = browser.screenshot()
    out = os.environ.get("NOCLIP_REMOTE_SCREENSHOT")
    (tmp_path / "remote.png").write_bytes(png)
    if out:
        with open(out, "wb") as f:
            f.write(png)
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert img.shape[:2] == (PHONE[1] * 2, PHONE[0] * 2)
    assert img.std() > 10  # a page, not a blank
