"""The interpretability report opens in a real headless browser (Debian's chromium).

Chromium is driven through the DevTools protocol over a small websocket client written
here (no extra dependency): the page is loaded from disk with networking disabled, every
JavaScript exception and console error is collected, each image must have decoded
(``naturalWidth > 0``) and every report section and law part must be present. A
screenshot of the full page is saved beside the report. A deliberately broken copy of
the report (corrupt image, throwing script, missing section) must fail the same checks.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from experiments.core.html_report import LAW_PARTS, SECTIONS, Check, Report, write_report
from experiments.core.laws import FrontPoint, Law, Literature

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--window-size=1200,900",
)


class DevTools:
    """A minimal DevTools-protocol client over one websocket (RFC 6455, text frames)."""

    def __init__(self, ws_url: str, timeout: float = 60.0) -> None:
        rest = ws_url.removeprefix("ws://")
        hostport, path = rest.split("/", 1)
        host, port = hostport.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(1)
        assert b" 101 " in response.split(b"\r\n")[0], response
        self.next_id = 0
        self.events: list[dict] = []

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("devtools websocket closed")
            buf += chunk
        return buf

    def _recv_message(self) -> dict:
        payload = b""
        while True:
            b0, b1 = self._recv_exact(2)
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._recv_exact(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._recv_exact(8))[0]
            payload += self._recv_exact(length)
            if b0 & 0x80:  # FIN
                return json.loads(payload)

    def call(self, method: str, **params) -> dict:
        """Send one command and return its result; events received meanwhile are kept."""
        self.next_id += 1
        data = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
        mask = os.urandom(4)
        n = len(data)
        header = bytes([0x81]) + (
            bytes([0x80 | n])
            if n < 126
            else bytes([0x80 | 126]) + struct.pack(">H", n)
            if n < 65536
            else bytes([0x80 | 127]) + struct.pack(">Q", n)
        )
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(header + mask + masked)
        while True:
            msg = self._recv_message()
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 60.0) -> dict:
        """Block until an event named ``method`` arrives (or was already received)."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            if time.monotonic() > deadline:
                raise TimeoutError(method)
            self.events.append(self._recv_message())


_PAGE_CHECKS = """JSON.stringify({
  images: Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete,
                                                  width: i.naturalWidth})),
  sections: Array.from(document.querySelectorAll('body > section')).map(s => s.id),
  laws: Array.from(document.querySelectorAll('section.law')).map(
      s => Array.from(s.children).map(c => c.className).filter(c => c)),
})"""


def inspect_in_chromium(html_path: Path, screenshot: Path) -> dict:
    """Load ``html_path`` in headless chromium; return images, sections, law parts, errors."""
    profile = html_path.parent / f"chromium-profile-{os.getpid()}"
    proc = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            assert proc.poll() is None, "chromium exited early"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            tools.call(f"{domain}.enable")
        tools.call("Page.navigate", url=html_path.resolve().as_uri())
        tools.wait_event("Page.loadEventFired")
        page = json.loads(
            tools.call("Runtime.evaluate", expression=_PAGE_CHECKS, returnByValue=True)["result"][
                "value"
            ]
        )
        shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        errors = [
            e["params"]["exceptionDetails"]["exception"].get("description", "exception")
            for e in tools.events
            if e.get("method") == "Runtime.exceptionThrown"
        ]
        errors += [
            e["params"]["entry"]["text"]
            for e in tools.events
            if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"
        ]
        errors += [
            str(e["params"]["args"])
            for e in tools.events
            if e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error"
        ]
        page["errors"] = errors
        return page
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


def problems(page: dict, n_laws: int) -> list[str]:
    """Everything wrong with a loaded report: JS errors, broken images, missing parts."""
    found = [f"javascript error: {e}" for e in page["errors"]]
    found += [f"broken image: {i['alt']}" for i in page["images"] if i["width"] == 0]
    found += [f"missing section: {s}" for s in SECTIONS if s not in page["sections"]]
    if len(page["laws"]) != n_laws:
        found.append(f"{len(page['laws'])} law blocks, expected {n_laws}")
    for i, parts in enumerate(page["laws"]):
        found += [f"law {i}: missing part {p}" for p in LAW_PARTS if p not in parts]
    return found


@pytest.fixture(scope="module")
def report_path(tmp_path_factory) -> Path:
    """A two-law report built by the report machinery from a known law and noisy data."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    rng = np.random.default_rng(1)
    x, w = sp.symbols("x w")
    X = np.column_stack([rng.uniform(0.3, 1.0, 150), rng.uniform(-1.3, -0.7, 150)])
    y = X[:, 0] ** (0.55 + 0.03 * (1 + X[:, 1])) * (1 + 1e-3 * rng.normal(size=150))
    front = [FrontPoint(1, 1e-2, "x"), FrontPoint(3, 2e-6, "x**0.55"), FrontPoint(7, 1e-6, "...")]
    lit = Literature(
        "power law",
        "test reference",
        x**0.55,
        lambda X: X[:, 0] ** 0.55,
        [("gamma", 0.551, 0.55)],
    )
    laws = [
        Law(
            "f(x, w)",
            "f",
            ("x", "w"),
            x ** (0.55 + 0.03 * (1 + w)),
            X,
            y,
            front=front,
            chosen=1,
            literature=[lit],
            constants={"gamma": (0.55, 1e-3)},
        ),
        Law("f(x)", "f", ("x",), x**0.55, X[:, :1], y),
    ]
    report = Report(
        "browser-test",
        "Does the report render?",
        {"samples": 150},
        laws,
        [Check("gamma", 0.55, "0.55 +- 0.01", True)],
        {"seed": 1},
    )
    return write_report(tmp_path_factory.mktemp("report") / "report.html", report)


def test_report_renders_in_chromium(report_path: Path):
    screenshot = report_path.with_suffix(".png")
    page = inspect_in_chromium(report_path, screenshot)
    print(f"screenshot: {screenshot}")
    assert problems(page, n_laws=2) == []
    # law 1: front, equation, parity, residuals, dependence; law 2 (no front): four.
    assert len(page["images"]) == 9
    assert screenshot.stat().st_size > 10_000


def test_broken_report_is_caught(report_path: Path):
    html = report_path.read_text()
    broken = html.replace('id="provenance"', 'id="elsewhere"', 1)
    broken = broken.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1)
    broken = broken.replace("</body>", "<script>undefinedFunction();</script></body>")
    path = report_path.with_name("broken.html")
    path.write_text(broken)
    found = problems(inspect_in_chromium(path, path.with_suffix(".png")), n_laws=2)
    assert any(p.startswith("javascript error") for p in found), found
    assert any(p.startswith("broken image") for p in found), found
    assert "missing section: provenance" in found
