"""Load on the demo: concurrent gradio_client users against `clinx demo`, and short notes behind long ones.

    python benchmarks/space_load.py                                    # small model built here
    python benchmarks/space_load.py --model runs/quickstart/model --clients 16 --requests 64
    python benchmarks/space_load.py --lanes on                         # skip the "before" run

Every run starts `clinx demo` in a subprocess (the app exactly as users run it), waits for it
(bounded), and times each request end to end as a client sees it (queue wait included):

1. Load: ``--clients`` threads, each with its own ``gradio_client.Client``, send ``--requests``
   extractions in all (the invented example notes, about 150-300 characters, in turn): p50/p95,
   throughput, errors and requests that never came back. Target: zero errors, nothing dropped.
2. Short behind long (issue 16): ``--long-requests`` notes of ``--long-chars`` characters are sent
   at once; from half a second later, a note of ``--short-chars`` characters every
   ``--short-every`` seconds (each from its own thread: users arrive on their own) until the long
   ones are answered. Reported: the short notes sent while every long one was still in flight.
   It runs with the extraction lanes on (the app as shipped) and off (``CLINX_DEMO_SHORT_CHARS=0``:
   one first-come-first-served line, 2 at a time, which is how the queue worked before the lanes).

The model: ``small`` (default) is the quickstart's fallback encoder (``build_small_encoder``: a
4-layer BERT, hidden 128, a WordPiece vocabulary learnt from synthetic notes) with a fresh CLIN-X
head over the synthetic notes' labels (biased towards ``O``: about one span per 100 characters),
saved in ``--work``. Its spans are noise; only time counts here, and a 200,000-character note takes
it 7-20 s on the 2 shared CPU cores (a MiniLM ensemble would take minutes). Any model folder
(``runs/quickstart/model``) or Hub id works as well.
Writes ``benchmarks/results/space-load.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

# benchmarks/ is on sys.path when this script runs.
from accuracy import command_line

from clinx_hub.folders import CONFIG_FILE, EnsembleSpec, is_ensemble_folder

RESULTS = Path(__file__).resolve().parent / "results"
LANES = {"on": {}, "off": {"CLINX_DEMO_SHORT_CHARS": "0"}}
"""The app's environment for each run of part 2: lanes as shipped, or one line (the queue before)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float, *, log: Path | None = None) -> None:
    """Poll the Gradio app at ``url`` (run by ``process``) until it answers; RuntimeError if it exits or times out.

    Shared with tests/test_demo.py and tests/test_space_build.py; ``log`` (the process's output)
    ends the error message, so a failed start says why.
    """
    import httpx

    def failed(reason: str) -> RuntimeError:
        tail = log.read_text(errors="replace")[-3000:] if log and log.is_file() else ""
        return RuntimeError(f"the app at {url} {reason}" + (f"; its output ends:\n{tail}" if tail else ""))

    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise failed(f"exited with status {process.returncode}")
        try:
            if httpx.get(f"{url}gradio_api/info", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise failed(f"did not answer within {timeout:.0f} s")


@contextmanager
def running_demo(model: str, env: dict[str, str] | None = None):
    """`clinx demo --model MODEL` on a free 127.0.0.1 port; yields its URL, stops it (SIGTERM) after."""
    port = free_port()
    clinx = Path(sys.executable).with_name("clinx")
    process = subprocess.Popen(
        [str(clinx), "demo", "--model", model, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(url, process, timeout=300)
        yield url
    finally:
        process.terminate()
        process.wait(60)


def small_model(folder: Path) -> Path:
    """The quickstart's small random encoder with a fresh CLIN-X head over the synthetic labels (built once)."""
    if (folder / CONFIG_FILE).is_file():
        return folder
    import torch
    from transformers import AutoTokenizer

    from clinx_hub import ClinXForTokenClassification
    from clinx_hub.quickstart import build_small_encoder
    from clinx_hub.synthetic import SYNTHETIC_LABELS
    from clinx_hub.tagging import scheme_labels

    encoder = build_small_encoder(folder.parent / "small-encoder")
    torch.manual_seed(0)
    model = ClinXForTokenClassification.from_backbone(
        encoder, scheme_labels(SYNTHETIC_LABELS), window_length=256, context_size=32
    )
    # A raw random head marks a span every ~6 characters; this bias gives one per ~100, near a
    # trained de-identification model's (MEDDOCAN: one per ~130). Gradio walks the whole result on
    # its event loop, so the result's size is part of what a long request costs everyone else.
    with torch.no_grad():
        model.classifier.bias[model.config.label2id["O"]] += 1.1
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(folder)
    return folder


def invented_note(chars: int, seed: int) -> str:
    """Synthetic notes one after another, cut at a space to at most ``chars`` characters."""
    from clinx_hub.synthetic import synthetic_documents

    parts, total = [], 0
    count = max(4, chars // 300)
    while total < chars:
        for document in synthetic_documents(count, language="es", seed=seed):
            parts.append(document.text)
            total += len(document.text) + 1
            if total >= chars:
                break
        seed += 1000
    text = " ".join(parts)[: chars + 1]
    return text[: text.rfind(" ")] if len(text) > chars else text


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def latency_summary(latencies: list[float]) -> dict:
    if not latencies:
        return {"p50_s": None, "p95_s": None, "max_s": None}
    return {
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(percentile(latencies, 0.95), 3),
        "max_s": round(max(latencies), 3),
    }


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
        "clients": clients,
        "requests": requests,
        "completed": len(latencies),
        "errors": len(errors),
        "dropped": requests - len(latencies) - len(errors),
        "error_examples": sorted(set(errors))[:5],
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 3),
        **latency_summary(latencies),
    }


def short_behind_long(
    url: str, model: str, *, long_chars: int, long_requests: int, short_chars: int, short_every: float, timeout: float
) -> dict:
    """Long notes sent at once, then short notes at a steady pace until the long ones are answered."""
    from gradio_client import Client

    longs = [invented_note(long_chars, seed=100 + i) for i in range(long_requests)]
    short = invented_note(short_chars, seed=7)
    long_clients = [Client(url, verbose=False) for _ in longs]
    short_client = Client(url, verbose=False)
    short_client.submit(model, short, [], "label", api_name="/extract").result(timeout=timeout)  # warm the path

    lock = threading.Lock()
    long_latencies: list[float] = []
    shorts: list[tuple[bool, float, float | None]] = []  # (sent while every long was in flight, sent at, latency)
    errors: list[str] = []
    answered = threading.Event()  # a long one came back

    def send(client, text: str, done) -> None:
        started = time.perf_counter()
        try:
            client.submit(model, text, [], "label", api_name="/extract").result(timeout=timeout)
            latency = time.perf_counter() - started
        except Exception as err:  # every failure is counted and reported, never hidden
            latency = None
            with lock:
                errors.append(f"{type(err).__name__}: {err}"[:200])
        with lock:
            done(latency)

    def long_done(latency: float | None) -> None:
        if latency is not None:
            long_latencies.append(latency)
        answered.set()

    def short_done(flag: bool, sent_at: float):
        return lambda latency: shorts.append((flag, sent_at, latency))

    started = time.perf_counter()
    long_threads = [threading.Thread(target=send, args=(c, t, long_done)) for c, t in zip(long_clients, longs)]
    for thread in long_threads:
        thread.start()
    time.sleep(0.5)  # the long ones reach the app first
    short_threads = []
    while any(thread.is_alive() for thread in long_threads) and time.perf_counter() - started < timeout:
        done = short_done(not answered.is_set(), time.perf_counter() - started)
        thread = threading.Thread(target=send, args=(short_client, short, done))
        thread.start()
        short_threads.append(thread)
        time.sleep(short_every)
    for thread in long_threads + short_threads:
        thread.join(timeout + 60)
    during = [latency for flag, _, latency in shorts if flag and latency is not None]
    return {
        "long_latencies_s": sorted(round(x, 2) for x in long_latencies),
        "short_sent": len(short_threads),
        "short_sent_while_all_long_in_flight": sum(flag for flag, _, _ in shorts),
        "short_answered_while_all_long_in_flight": len(during),
        **latency_summary(during),
        "short_all": latency_summary([latency for _, _, latency in shorts if latency is not None]),
        "short_samples": [  # (seconds after the long ones were sent, latency); None: an error
            [round(at, 2), None if latency is None else round(latency, 3)]
            for _, at, latency in sorted(shorts, key=lambda s: s[1])
        ],
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:5],
        "wall_s": round(time.perf_counter() - started, 2),
    }


def markdown(record: dict) -> str:
    load, mix = record["load"], record["short_behind_long"]
    lines = [
        "# Demo under load (`benchmarks/space_load.py`)",
        "",
        f"- date: {record['date']}",
        f"- hardware: {record['hardware']}, no GPU",
        f"- machine: {record['machine_note']}",
        f"- command: `{record['command']}`",
        f"- model: `{record['model']}` ({record['model_kind']})",
        (f"- app: `clinx demo`, {record['concurrency_limit']} extractions at once, at most {record['queue_size']} "
         f"waiting; short lane: requests up to {record['short_chars']:,} characters"),
        "",
        "## 1. Many users, short notes",
        "",
        "| clients | requests | completed | errors | dropped | p50 (s) | p95 (s) | max (s) | throughput (req/s) | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        (f"| {load['clients']} | {load['requests']} | {load['completed']} | {load['errors']} | {load['dropped']} "
         f"| {load['p50_s']} | {load['p95_s']} | {load['max_s']} | {load['throughput_rps']} | {load['wall_s']} |"),
        "",
        ("Latency is end to end per request as a client sees it (queue wait included), on the invented "
         "example notes (about 150-300 characters each), lanes on."),
        "",
        (f"## 2. A {mix['short_chars']:,}-character note while {mix['long_requests']} notes of "
         f"{mix['long_chars']:,} characters extract"),
        "",
        (f"{mix['long_requests']} long notes sent at once; from 0.5 s later one short note every "
         f"{mix['short_every_s']} s (each its own request) until the long ones are answered. Short-note latency "
         "counts the notes sent while every long one was still in flight."),
        "",
        ("| lanes | short notes (answered) | p50 (s) | p95 (s) | max (s) | p95, every short note (s) "
         "| long notes answered after (s) | errors | wall (s) |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    names = {"on": "on (as shipped)", "off": "off: one line, 2 at a time (before)"}
    for lanes, r in mix["runs"].items():
        lines.append(
            f"| {names[lanes]} | {r['short_sent_while_all_long_in_flight']} ({r['short_answered_while_all_long_in_flight']}) "
            f"| {r['p50_s']} | {r['p95_s']} | {r['max_s']} | {r['short_all']['p95_s']} "
            f"| {', '.join(map(str, r['long_latencies_s']))} "
            f"| {r['errors']} | {r['wall_s']} |"
        )
    lines += [
        "",
        ("With the lanes on, long requests hold at most one of the two slots, so a short note waits only for "
         "other short notes; the long ones take turns in theirs (the second starts when the first ends, which "
         "is what the lanes cost it). \"Every short note\" adds those sent after the first long one came back. "
         "Each request's latency is in the JSON file (`short_samples`). What a long request still costs "
         "the others: Gradio walks the whole result on its event loop; with a raw random head (a span "
         "every ~6 characters, 33k spans for 200k characters) that stalled every request for 1-3 s, hence "
         "the bias towards `O` in the small model."),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small", help="a model folder or Hub id, or `small` (built in --work)")
    parser.add_argument("--work", default=None, help="where the small model is built (default: a temporary folder)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--long-chars", type=int, default=200_000)
    parser.add_argument("--long-requests", type=int, default=2)
    parser.add_argument("--short-chars", type=int, default=1_000)
    parser.add_argument("--short-every", type=float, default=0.5, help="seconds between short notes")
    parser.add_argument("--lanes", default="on,off", help="runs of part 2: on (as shipped), off (the queue before)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one request may take")
    parser.add_argument("--machine-note", default=None, help="e.g. 'shared with a training run' (default: the load average)")
    parser.add_argument("--out", default=str(RESULTS / "space-load"), help="writes OUT.md and OUT.json")
    args = parser.parse_args(argv)

    from clinx_hub.demo import build_demo
    from clinx_hub.run_state import hardware

    model, work = args.model, None
    if model == "small":
        work = tempfile.TemporaryDirectory(prefix="space-load-") if args.work is None else None
        model = str(small_model(Path(work.name if work else args.work) / "small-clinx"))
    defaults = build_demo([model])  # only to report the queue settings `clinx demo` uses
    lanes = defaults.clinx_lanes
    load_before = os.getloadavg()
    with running_demo(model) as url:
        load = run_clients(url, model, args.clients, args.requests, args.timeout)
    runs = {}
    for setting in args.lanes.split(","):
        with running_demo(model, LANES[setting]) as url:
            runs[setting] = short_behind_long(
                url, model, long_chars=args.long_chars, long_requests=args.long_requests,
                short_chars=args.short_chars, short_every=args.short_every, timeout=args.timeout,
            )
    model_dir = Path(model)
    kind = f"ensemble of {len(EnsembleSpec.read(model_dir).members)}" if is_ensemble_folder(model_dir) else "single model"
    if args.model == "small":
        kind += "; `small`: build_small_encoder's 4-layer BERT, hidden 128, random CLIN-X head"
    note = args.machine_note or (
        f"load average {load_before[0]:.1f} on {os.cpu_count()} cores when it started"
        + (" (shared: other jobs were running)" if load_before[0] > 1.0 else "")
    )
    record = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "hardware": hardware("cpu"),
        "machine_note": note,
        "command": command_line("space_load.py", argv),
        "model": args.model,
        "model_kind": kind,
        "concurrency_limit": lanes.slots,
        "queue_size": lanes.max_waiting,
        "short_chars": lanes.short_chars,
        "load": load,
        "short_behind_long": {
            "long_chars": args.long_chars, "long_requests": args.long_requests, "short_chars": args.short_chars,
            "short_every_s": args.short_every, "runs": runs,
        },
    }
    if work is not None:
        work.cleanup()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    text = markdown(record)
    out.with_suffix(".md").write_text(text)
    print(text)
    if load["errors"] or load["dropped"] or any(r["errors"] for r in runs.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
