"""wrk throughput of the demo's /health versus a minimal uvicorn app's /health (same TLS, same c).

Both servers run one uvicorn process over HTTPS with the demo's certificate; the ratio shows
what the demo's middleware stack (headers, metrics, JSON access log, CORS, gzip) costs.

    python bench/demo_health_wrk.py [--connections 32] [--duration 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WRK = shutil.which("wrk") or "/usr/bin/wrk"
MINIMAL_APP = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()

@app.get("/health")
async def health():
    return {"status": "ok"}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), ssl_certfile=sys.argv[2],
            ssl_keyfile=sys.argv[3], log_level="warning", access_log=False)
"""


def free_port() -> int:
    """Return a free port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, ca: str, timeout_s: float = 20) -> None:
    """Wait until GET url answers 200."""
    ctx = ssl.create_default_context(cafile=ca)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def run_wrk(url: str, connections: int, duration: int) -> float:
    """Run wrk (1 thread) and return requests per second."""
    subprocess.run([WRK, "-t1", f"-c{connections}", "-d2s", url], capture_output=True, check=True)
    out = subprocess.run(
        [WRK, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} error responses")
    return float(match.group(1))


def main() -> int:
    """Print both throughputs and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    args = parser.parse_args()
    if not os.path.exists(WRK):
        print(f"wrk not found ({WRK}); install it (apt-get install wrk) and rerun")
        return 0
    sys.path.insert(0, str(ROOT))
    from readyctl.demo.managed import start

    demo = start()
    minimal = None
    try:
        workdir = Path(demo.workdir)
        port = free_port()
        minimal = subprocess.Popen(
            [
                sys.executable,
                "-c",
                MINIMAL_APP,
                str(port),
                str(workdir / "server-cert.pem"),
                str(workdir / "server-key.pem"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        minimal_url = f"https://127.0.0.1:{port}/health"
        wait_up(minimal_url, demo.ca_bundle)
        demo_rps = run_wrk(demo.base_url + "/health", args.connections, args.duration)
        minimal_rps = run_wrk(minimal_url, args.connections, args.duration)
    finally:
        if minimal is not None:
            minimal.terminate()
            minimal.wait(10)
        demo.stop()
    print(f"wrk -t1 -c{args.connections} -d{args.duration}s, HTTPS, one uvicorn process each")
    print(f"demo /health:            {demo_rps:8.0f} req/s")
    print(f"minimal uvicorn /health: {minimal_rps:8.0f} req/s")
    print(f"ratio minimal/demo:      {minimal_rps / demo_rps:8.2f}x   (goal < 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
