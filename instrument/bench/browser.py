"""A real browser for the web remote's tests and bench: the system's Chromium, headless, driven over
the DevTools protocol (CDP) with a few lines over `websockets` rather than Playwright, which would
download a browser of its own. Input goes in as the browser's own input events (Input.dispatch*),
so a test moves a fader the way a finger does, through the page's pointer handlers.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from typing import Any

from websockets.sync.client import connect

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PHONE = (390, 844)  # CSS pixels of a current phone in portrait


def find_chromium() -> str | None:
    for name in (os.environ.get("NOCLIP_CHROMIUM", ""), *CANDIDATES):
        path = shutil.which(name) if name else None
        if path:
            return path
    return None


class Browser:
    """One headless Chromium with one page, sized like a phone; `close` ends the process."""

    def __init__(self, exe: str, size: tuple[int, int] = PHONE, scale: float = 2.0) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="noclip-chromium-", ignore_cleanup_errors=True)
        args = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--mute-audio", "--remote-debugging-port=0",
                f"--user-data-dir={self._dir.name}", f"--window-size={size[0]},{size[1]}", "about:blank"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._id = 0
        self._stack = contextlib.ExitStack()
        try:
            port = self._port()
            self.ws = self._stack.enter_context(connect(self._page(port), max_size=None, open_timeout=10))
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1],
                      deviceScaleFactor=scale, mobile=True)
            self.call("Emulation.setTouchEmulationEnabled", enabled=True, maxTouchPoints=5)
        except Exception:
            self.close()
            raise

    def _port(self) -> int:
        end = time.monotonic() + 30
        seen = []
        while time.monotonic() < end:
            line = self.proc.stderr.readline() if self.proc.stderr else ""
            if not line and self.proc.poll() is not None:
                break
            seen.append(line)
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if m:  # the rest of its chatter is read and dropped, so a full pipe never blocks it
                threading.Thread(target=self._drain, daemon=True).start()
                return int(m.group(1))
        raise RuntimeError("chromium did not start: " + "".join(seen[-10:]))

    def _drain(self) -> None:
        try:
            for _ in self.proc.stderr or ():
                pass
        except (OSError, ValueError):
            pass

    @staticmethod
    def _page(port: int) -> str:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.1)
        raise RuntimeError("chromium has no page")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expression: str, timeout: float = 10.0) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.02)
        raise TimeoutError(expression)

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def rect(self, selector: str) -> tuple[float, float, float, float]:
        """An element's box in CSS pixels (scrolled into view first)."""
        sel = json.dumps(selector)
        return tuple(self.eval(f"(() => {{ const e = document.querySelector({sel}); "
                               f"e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); "
                               f"return [r.left, r.top, r.width, r.height]; }})()"))

    def tap(self, selector: str) -> None:
        x, y, w, h = self.rect(selector)
        point = [{"x": x + w / 2, "y": y + h / 2}]
        self.call("Input.dispatchTouchEvent", type="touchStart", touchPoints=point)
        self.call("Input.dispatchTouchEvent", type="touchEnd", touchPoints=[])

    def drag(self, selector: str, start: float, end: float, steps: int = 8) -> None:
        """A mouse drag across an element from `start` to `end` (0..1 of its width)."""
        x, y, w, h = self.rect(selector)
        cy = y + h / 2
        self.call("Input.dispatchMouseEvent", type="mousePressed", x=x + start * w, y=cy, button="left",
                  clickCount=1)
        for i in range(1, steps + 1):  # steps=0: a press and a release in one place
            u = start + (end - start) * i / steps
            self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x + u * w, y=cy, button="left")
        self.call("Input.dispatchMouseEvent", type="mouseReleased", x=x + end * w, y=cy, button="left",
                  clickCount=1)

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        try:
            self._stack.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        # Chromium's helper processes can outlive the browser by a moment and still write to the
        # profile ("Directory not empty" mid-removal): remove it until it is gone, 2 s at most
        for _ in range(20):
            shutil.rmtree(self._dir.name, ignore_errors=True)
            if not os.path.exists(self._dir.name):
                break
            time.sleep(0.1)
        self._dir.cleanup()
