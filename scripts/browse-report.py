#!/usr/bin/env python3
"""Opens a strata report in headless Chromium and says what a browser saw.

    browse-report.py REPORT_DIR [--index-only] [--repeat N]

Loads REPORT_DIR/index.html and every image page (image-*.html) through the
DevTools protocol over a pipe (--remote-debugging-pipe: no port, no
websocket library, only the standard library), and prints one JSON
document on stdout:

    {"pages": [{"page", "load_ms", "graph", "timeline", "text",
                "errors", "requests"}]}

- graph, timeline: the data-image of every box of the stack's graph and
  every row of the timeline;
- text: the page's visible text (document.body.innerText);
- errors: console errors, uncaught exceptions, the browser's error log
  entries and failed loads;
- requests: every URL the page requested (itself included);
- load_ms: navigation start to the end of the load event (the median of
  --repeat loads, for benchmarks).

It judges nothing: the caller asserts on the document. Exits 2 when
Chromium cannot be started or a page does not load in 30 s.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

FACTS = """JSON.stringify({
  graph: Array.from(document.querySelectorAll('svg.graph [data-image]'), e => e.getAttribute('data-image')),
  timeline: Array.from(document.querySelectorAll('svg.timeline [data-image]'), e => e.getAttribute('data-image')),
  text: document.body ? document.body.innerText : '',
  load_ms: performance.getEntriesByType('navigation')[0].loadEventEnd,
})"""


class Browser:
    """Chromium with its DevTools protocol on fds 3 (commands) and 4 (replies)."""

    def __init__(self):
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if binary is None:
            sys.exit("browse-report: no chromium on PATH (scripts/setup.sh installs it)")
        self.profile = tempfile.mkdtemp(prefix="strata-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        # Chromium reads fd 3 and writes fd 4; the shell puts the pipes
        # there (subprocess would close fds moved in a preexec_fn).
        wire = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}'
        self.process = subprocess.Popen(
            ["sh", "-c", wire, binary, "--headless", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--disable-extensions", "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "about:blank"],
            pass_fds=(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events = []

    def _read_message(self, deadline):
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise EOFError("chromium closed its pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=None, timeout=30.0):
        self._next_id += 1
        ask = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            ask["sessionId"] = session
        os.write(self._to_browser, json.dumps(ask).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method, session, timeout=30.0):
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self.events):
            if event.get("method") == method and event.get("sessionId") == session:
                return self.events.pop(i)
        while True:
            message = self._read_message(deadline)
            if message.get("method") == method and message.get("sessionId") == session:
                return message
            self.events.append(message)

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except (OSError, EOFError, TimeoutError, RuntimeError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def problems(events, session):
    """The errors among a page's events, as text."""
    found = []
    for event in events:
        if event.get("sessionId") != session:
            continue
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            found.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            found.append(f"log: {entry.get('text')} {entry.get('url', '')}")
        elif method == "Network.loadingFailed":
            found.append(f"failed load: {params.get('errorText')} ({params.get('requestId')})")
    return found


def visit(browser, session, url):
    """Loads url; its facts, errors and requests."""
    browser.events.clear()
    browser.call("Page.navigate", {"url": url}, session)
    browser.wait_for("Page.loadEventFired", session)
    result = browser.call("Runtime.evaluate", {"expression": FACTS, "returnByValue": True}, session)
    facts = json.loads(result["result"]["value"])
    facts["page"] = url
    facts["requests"] = [e["params"]["request"]["url"] for e in browser.events
                         if e.get("method") == "Network.requestWillBeSent"
                         and e.get("sessionId") == session]
    facts["errors"] = problems(browser.events, session)
    return facts


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    folder = os.path.abspath(args[0])
    repeat = int(args[args.index("--repeat") + 1]) if "--repeat" in args else 1
    names = ["index.html"]
    if "--index-only" not in args:
        names += sorted(n for n in os.listdir(folder) if n.startswith("image-") and n.endswith(".html"))
    browser = Browser()
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.call(f"{domain}.enable", session=session)
        # Every load is a fresh one: nothing served from the memory cache.
        browser.call("Network.setCacheDisabled", {"cacheDisabled": True}, session)
        pages = []
        for name in names:
            url = "file://" + os.path.join(folder, name)
            loads = [visit(browser, session, url) for _ in range(max(repeat, 1))]
            first = loads[0]
            first["load_ms"] = statistics.median(load["load_ms"] for load in loads)
            first["errors"] = sorted({e for load in loads for e in load["errors"]})
            pages.append(first)
    except (OSError, EOFError, TimeoutError, RuntimeError, KeyError) as e:
        print(f"browse-report: {e}", file=sys.stderr)
        sys.exit(2)
    finally:
        browser.close()
    json.dump({"pages": pages}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
