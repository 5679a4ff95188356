"""Screenshots for the docs: the interactive app and, when it exists, a run report.

    python scripts/screenshots.py                      # docs/img/app.png (+ docs/img/report.png)
    python scripts/screenshots.py --query "residents=3000&cordon_price=5" --report runs/x/report.html

Starts ``solara run twin/app.py --port PORT --host 127.0.0.1`` as a subprocess, waits until it
answers, and takes the screenshots with headless Chromium (``chromium``, ``chromium-browser``,
``google-chrome``; on Debian/Ubuntu as root it is installed with apt-get when missing). The app's
initial parameters come from the URL query (see ``twin.app.model_params_from_query``); by
default the model is pre-run to 08:00 with a busy, capacity-reduced Helsinki so that the map has
cars and queues to show. Needs the viz extra (``pip install -e ".[viz]"``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_QUERY = "residents=4800&cordon_price=5&run_until_h=8"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium(install: bool = True) -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    if install and shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        print("chromium not found: apt-get install -y chromium", flush=True)
        subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, stdout=subprocess.DEVNULL)
        return find_chromium(install=False)
    sys.exit("error: headless Chromium is needed (apt-get install chromium, or put chromium on PATH)")


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"error: the app server exited with code {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit(f"error: {url} did not answer within {timeout_s:.0f} s")


def screenshot(chromium: str, url: str, out: Path, size: str = "1400,1000", budget_ms: int = 20000) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    with tempfile.TemporaryDirectory(prefix="twin-chromium-") as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={size}",
               f"--virtual-time-budget={budget_ms}", f"--screenshot={out}", url]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180, check=False)
    if not out.exists():
        sys.exit(f"error: chromium wrote no screenshot for {url}:\n{r.stdout[-2000:]}")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} ({out.stat().st_size:,} bytes)")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def screenshot_when_ready(chromium: str, url: str, out: Path, ready_js: str, size: str = "1400,1000",
                          timeout_s: float = 120.0, settle_s: float = 1.5) -> bool:
    """Screenshot ``url`` once ``ready_js`` is true in the page (real time, through the DevTools
    protocol: a Solara page talks to its server over a websocket, which Chromium's virtual time
    does not wait for). False when the ``websockets`` package is missing."""
    try:
        from websockets.sync.client import connect
    except ImportError:
        return False
    import base64
    import json

    w, h = (int(x) for x in size.split(","))
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="twin-chromium-") as profile:
        proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={w},{h}",
             f"--remote-debugging-port={port}", "--remote-allow-origins=*", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            t_end = time.monotonic() + 60
            targets = []
            while time.monotonic() < t_end and not targets:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                        targets = [t for t in json.load(r) if t.get("type") == "page"]
                except OSError:
                    time.sleep(0.3)
            if not targets:
                sys.exit("error: headless Chromium did not open its DevTools port")
            with connect(targets[0]["webSocketDebuggerUrl"], max_size=None) as ws:
                seq = iter(range(1, 1 << 30))

                def call(method: str, **params):
                    i = next(seq)
                    ws.send(json.dumps({"id": i, "method": method, "params": params}))
                    while True:
                        msg = json.loads(ws.recv())
                        if msg.get("id") == i:
                            if "error" in msg:
                                raise RuntimeError(f"{method}: {msg['error']}")
                            return msg.get("result", {})

                call("Emulation.setDeviceMetricsOverride", width=w, height=h, deviceScaleFactor=1, mobile=False)
                call("Page.navigate", url=url)
                t_end = time.monotonic() + timeout_s
                ready = False
                while time.monotonic() < t_end:
                    res = call("Runtime.evaluate", expression=ready_js, returnByValue=True)
                    if res.get("result", {}).get("value") is True:
                        ready = True
                        break
                    time.sleep(0.5)
                if not ready:
                    print(f"warning: {url} not ready after {timeout_s:.0f} s; capturing anyway", flush=True)
                time.sleep(settle_s)
                data = call("Page.captureScreenshot", format="png")["data"]
        finally:
            os.killpg(proc.pid, signal.SIGTERM)  # the browser we started, and only it
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(data))
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} ({out.stat().st_size:,} bytes)")
    return True


# the app is ready when the map and the time series (two matplotlib PNGs) and the KPI table show
APP_READY_JS = (
    "document.querySelectorAll('img').length >= 2"
    " && document.body.innerText.includes('mode share')"
)


def app_screenshot(chromium: str, out: Path, port: int, query: str, budget_ms: int, size: str) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    log = tempfile.NamedTemporaryFile("w", prefix="twin-app-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "solara", "run", str(ROOT / "twin" / "app.py"), "--port", str(port),
         "--host", "127.0.0.1", "--production", "--no-open"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}/"
        wait_http(base, 180, proc)
        url = base + ("?" + query if query else "")
        if not screenshot_when_ready(chromium, url, out, APP_READY_JS, size):
            print("websockets is not installed: falling back to Chromium's --virtual-time-budget", flush=True)
            screenshot(chromium, url, out, size, budget_ms)  # a first visit warms the server up
            screenshot(chromium, url, out, size, budget_ms)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server we started, and only it
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        print(f"app server log: {log.name}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder of the PNGs")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--query", default=DEFAULT_QUERY, help="URL query with the app's initial parameters")
    ap.add_argument("--report", type=Path, default=ROOT / "runs" / "helsinki_commute" / "report.html",
                    help="run report to capture when it exists")
    ap.add_argument("--budget-ms", type=int, default=20000, help="Chromium --virtual-time-budget")
    ap.add_argument("--size", default="1400,1000", help="window size W,H")
    ap.add_argument("--skip-app", action="store_true")
    args = ap.parse_args(argv)

    chromium = find_chromium()
    if not args.skip_app:
        app_screenshot(chromium, args.out / "app.png", args.port, args.query, args.budget_ms, args.size)
    report = args.report.resolve()
    if report.exists():
        screenshot(chromium, report.as_uri(), args.out / "report.png", "1400,1800", args.budget_ms)
    else:
        print(f"no report at {report}: skipped report.png (run `twin run` and build the report first)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
