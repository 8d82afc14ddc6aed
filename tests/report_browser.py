"""Reports opened in a real headless browser (Debian's chromium), for the browser tests.

Chromium is driven through the DevTools protocol over a small websocket client written
here (no extra dependency): the page is loaded from disk with networking disabled, every
JavaScript exception and console error is collected, and the page's images (decoded or
not), sections, law parts and result panels are read back (:func:`inspect_in_chromium`);
:func:`problems` lists what is wrong with them.
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

from experiments.core.html_report import LAW_PARTS, RESULTS_SECTION, SECTIONS

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
  panels: Array.from(document.querySelectorAll('div.panel')).map(p => ({
      section: p.closest('section') ? p.closest('section').id : null,
      title: p.querySelector('h3') ? p.querySelector('h3').textContent : '',
      images: Array.from(p.querySelectorAll('img')).map(i => ({alt: i.alt, width: i.naturalWidth,
                                                               height: i.naturalHeight})),
      header: Array.from(p.querySelectorAll('table tr:first-child th')).map(c => c.textContent),
      rows: Array.from(p.querySelectorAll('table tr')).slice(1).map(
          r => Array.from(r.children).map(c => c.textContent)),
  })),
})"""


def inspect_in_chromium(html_path: Path, screenshot: Path) -> dict:
    """Load ``html_path`` in headless chromium and save a full-page PNG at ``screenshot``.

    Returns the page as the browser shows it: ``images`` (``alt``, ``complete``, ``width``:
    the decoded width in pixels, 0 for a broken image), ``sections`` (the ids of the body's
    sections, in order), ``laws`` (the class names of each law block's parts), ``panels``
    (each result panel's ``section``, ``title``, ``images`` with decoded ``width`` and
    ``height``, table ``header`` and ``rows`` of cell texts) and ``errors`` (JavaScript
    exceptions and console errors)."""
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


def problems(page: dict, n_laws: int, n_panels: int = 0) -> list[str]:
    """Everything wrong with a report loaded by :func:`inspect_in_chromium` that should hold
    ``n_laws`` laws and ``n_panels`` result panels: JS errors, broken images, missing
    sections, law parts, panels, or a panel outside the results section or without an image
    or a table."""
    found = [f"javascript error: {e}" for e in page["errors"]]
    found += [f"broken image: {i['alt']}" for i in page["images"] if i["width"] == 0]
    expected = SECTIONS if not n_panels else (*SECTIONS, RESULTS_SECTION)
    found += [f"missing section: {s}" for s in expected if s not in page["sections"]]
    if len(page["laws"]) != n_laws:
        found.append(f"{len(page['laws'])} law blocks, expected {n_laws}")
    for i, parts in enumerate(page["laws"]):
        found += [f"law {i}: missing part {p}" for p in LAW_PARTS if p not in parts]
    if len(page["panels"]) != n_panels:
        found.append(f"{len(page['panels'])} result panels, expected {n_panels}")
    for i, panel in enumerate(page["panels"]):
        if panel["section"] != RESULTS_SECTION:
            found.append(f"panel {i} is in section {panel['section']!r}, not {RESULTS_SECTION!r}")
        if not panel["images"] and not panel["rows"]:
            found.append(f"panel {i} ({panel['title']}) shows neither an image nor a table")
    return found
