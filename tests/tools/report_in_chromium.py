#!/usr/bin/env python3
"""Opens a `vcpumap report --html` file in headless Chromium and does what a user does with it.

    report_in_chromium.py CHROMIUM REPORT.html [--screenshot-prefix PREFIX]

Drives Chromium over the DevTools protocol on --remote-debugging-pipe (fd 3 in, fd 4 out,
messages ended by a NUL byte), so it needs nothing but python3. It loads the page in a
1400 x 1000 window, then looks at the timeline as a user would: which lanes are on screen
(the element at a point in a lane, not just the DOM), moves the mouse to the "vCPU lanes" toggle
and clicks it with real mouse events (Input.dispatchMouseEvent), and looks again. Prints one JSON
document on stdout:

    {"load_ms", "painted_ms", "before": VIEW, "after": VIEW, "button": {...},
     "console_errors": [...], "svg_elements", "rects": {"timeline-cpu", "timeline-vcpu"},
     "titles", "untitled" (bars without a tooltip), "tooltip": {...}, "heatmap_titles",
     "columns" (seconds a time column)}

where VIEW = {"cpu": {...}, "vcpu": {...}} says for each timeline whether it is displayed, its
box, and what element is on screen in its first lane. The checks are the caller's.
"""

import base64
import json
import os
import select
import subprocess
import sys
import tempfile
import time

TIMEOUT_S = 120


class Chromium:
    def __init__(self, binary, profile):
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()

        def wire_fds():  # in the child: its fd 3 reads commands, fd 4 writes replies
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-quic", "--hide-scrollbars", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--window-size=1400,1000", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=wire_fds, pass_fds=(3, 4))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.out = to_browser_w
        self.inp = from_browser_r
        self.buffer = b""
        self.next_id = 0
        self.events = []  # every event seen, in order
        self.session = None

    def close(self):
        try:
            self.send("Browser.close", session=False)
        except Exception:  # the browser already went away: the wait below still reaps it
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _read_message(self, deadline):
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self.inp], [], [], left)
            if ready:
                chunk = os.read(self.inp, 1 << 20)
                if not chunk:
                    err = self.process.stderr.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"Chromium closed the DevTools pipe: {err}")
                self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, session=True):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method, since=0):
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            for event in self.events[since:]:
                if event["method"] == method:
                    return event
            since = len(self.events)
            self.events.append(self._read_message(deadline))

    def evaluate(self, expression, await_promise=False):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": await_promise})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, x, y):
        for kind, buttons in (("mouseMoved", 0), ("mousePressed", 1), ("mouseReleased", 0)):
            self.send("Input.dispatchMouseEvent",
                      {"type": kind, "x": x, "y": y, "button": "left" if kind != "mouseMoved"
                       else "none", "buttons": buttons, "clickCount": 1})


# What a user sees of one timeline: displayed or not, and what is on screen in its first lane.
VIEW_JS = r"""
(function () {
  function view(id) {
    var svg = document.getElementById(id);
    if (!svg) return {exists: false};
    var box = svg.getBoundingClientRect();
    var bg = svg.querySelector('rect.bg');
    var out = {exists: true, display: getComputedStyle(svg).display,
               width: box.width, height: box.height, hit: null};
    if (bg) {
      bg.scrollIntoView({block: 'center'});
      var lane = bg.getBoundingClientRect();
      // Off the axis ticks (every tenth of the width), on the lane's middle line.
      var x = lane.left + lane.width * 0.37, y = lane.top + lane.height / 2;
      var at = document.elementFromPoint(x, y);
      out.hit = at ? {tag: at.tagName, in_this: svg.contains(at),
                      in_other: !!(at.closest && at.closest('svg.timeline') &&
                                   !svg.contains(at))} : null;
    }
    window.scrollTo(0, 0);
    return out;
  }
  return {cpu: view('timeline-cpu'), vcpu: view('timeline-vcpu')};
})()
"""

