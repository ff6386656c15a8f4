"""Shared by the load benchmarks: the stack, the baseline server, and wrk.

- ``start_stack``: the embedded default (moto server, gunicorn, Celery workers) on free ports.
- ``Baseline``: a bare Falcon app (``create_noop``) under the same gunicorn configuration file
  and the same ``SAFETYHEATMAP_*`` environment (workers, threads, timeouts) as the stack's web:
  ``POST /noop`` answers 202 with a small JSON body and does nothing; ``GET /static/<name>``
  answers the bytes of that file of ``BENCH_STATIC_DIR`` with an ETag, 304 on a match. It is
  the floor our middleware, validation and I/O are compared against.
- ``wrk``: Debian's wrk with ``bench/wrk.lua`` (open loop at a fixed rate, or closed loop).
- ``post_cluster`` and ``shows``: three reports close together (the privacy threshold), and
  whether heatmap/get shows density around them: how the freshness benchmarks see a report.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import falcon
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.dev.devstack import BIN, Stack, free_port, http_ok, wait_until  # noqa: E402

LUA = Path(__file__).resolve().parent / "wrk.lua"

API = "/api/safetyheatmap"


def post_cluster(http: requests.Session, url: str, lat: float, lon: float) -> float:
    """Three reports ~30 m apart (k = 3 is met); returns the time of the third 202."""
    for k in range(3):
        resp = http.post(
            f"{url}{API}/report/add",
            data=json.dumps({"lat": lat + k * 0.0003, "lon": lon, "category": "theft"}),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        resp.raise_for_status()
    return time.perf_counter()


def shows(http: requests.Session, url: str, lat: float, lon: float, zoom: int) -> bool:
    """Whether heatmap/get shows density within ~1 km of the place (a small grid: cheap)."""
    bbox = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    grid = http.get(f"{url}{API}/heatmap/get", params={"bbox": bbox, "zoom": zoom}, timeout=10)
    return bool(grid.json()["max_value"] > 0)


# SIGTERM (a timeout, a kill) unwinds like Ctrl-C, so every benchmark's `finally` stops its stack.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def start_stack(extra_env: dict[str, str], workers: int, prefix: str) -> Stack:
    stack = Stack(Path(tempfile.mkdtemp(prefix=prefix)), extra_env=extra_env)
    stack.start(workers=workers)
    return stack


# --- the baseline ------------------------------------------------------------------------------
class _Noop:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.bounded_stream.read()
        resp.status = falcon.HTTP_202
        resp.media = {"id": "00000000-0000-0000-0000-000000000000", "status": "queued"}


class _Static:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_header("ETag", self.etag)
        resp.set_header("Cache-Control", "public, max-age=5")
        if req.get_header("If-None-Match") == self.etag:
            resp.status = falcon.HTTP_304
            return
        resp.content_type = "image/png"
        resp.data = self.data


def create_noop() -> falcon.App:
    app = falcon.App()
    app.add_route("/noop", _Noop())
    app.add_route("/static", _Static(b"\x89PNG" + b"\0" * 1000))
    folder = os.environ.get("BENCH_STATIC_DIR")
    for path in sorted(Path(folder).iterdir()) if folder else []:
        app.add_route(f"/static/{path.name}", _Static(path.read_bytes()))
    return app


class Baseline:
    def __init__(self, stack: Stack, static_dir: Path | None = None) -> None:
        self.port = free_port()
        env = stack.env | {"SAFETYHEATMAP_PORT": str(self.port)}
        if static_dir is not None:
            env["BENCH_STATIC_DIR"] = str(static_dir)
        self.log = stack.run_dir / "baseline.log"
        with self.log.open("ab") as handle:
            self.proc = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "-c",
                    str(ROOT / "web" / "gunicorn_conf.py"),
                    "--pythonpath",
                    f"{ROOT / 'bench'},{ROOT}",
                    "benchlib:create_noop()",
                ],
                cwd=ROOT,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(lambda: http_ok(f"{self.url}/static"), 60, "baseline", self.proc, self.log)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


# --- wrk ---------------------------------------------------------------------------------------
def wrk(
    url: str,
    *,
    duration: float,
    connections: int,
    threads: int = 1,
    rate: float = 0,
    method: str = "GET",
    body: str = "",
    headers: dict[str, str] | None = None,
    area: str = "",
) -> dict[str, Any]:
    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make tools does)")
    env = os.environ | {
        "WRK_METHOD": method,
        "WRK_BODY": body,
        "WRK_RATE": str(rate),
        "WRK_THREADS": str(threads),
        "WRK_HEADERS": "|".join(f"{k}: {v}" for k, v in (headers or {}).items()),
    }
    if area:
        env["WRK_AREA"] = area
    out = subprocess.run(
        [
            exe,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    result["ok"] = result["requests"] - result["status"]
    result["errors"] = errors
    result["rate"] = result["requests"] / result["duration_s"]
    result["ok_rate"] = result["ok"] / result["duration_s"]
    return result


def describe_web(settings: Any) -> str:
    """How the web runs, for a benchmark's header."""
    if settings.web_worker_class == "gthread":
        each = f"{settings.web_threads} threads"
    else:
        each = f"{settings.web_connections} connections"
    return f"{settings.web_workers} {settings.web_worker_class} workers x {each}"


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo += [child for child, (parent, _) in stats.items() if parent == pid]
    return total
