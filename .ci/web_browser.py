#!/usr/bin/env python3
"""Drives the kasa-thermostat web page in headless Chromium over the DevTools
protocol (stdlib + websocket-client): a wrong password, then the right one;
reads the temperature off the dashboard; changes the mode and the limits
through the controls and sees the service apply them in `kasa-thermostat
status`; checks that the chart is drawn and the page's weight; saves a
screenshot at a 390-px phone viewport and one at a 1280-px desktop.

usage: web_browser.py DEVTOOLS_PORT URL PASSWORD BIN STATE_FILE SCREENSHOT
"""
import base64
import json
import re
import subprocess
import sys
import time
import urllib.request

import websocket

devtools_port, url, password, binary, state_file, screenshot = sys.argv[1:7]
STEP_TIMEOUT = 20


def fail(msg):
    print(f"web_browser: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


req = urllib.request.Request(f"http://127.0.0.1:{devtools_port}/json/new?about:blank", method="PUT")
target = json.load(urllib.request.urlopen(req, timeout=10))
ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=STEP_TIMEOUT, suppress_origin=True)
next_id = 0


def cdp(method, **params):
    global next_id
    next_id += 1
    ws.send(json.dumps({"id": next_id, "method": method, "params": params}))
    while True:
        msg = json.loads(ws.recv())
        if msg.get("id") == next_id:
            if "error" in msg:
                fail(f"{method}: {msg['error']}")
            return msg.get("result", {})


def js(expr):
    r = cdp("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
    if "exceptionDetails" in r:
        return None
    return r["result"].get("value")


def wait_for(what, expr, timeout=STEP_TIMEOUT):
    end = time.time() + timeout
    while time.time() < end:
        v = js(expr)
        if v:
            return v
        time.sleep(0.2)
    fail(f"timed out waiting for {what} ({expr})")


def status():
    out = subprocess.run([binary, "status", "--state-file", state_file], capture_output=True, text=True)
    return out.stdout + out.stderr


def wait_status(what, pattern, timeout=STEP_TIMEOUT):
    end = time.time() + timeout
    text = ""
    while time.time() < end:
        text = status()
        if re.search(pattern, text):
            return text
        time.sleep(0.3)
    fail(f"`kasa-thermostat status` never showed {what} ({pattern}):\n{text}")


cdp("Page.enable")
cdp("Runtime.enable")
cdp("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
cdp("Page.navigate", url=url)
wait_for("the login page", "!!document.getElementById('password')")

# A wrong password: the login page again, saying so.
js("document.getElementById('password').value='wrong-password'; document.getElementById('login-button').click(); true")
wait_for("the wrong-password message",
         "(document.getElementById('login-error')||{}).textContent === 'Wrong password.'")
print("web_browser: a wrong password is refused")

# The right one: the dashboard.
js(f"document.getElementById('password').value={json.dumps(password)}; document.getElementById('login-button').click(); true")
shown = wait_for("a temperature on the dashboard",
                 "(function(){var t=document.getElementById('temperature'); return t && /^-?\\d+\\.\\d\\d °C$/.test(t.textContent) ? t.textContent : null})()")
print(f"web_browser: the dashboard shows {shown}")
m = re.search(r"temperature\s+(-?\d+\.\d+) °C", status())
if not m:
    fail("status shows no temperature")
if abs(float(shown.split()[0]) - float(m.group(1))) > 10:
    fail(f"the page shows {shown}, status {m.group(1)} °C")

# Mode through the controls.
wait_for("the controls", "document.getElementById('mode-select').value === 'heat_cool'")
js("var s=document.getElementById('mode-select'); s.value='heat'; document.getElementById('apply-mode').click(); true")
wait_for("the mode change to be applied", "document.getElementById('result').className === 'ok'")
wait_status("mode heat", r"mode\s+heat\s+\(limits")
wait_status("the override's source", r"override\s+mode heat \(config: heat_cool\) by web at")
print("web_browser: mode heat applied (status shows it, by web)")

# Limits through the controls.
js("document.getElementById('result').className=''; document.getElementById('low-input').value='17.5'; "
   "document.getElementById('high-input').value='21.5'; document.getElementById('apply-limits').click(); true")
wait_for("the limits change to be applied", "document.getElementById('result').className === 'ok'")
wait_status("limits 17.5 .. 21.5", r"mode\s+heat\s+\(limits 17\.5 \.\. 21\.5 °C\)")
print("web_browser: limits 17.5 .. 21.5 applied (status shows them)")

# A refusal is shown, not applied.
js("document.getElementById('result').className=''; document.getElementById('low-input').value='30'; "
   "document.getElementById('apply-limits').click(); true")
refusal = wait_for("the refusal", "document.getElementById('result').className === 'bad' && document.getElementById('result').textContent")
if "low_limit" not in refusal:
    fail(f"the refusal does not name the key: {refusal}")
print(f"web_browser: a bad limit is refused: {refusal}")

# The chart is drawn (an SVG image with a size), and the page weighs < 100 KB.
wait_for("the chart", "(function(){var i=document.getElementById('chart'); return i.complete && i.naturalWidth > 0})()")
js("document.querySelector('.tabs button[data-since=\"24h\"]').click(); true")
wait_for("the 24 h chart", "(function(){var i=document.getElementById('chart'); return /since=24h/.test(i.src) && i.complete && i.naturalWidth > 0})()")
weight = js("(function(){var n=performance.getEntriesByType('navigation')[0]; var t=n.transferSize||n.encodedBodySize||0;"
            " performance.getEntriesByType('resource').forEach(function(r){ if(!/since=24h/.test(r.name)) t += r.transferSize || r.encodedBodySize || 0; }); return t})()")
print(f"web_browser: the chart is drawn; page, script, style and one chart: {weight} bytes")
if not weight or weight > 100 * 1024:
    fail(f"the page weighs {weight} bytes (limit 100 KB)")
overflow = js("document.documentElement.scrollWidth > window.innerWidth")
if overflow:
    fail(f"the page is wider than the 390-px viewport ({js('document.documentElement.scrollWidth')} px)")

# The screenshot, the whole page at the phone's width.
js("document.getElementById('result').className=''; document.getElementById('result').textContent=''; true")
time.sleep(0.5)
height = js("Math.ceil(document.documentElement.scrollHeight)")
cdp("Emulation.setDeviceMetricsOverride", width=390, height=int(height), deviceScaleFactor=2, mobile=True)
time.sleep(0.3)
shot = cdp("Page.captureScreenshot", format="png")
with open(screenshot, "wb") as f:
    f.write(base64.b64decode(shot["data"]))
print(f"web_browser: screenshot {screenshot} (390 x {height} CSS px)")

# And a desktop's width, beside it.
cdp("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
time.sleep(0.3)
js("document.querySelector('.tabs button[data-since=\"6h\"]').click(); true")
wait_for("the chart at the desktop width", "(function(){var i=document.getElementById('chart'); return i.complete && i.naturalWidth > 500})()")
desktop = screenshot.replace("phone", "desktop")
shot = cdp("Page.captureScreenshot", format="png")
with open(desktop, "wb") as f:
    f.write(base64.b64decode(shot["data"]))
print(f"web_browser: screenshot {desktop} (1280 x 900)")
ws.close()
