"""Does the API keep answering reads while it takes a large write? Run by hand:

    .venv/bin/python -m benchmarks.api_health --data-dir data

Serves the API (``python -m pipeline.api``, as ``make api`` does) on a free local port over the
snapshot already published in ``<data-dir>/serve``, with a throw-away key and import folder, and:

1. times ``GET /health`` alone (the baseline);
2. times it again while ``POST /transactions`` sends a body just under the size limit
   (``PIPELINE_API_MAX_BODY_MB``, 5 MiB by default), from another thread;
3. sends a body over the limit and reports the status and how soon it came back.

Latencies are for reading, never asserted: the machine may be busy (its load average is printed).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

KEY = "benchmark-key-0123456789"
MIB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 120):
    """One request on a new connection: (status, seconds, reply body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json", "X-API-Key": KEY} if body is not None else {}
    start = time.perf_counter()
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        reply = response.read()
        return response.status, time.perf_counter() - start, reply
    finally:
        conn.close()


def post_until_answered(port: int, path: str, body: bytes, chunk: int = 64 << 10):
    """POST ``body`` as a client that reads the answer as soon as it comes: a server refusing the
    body (413) answers and closes before reading it all. (status, seconds, reply body)"""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-API-Key: {KEY}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(head)
        sent = 0
        while sent < len(body):
            if select.select([sock], [], [], 0)[0]:
                break  # answered before the body was all sent
            try:
                sent += sock.send(body[sent : sent + chunk])
            except (BrokenPipeError, ConnectionResetError):
                break
        response = http.client.HTTPResponse(sock)
        response.begin()
        reply = response.read()
    return response.status, time.perf_counter() - start, reply


def batch(size: int) -> bytes:
    """A JSON batch of order rows of about ``size`` bytes (more rows than a batch may hold: the
    API must read and parse all of it before it can say so)."""
    row = {"customer_id": "K0001", "order_date": "2026-11-20", "amount": 120.5}
    one = len(json.dumps(row)) + 2
    return json.dumps({"rows": [row] * (size // one)}).encode()


def health_times(port: int, stop: threading.Event, pause: float = 0.01) -> list[float]:
    times = []
    while not stop.is_set():
        status, seconds, _ = request(port, "GET", "/health")
        assert status == 200, status
        times.append(seconds)
        time.sleep(pause)
    return times


def summary(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    return (
        f"{len(ms)} requests, median {statistics.median(ms):.1f} ms, "
        f"p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms, max {ms[-1]:.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--limit-mb", type=float, default=5.0)
    args = parser.parse_args(argv)
    if not (args.data_dir / "serve" / "current").exists():
        print(f"no published snapshot in {args.data_dir}/serve: run `make run` first")
        return 2

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="api-health-") as imports:
        env = {
            **os.environ,
            "PIPELINE_DATA_DIR": str(args.data_dir.resolve()),
            "PIPELINE_API_PORT": str(port),
            "PIPELINE_API_KEY": KEY,
            "PIPELINE_API_MAX_BODY_MB": str(args.limit_mb),
            "PIPELINE_SOURCE": "files",
            "PIPELINE_IMPORT_LAYOUT": "transactions",
            "PIPELINE_IMPORT_DIR": imports,
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "pipeline.api"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    request(port, "GET", "/health", timeout=1)
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        print("the API did not start")
                        return 1
                    time.sleep(0.2)
            print(f"load average {os.getloadavg()}")
            print(
                "GET /health alone:",
                summary([request(port, "GET", "/health")[1] for _ in range(50)]),
            )

            body = batch(int(args.limit_mb * MIB) - 4096)
            stop = threading.Event()
            during: list[float] = []
            reader = threading.Thread(target=lambda: during.extend(health_times(port, stop)))
            reader.start()
            time.sleep(0.2)
            status, seconds, reply = request(port, "POST", "/transactions", body)
            stop.set()
            reader.join()
            print(
                f"POST /transactions of {len(body) / MIB:.2f} MiB: {status} in {seconds:.2f} s "
                f"({json.loads(reply).get('detail', '')!s:.80})"
            )
            print("GET /health during it:", summary(during))

            over = batch(int((args.limit_mb + 1) * MIB))
            status, seconds, reply = post_until_answered(port, "/transactions", over)
            print(
                f"POST /transactions of {len(over) / MIB:.2f} MiB: {status} in {seconds:.2f} s "
                f"({json.loads(reply).get('detail', '')!s:.80})"
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