BUTTON_JS = r"""
(function () {
  var b = document.getElementById('show-vcpu');
  if (!b) return null;
  b.scrollIntoView({block: 'center'});
  var r = b.getBoundingClientRect();
  var x = r.left + r.width / 2, y = r.top + r.height / 2;
  var at = document.elementFromPoint(x, y);
  return {x: x, y: y, width: r.width, height: r.height, text: b.textContent,
          on_top: at === b || b.contains(at)};
})()
"""

COUNTS_JS = r"""
(function () {
  var first = document.querySelector('#timeline-cpu rect:not(.bg)');
  var title = first && first.querySelector('title');
  return {
    svg_elements: document.querySelectorAll('svg *').length,
    rects: {'timeline-cpu': document.querySelectorAll('#timeline-cpu rect').length,
            'timeline-vcpu': document.querySelectorAll('#timeline-vcpu rect').length},
    titles: document.querySelectorAll('svg title').length,
    untitled: Array.prototype.filter.call(
        document.querySelectorAll('svg.timeline rect:not(.bg)'),
        function (r) { return !r.querySelector('title'); }).length,
    tooltip: {cpu: title ? title.textContent : null,
              vcpu: (function () {
                var t = document.querySelector('#timeline-vcpu rect:not(.bg) title');
                return t ? t.textContent : null; })()},
    heatmap_titles: document.querySelectorAll('#heatmap td[title]').length,
    columns: (function () {
      var m = document.body.innerText.match(/one column = ([0-9.]+) s/);
      return m ? parseFloat(m[1]) : null; })()
  };
})()
"""


def console_errors(events):
    errors = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append(details.get("exception", {}).get("description")
                          or json.dumps(details)[:300])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                   for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(params["entry"].get("text", ""))
    return errors


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary, page = sys.argv[1], os.path.abspath(sys.argv[2])
    shots = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--screenshot-prefix" else None
    with tempfile.TemporaryDirectory(prefix="vcpumap-chromium-") as profile:
        browser = Chromium(binary, profile)
        try:
            target = browser.send("Target.createTarget", {"url": "about:blank"})
            attached = browser.send("Target.attachToTarget",
                                    {"targetId": target["targetId"], "flatten": True})
            browser.session = attached["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                browser.send(f"{domain}.enable")
            browser.send("Emulation.setDeviceMetricsOverride",
                         {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
            mark = len(browser.events)
            start = time.monotonic()
            browser.send("Page.navigate", {"url": "file://" + page})
            browser.wait_event("Page.loadEventFired", mark)
            load_ms = (time.monotonic() - start) * 1000
            # Painted: two animation frames after load, the page has been laid out and drawn.
            browser.evaluate("new Promise(r => requestAnimationFrame(() => "
                             "requestAnimationFrame(() => r(1))))", await_promise=True)
            painted_ms = (time.monotonic() - start) * 1000
            result = {"load_ms": round(load_ms), "painted_ms": round(painted_ms)}

            def screenshot(name):
                if shots:
                    data = browser.send("Page.captureScreenshot", {"format": "png"})["data"]
                    with open(f"{shots}{name}.png", "wb") as out:
                        out.write(base64.b64decode(data))

            result["before"] = browser.evaluate(VIEW_JS)
            screenshot("before")
            button = browser.evaluate(BUTTON_JS)
            result["button"] = button
            if button:
                browser.click(button["x"], button["y"])
                browser.evaluate("new Promise(r => requestAnimationFrame(() => r(1)))",
                                 await_promise=True)
            result["after"] = browser.evaluate(VIEW_JS)
            screenshot("after")
            result.update(browser.evaluate(COUNTS_JS))
            # Give late errors (from the click's handlers) a moment to arrive.
            browser.evaluate("new Promise(r => setTimeout(() => r(1), 200))", await_promise=True)
            result["console_errors"] = console_errors(browser.events)
        finally:
            browser.close()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
