"""Load on the demo: N concurrent gradio_client users against `clinx demo` on 127.0.0.1.

    .venv/bin/python benchmarks/space_load.py [--model runs/quickstart/model] [--clients 16] [--requests 64]

Starts `clinx demo` in a subprocess (the app exactly as users run it: queue with its default
concurrency limit and size), waits for it (bounded), then ``--clients`` threads, each with its own
``gradio_client.Client``, send ``--requests`` extractions in all (the invented example notes, in
turn) and time each one end to end. Reports p50/p95 latency, throughput, errors and requests
that never came back; writes ``benchmarks/results/space-load.md`` and ``.json``.
Target: zero errors, nothing dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"clinx demo exited with status {process.returncode}")
        try:
            if httpx.get(f"{url}gradio_api/info", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"clinx demo did not answer within {timeout:.0f} s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_clients(url: str, model: str, clients: int, requests: int, timeout: float) -> dict:
    from gradio_client import Client

    from clinx_hub.synthetic import example_notes

    notes = example_notes("es") + example_notes("en")
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    next_request = iter(range(requests))

    def user() -> None:
        client = Client(url, verbose=False)
        while True:
            with lock:
                i = next(next_request, None)
            if i is None:
                return
            started = time.perf_counter()
            try:
                client.submit(model, notes[i % len(notes)], [], "label", api_name="/extract").result(timeout=timeout)
            except Exception as err:  # every failure is counted and reported, never hidden
                with lock:
                    errors.append(f"{type(err).__name__}: {err}"[:200])
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=user) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 60)
    wall = time.perf_counter() - started
    return {
        "requests": requests,
        "completed": len(latencies),
        "errors": len(errors),
        "dropped": requests - len(latencies) - len(errors),
        "error_examples": sorted(set(errors))[:5],
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 3),
        "p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "p95_s": round(percentile(latencies, 0.95), 3) if latencies else None,
        "max_s": round(max(latencies), 3) if latencies else None,
    }


def markdown(record: dict) -> str:
    r = record["result"]
    return "\n".join([
        "# Demo under load (`benchmarks/space_load.py`)",
        "",
        f"- date: {record['date']}",
        f"- hardware: {record['hardware']}",
        f"- machine: {record['machine_note']}",
        f"- command: `{record['command']}`",
        f"- model: `{record['model']}` ({record['model_kind']})",
        f"- app: `clinx demo`, queue concurrency limit {record['concurrency_limit']}, queue size {record['queue_size']}",
        "",
        "| clients | requests | completed | errors | dropped | p50 (s) | p95 (s) | max (s) | throughput (req/s) | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {record['clients']} | {r['requests']} | {r['completed']} | {r['errors']} | {r['dropped']} | {r['p50_s']} "
        f"| {r['p95_s']} | {r['max_s']} | {r['throughput_rps']} | {r['wall_s']} |",
        "",
        "Latency is end to end per request as a client sees it (queue wait included), on the invented "
        "example notes (about 150-300 characters each).",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/quickstart/model")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=300, help="seconds one request may take")
    parser.add_argument("--machine-note", default=None, help="e.g. 'shared with a training run' (default: the load average)")
    parser.add_argument("--out", default=str(RESULTS / "space-load"), help="writes OUT.md and OUT.json")
    args = parser.parse_args()

    from clinx_hub.demo import build_demo
    from clinx_hub.training import hardware

    defaults = build_demo([args.model])  # only to report the queue settings `clinx demo` uses
    queue = defaults._queue
    load_before = os.getloadavg()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    clinx = Path(sys.executable).with_name("clinx")
    process = subprocess.Popen(
        [str(clinx), "demo", "--model", args.model, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        wait_until_up(url, process, timeout=300)
        result = run_clients(url, args.model, args.clients, args.requests, args.timeout)
    finally:
        process.terminate()
        process.wait(30)
    model_dir = Path(args.model)
    ensemble = model_dir / "ensemble.json"
    kind = f"ensemble of {len(json.loads(ensemble.read_text())['members'])}" if ensemble.is_file() else "single model"
    note = args.machine_note or (
        f"load average {load_before[0]:.1f} on {os.cpu_count()} cores when it started"
        + (" (shared: other jobs were running)" if load_before[0] > 1.0 else "")
    )
    record = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "hardware": hardware(),
        "machine_note": note,
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "model": args.model,
        "model_kind": kind,
        "clients": args.clients,
        "concurrency_limit": queue.default_concurrency_limit,
        "queue_size": queue.max_size,
        "result": result,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    text = markdown(record)
    out.with_suffix(".md").write_text(text)
    print(text)
    if result["errors"] or result["dropped"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
