"""Batch extraction on Ray Data against one worker and against the local engine (clinx_hub/batch_extraction.py).

    python benchmarks/batch_extraction.py speedup            # 200 MEDDOCAN/CANTEMIST notes, MiniLM: 1 vs 2 Ray workers
    python benchmarks/batch_extraction.py scale --notes 100000   # synthetic notes, tiny model: memory over time
    python benchmarks/batch_extraction.py resume --notes 2000    # interrupted (SIGINT) run resumed = uninterrupted run
    python benchmarks/batch_extraction.py table              # rebuild the markdown (and the cost table) from the JSON

Each part adds its rows to ``benchmarks/results/batch-extraction-cpu.json`` and rewrites the ``.md``.
Notes are written to a temporary folder outside the repository (corpus text never enters it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import load_average, minilm_folder, proc_memory_mb, run_meta, write_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "batch-extraction-cpu"
MINILM_MODEL = Path(os.environ.get("CLINX_BATCH_MODEL", "/root/clinx-runs/sources/pharmaconer-source"))
CORPORA = Path(os.environ.get("CLINX_CORPORA", Path(__file__).resolve().parents[2] / "shared" / "corpora"))


class MemorySampler(threading.Thread):
    """The driver's RSS (this process, or ``pid``) every ``every`` seconds while a run goes."""

    def __init__(self, every: float = 1.0, pid: int | None = None) -> None:
        super().__init__(daemon=True)
        self.every, self.samples, self.stop, self.pid = every, [], threading.Event(), pid
        self.start_time = time.time()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.samples.append((round(time.time() - self.start_time, 1), round(proc_memory_mb("VmRSS", self.pid) or 0.0, 1)))
            except (FileNotFoundError, ProcessLookupError):  # the process has ended
                return
            self.stop.wait(self.every)


def write_jsonl(path: Path, notes) -> Path:
    with path.open("w", encoding="utf-8") as file:
        for note_id, text in notes:
            file.write(json.dumps({"id": note_id, "text": text}, ensure_ascii=False) + "\n")
    return path


def corpus_notes(n: int) -> list[tuple[str, str]]:
    """``n`` notes, half MEDDOCAN's test (or dev) texts, half CANTEMIST's, in file order."""
    folders = [CORPORA / "meddocan" / "corpus", CORPORA / "cantemist"]
    notes = []
    for folder in folders:
        files = sorted(folder.rglob("*.txt"))
        files = [f for f in files if f.name not in ("README.txt",)][: n // 2]
        notes += [(f"{folder.parts[-2 if folder.name == 'corpus' else -1]}/{f.stem}", f.read_text("utf-8")) for f in files]
    return notes


def subword_count(model: Path, texts) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)


def tiny_model(folder: Path) -> Path:
    """An untrained clinx model on a tiny BERT (hidden 32, 2 layers) with MiniLM's tokenizer; random head."""
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import AutoModel, AutoTokenizer, BertConfig

    from clinx_hub import ClinXForTokenClassification
    from clinx_hub.synthetic import synthetic_documents
    from clinx_hub.tagging import scheme_labels

    tokenizer = AutoTokenizer.from_pretrained(minilm_folder())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=512)
    AutoModel.from_config(config).save_pretrained(folder / "encoder")
    tokenizer.save_pretrained(folder / "encoder")
    labels = sorted({s.label for d in synthetic_documents(30) for s in d.spans})
    model = ClinXForTokenClassification.from_backbone(str(folder / "encoder"), scheme_labels(labels, "bioes"))
    torch.nn.init.normal_(model.classifier.weight, std=0.5)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def spans_equal(a: Path, b: Path) -> tuple[bool, int]:
    """Whether two runs hold the same notes and spans (scores within 1e-4), and how many spans differ."""
    from clinx_hub.batch_extraction import read_batch_output

    left = {r["id"]: r["spans"] for r in read_batch_output(a)}
    right = {r["id"]: r["spans"] for r in read_batch_output(b)}
    differ = abs(len(left) - len(right))
    for note_id in left.keys() & right.keys():
        x, y = left[note_id], right[note_id]
        same = len(x) == len(y) and all(
            {k: v for k, v in s.items() if k != "score"} == {k: v for k, v in t.items() if k != "score"}
            and abs(s["score"] - t["score"]) < 1e-4 for s, t in zip(x, y)
        )
        differ += 0 if same else max(len(x), len(y))
    return differ == 0, differ


def batch_run(model: Path, source: Path, out: Path, **options) -> dict:
    from clinx_hub.batch_extraction import extract_batch

    sampler = MemorySampler()
    sampler.start()
    started = time.time()
    summary = extract_batch(model, source, out, overwrite=True, **options)
    sampler.stop.set()
    sampler.join()
    return {"summary": summary, "wall": time.time() - started, "driver_rss": sampler.samples}


def speedup(args: argparse.Namespace) -> list[dict]:
    import ray

    notes = corpus_notes(args.notes)
    work = Path(tempfile.mkdtemp(prefix="clinx-batch-"))
    source = write_jsonl(work / "notes.jsonl", notes)
    subwords = subword_count(MINILM_MODEL, [t for _, t in notes])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    runs = [("local", 1, "local"), ("ray", 1, "ray-1"), ("ray", 2, "ray-2")]
    for engine, workers, name in runs * args.repeats:
        result = batch_run(MINILM_MODEL, source, work / name, engine=engine, num_workers=workers, threads_per_worker=1,
                           shard_size=args.shard_size)
        summary = result["summary"]
        rows.append({
            "part": "speedup", "engine": engine, "workers": workers, "threads_per_worker": 1, "notes": summary.notes,
            "subwords": subwords, "wall_seconds": round(result["wall"], 1),
            "extraction_seconds": summary.extraction_seconds,
            "subwords_per_second": round(subwords / summary.extraction_seconds, 1),
            "load_average": load_average(),
        })
        print(rows[-1], flush=True)
    ray.shutdown()
    equal, differ = spans_equal(work / "local", work / "ray-2")
    best = {name: max(r["subwords_per_second"] for r in rows if (r["engine"], r["workers"]) == key)
            for name, key in (("local", ("local", 1)), ("ray-1", ("ray", 1)), ("ray-2", ("ray", 2)))}
    rows.append({"part": "speedup-summary", "ray2_over_ray1": round(best["ray-2"] / best["ray-1"], 2),
                 "ray1_over_local": round(best["ray-1"] / best["local"], 2), "ray2_equals_local": equal,
                 "differing_spans": differ, "model": str(MINILM_MODEL)})
    return rows


def scale(args: argparse.Namespace) -> list[dict]:
    """Synthetic notes through ``clinx predict --engine ray`` (a driver process of its own, its RSS sampled).

    With ``--interrupt-after K`` the driver is killed (SIGKILL) once K shards are written and the same
    command is run again; either way the output is then read back: every note's id exactly once.
    """
    from clinx_hub.synthetic import synthetic_documents

    work = Path(args.work or tempfile.mkdtemp(prefix="clinx-batch-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    model = tiny_model(work / "tiny-model")
    source = work / f"synthetic-{args.notes}.jsonl"
    if not source.is_file():
        # Written in pieces: the notes are never all in memory at once.
        with source.open("w", encoding="utf-8") as file:
            for start in range(0, args.notes, 1000):
                for d in synthetic_documents(min(1000, args.notes - start), seed=start):
                    file.write(json.dumps({"id": f"{start}-{d.id}", "text": d.text}, ensure_ascii=False) + "\n")
    out = work / f"out-{args.notes}"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "clinx_hub.cli", "predict", str(model), str(source), "--out", str(out),
               "--engine", "ray", "--num-workers", "2", "--threads-per-worker", "1", "--shard-size",
               str(args.shard_size)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    runs, started = [], time.time()
    for attempt in ("interrupted", "rerun") if args.interrupt_after else ("whole",):
        driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        sampler = MemorySampler(pid=driver.pid)
        sampler.start()
        begun = time.time()
        if attempt == "interrupted":
            while len(list((out / "shards").glob("part-*.parquet"))) < args.interrupt_after and driver.poll() is None:
                time.sleep(0.5)
            driver.send_signal(signal.SIGKILL)  # as a killed driver: Ray's processes go with it
        _, stderr = driver.communicate()
        sampler.stop.set()
        sampler.join()
        shards = len(list((out / "shards").glob("part-*.parquet")))
        runs.append({"attempt": attempt, "exit": driver.returncode, "wall_seconds": round(time.time() - begun, 1),
                     "shards_written_when_it_ended": shards, "driver_rss": sampler.samples,
                     "stderr_tail": stderr[-300:] if driver.returncode else ""})
    manifest = json.loads((out / "manifest.json").read_text())
    ids = exactly_once(out)
    errors = sum(1 for _ in (out / "errors.jsonl").open()) if (out / "errors.jsonl").is_file() else 0
    samples = [sample for run in runs for sample in run["driver_rss"]]
    steady = [mb for run in runs for t, mb in run["driver_rss"] if t >= min(30.0, run["driver_rss"][-1][0] / 4)]
    return [{
        "part": "scale", "engine": "ray", "workers": 2, "threads_per_worker": 1, "notes": args.notes,
        "input_mb": round(source.stat().st_size / 1e6, 1), "shards": manifest["shards"],
        "wall_seconds": round(time.time() - started, 1), "extraction_seconds": manifest["extraction_seconds"],
        "notes_per_second": round((args.notes * (manifest["shards"] - manifest["shards_skipped"]) / manifest["shards"])
                                  / manifest["extraction_seconds"], 1),
        "driver_rss_mb_first": samples[0][1], "driver_rss_mb_min_after_start": min(steady),
        "driver_rss_mb_max_after_start": max(steady),
        "driver_rss_samples": [s for run in runs for s in run["driver_rss"][:: max(1, len(run["driver_rss"]) // 20)]],
        "worker_peak_rss_mb": sorted(manifest["worker_peak_rss_mb"].values()), "load_average": load_average(),
        "runs": [{k: v for k, v in run.items() if k != "driver_rss"} for run in runs],
        "interrupted_after_shards": args.interrupt_after, "shards_skipped_by_rerun": manifest["shards_skipped"],
        "complete": manifest["complete"], "ids_written": ids["written"], "ids_unique": ids["unique"], "errors": errors,
        "every_note_exactly_once": ids["written"] == ids["unique"] == args.notes - errors,
    }]


def exactly_once(out: Path) -> dict:
    """How many note ids the shards hold, and how many distinct: read one shard's id column at a time."""
    import pyarrow.parquet as pq

    seen, written = set(), 0
    for shard in sorted((out / "shards").glob("part-*.parquet")):
        column = pq.read_table(shard, columns=["id"]).column("id").to_pylist()
        written += len(column)
        seen.update(column)
    return {"written": written, "unique": len(seen)}


def resume(args: argparse.Namespace) -> list[dict]:
    """An uninterrupted run and a run killed (SIGKILL, the driver) after some shards, then rerun: the same output."""
    work = Path(args.work or tempfile.mkdtemp(prefix="clinx-batch-resume-")) / f"resume-{args.notes}"
    work.mkdir(parents=True, exist_ok=True)
    model = tiny_model(work.parent / "tiny-model")
    from clinx_hub.synthetic import synthetic_documents

    source = work / "notes.jsonl"
    if not source.is_file():
        write_jsonl(source, ((d.id, d.text) for d in synthetic_documents(args.notes, seed=11)))
    command = [sys.executable, "-m", "clinx_hub.cli", "predict", str(model), str(source), "--engine", "ray",
               "--num-workers", "2", "--shard-size", str(args.shard_size)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    if not (work / "whole" / "manifest.json").is_file():
        subprocess.run([*command, "--out", str(work / "whole")], env=env, check=True, capture_output=True)
    shutil.rmtree(work / "cut", ignore_errors=True)
    run = subprocess.Popen([*command, "--out", str(work / "cut")], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    while len(list((work / "cut" / "shards").glob("part-*.parquet"))) < 3 and run.poll() is None:
        time.sleep(0.1)
    run.send_signal(signal.SIGKILL)  # as a killed driver: Ray's processes go with it, shards in flight are lost
    run.wait()
    stray = len(list((work / "cut" / "shards").glob(".*.tmp")))
    done_before = len(list((work / "cut" / "shards").glob("part-*.parquet")))
    rerun = subprocess.run([*command, "--out", str(work / "cut")], env=env, capture_output=True, text=True)
    equal, differ = spans_equal(work / "whole", work / "cut")
    manifest = json.loads((work / "cut" / "manifest.json").read_text())
    return [{"part": "resume", "notes": args.notes, "shards": manifest["shards"], "shards_done_before_interrupt":
             done_before, "shards_skipped_by_rerun": manifest["shards_skipped"], "stray_temporary_files": stray,
             "rerun_exit": rerun.returncode, "same_output_as_uninterrupted": equal, "differing_spans": differ,
             "complete": manifest["complete"]}]


# Paper estimates for the cost table (see the table's notes): encoder FLOPs per subword ~ 2 x non-embedding params.
ENCODERS = {"MiniLM-L6 (22.7M)": 2 * 6 * (4 * 384**2 + 2 * 384 * 1536), "XLM-R-large size (560M)": 2 * 24 * (
    4 * 1024**2 + 2 * 1024 * 4096)}
GPU_EFFECTIVE_FLOPS = 100e12  # an A100/H100-class GPU in bf16 at ~30-40% of peak on batched 512-subword windows


def table(rows: list[dict], meta: dict) -> str:
    lines = ["# Batch extraction on Ray Data (CPU)", "", f"Hardware: {meta.get('hardware')}.", ""]
    speed = [r for r in rows if r["part"] == "speedup"]
    if speed:
        lines += [f"## Ray workers vs one worker (MiniLM, {speed[0]['notes']} MEDDOCAN/CANTEMIST notes)", "",
                  "| engine | workers x threads | notes | subwords | extraction s | wall s | subwords/s | load avg |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['engine']} | {r['workers']} x 1 | {r['notes']} | {r['subwords']} | {r['extraction_seconds']} |"
                  f" {r['wall_seconds']} | {r['subwords_per_second']} | {r['load_average']} |" for r in speed]
        for r in rows:
            if r["part"] == "speedup-summary":
                lines += ["", f"2 Ray workers / 1 Ray worker (best of each): **{r['ray2_over_ray1']}x**; 1 Ray worker /"
                          f" local: {r['ray1_over_local']}x; 2-worker output equals the local engine's span for span:"
                          f" {r['ray2_equals_local']} ({r['differing_spans']} differing spans); model {r['model']}."]
        lines += ["", "Extraction s: first shard's start to last shard's end (model loading and Ray start-up left out);"
                  " wall s includes them and the driver's planning. The three runs went one after another; "
                  + machine_note([r["load_average"] for r in speed])]
    for r in (r for r in rows if r["part"] == "scale"):
        lines += ["", f"## {r['notes']:,} synthetic notes, tiny model, 2 Ray workers x 1 thread", "",
                  "| notes | input MB | shards | wall s | extraction s | notes/s | driver RSS MB (start / min-max after start) |"
                  " workers' peak RSS MB | load avg |", "|---|---|---|---|---|---|---|---|---|",
                  f"| {r['notes']} | {r['input_mb']} | {r['shards']} | {r['wall_seconds']} | {r['extraction_seconds']} |"
                  f" {r['notes_per_second']} | {r['driver_rss_mb_first']} / {r['driver_rss_mb_min_after_start']}-"
                  f"{r['driver_rss_mb_max_after_start']} | {', '.join(map(str, r['worker_peak_rss_mb']))} |"
                  f" {r['load_average']} |"]
        if r.get("interrupted_after_shards"):
            first = r["runs"][0]
            lines += ["", f"The driver was killed (SIGKILL) after {first['wall_seconds']} s with"
                      f" {first['shards_written_when_it_ended']} of {r['shards']} shards written; the same command"
                      f" again skipped {r['shards_skipped_by_rerun']} and exited {r['runs'][-1]['exit']}."]
        if "every_note_exactly_once" in r:
            lines += ["", f"Read back: {r['ids_written']:,} ids in the shards, {r['ids_unique']:,} distinct,"
                      f" {r['errors']} in errors.jsonl: every note exactly once: **{r['every_note_exactly_once']}**;"
                      f" manifest complete: {r['complete']}. Driver RSS is sampled every second (both runs)."]
    if any(r["part"] == "scale" for r in rows) and not any(r["part"] == "scale" and r["notes"] >= 100_000 for r in rows):
        lines += ["", "100,000 notes were not run: at the rate above it takes about an hour on this shared machine."
                  " The command: `python benchmarks/batch_extraction.py scale --notes 100000`. Driver RSS is sampled"
                  " every second; it rises once while Ray starts and then stays flat (the driver holds ids and shard"
                  " references, never texts)."]
    for r in (r for r in rows if r["part"] == "resume"):
        lines += ["", f"## Interrupted and resumed ({r['notes']} synthetic notes, 2 Ray workers)", "",
                  f"Driver killed (SIGKILL) with {r['shards_done_before_interrupt']} of {r['shards']} shards done"
                  f" ({r.get('stray_temporary_files', 0)} temporary shard files left); the rerun skipped"
                  f" {r['shards_skipped_by_rerun']} and exited {r['rerun_exit']}; output equal to an uninterrupted"
                  f" run: {r['same_output_as_uninterrupted']} ({r['differing_spans']} differing spans)."]
    lines += cost_table(rows)
    lines += ["", "Commands, each with the load average at its start and end:", ""]
    lines += [f"- `{m.get('command')}` ({m.get('date', '')[:16]}; {m.get('load_start')} -> {m.get('load_end')})"
              for m in meta.get("runs", [meta])]
    return "\n".join(lines) + "\n"


def machine_note(loads: list[str], cores: int | None = None) -> str:
    """What the load averages beside the rows say: a quiet machine, or cores shared with other jobs."""
    cores = cores or os.cpu_count() or 1
    one_minute = [float(str(load).split()[0]) for load in loads if load]
    if one_minute and max(one_minute) <= cores + 0.5:
        return (f"the 1-minute load average stayed at or under {max(one_minute):.1f} on {cores} cores (the runs' own"
                " processes): a quiet machine.")
    return (f"the 1-minute load average reached {max(one_minute or [0]):.1f} on {cores} cores: other jobs shared the"
            " cores, so read the ratios as those of a shared machine, not of a quiet one.")


def cost_table(rows: list[dict]) -> list[str]:
    speed = [r for r in rows if r["part"] == "speedup" and r["engine"] == "ray" and r["workers"] == 1]
    if not speed:
        return []
    best = max(speed, key=lambda r: r["subwords_per_second"])
    per_note = best["subwords"] / best["notes"]
    scale_rows = [r for r in rows if r["part"] == "scale"]
    # The tiny model's encoder costs next to nothing: its notes/s per worker is the CPU-side work of a note
    # (reading, tokenising, windows, Viterbi, marginals, parquet), which a GPU worker still does on its CPU.
    largest = max(scale_rows, key=lambda r: r["notes"]) if scale_rows else None
    cpu_side = largest["notes_per_second"] / largest["workers"] if largest else None
    lines = ["", "## Cost on paper: notes per hour", "",
             f"A note = {per_note:.0f} subwords (the mean of the {best['notes']} MEDDOCAN/CANTEMIST notes above, MiniLM's"
             " tokenizer).", "",
             "| encoder | per CPU core (1 thread) | per GPU (estimate) | how |", "|---|---|---|---|"]
    cpu_rows = [
        ("MiniLM-L6 (22.7M), whole extraction, measured here", best["subwords_per_second"],
         f"1 Ray worker x 1 thread, the speed-up run above (load average {best['load_average']})"),
        ("MiniLM-L6 (22.7M), the bare encoder", 6000 / 2,
         "ENVIRONMENT.md: ~6k subwords/s on 2 threads for the encoder alone (no context windows, CRF or I/O)"),
        ("XLM-R-large size (560M)", 800 / 2 / 3.6,
         "ENVIRONMENT.md: xlm-roberta-base ~800 subwords/s on 2 threads, / 3.6 (large's encoder FLOPs)"),
    ]
    for name, core, how in cpu_rows:
        flops = ENCODERS["XLM-R-large size (560M)" if name.startswith("XLM") else "MiniLM-L6 (22.7M)"]
        gpu = GPU_EFFECTIVE_FLOPS / flops / 2.0 * 3600 / per_note  # / 2: windows re-encode their context
        if cpu_side and not name.startswith("XLM"):
            gpu_text = f"encoder-bound {gpu:,.0f}; CPU-side bound {cpu_side * 3600:,.0f} per feeding core"
        else:
            gpu_text = f"{gpu:,.0f}"
        lines.append(f"| {name} | {core * 3600 / per_note:,.0f} | {gpu_text} | {how} |")
    lines += ["", "The GPU column is an estimate, not a measurement (no GPU was lent to this session): encoder FLOPs"
              f" per subword ({ENCODERS['MiniLM-L6 (22.7M)'] / 1e6:.0f} M for MiniLM,"
              f" {ENCODERS['XLM-R-large size (560M)'] / 1e6:.0f} M for XLM-R large: 2 x the non-embedding weights)"
              f" at {GPU_EFFECTIVE_FLOPS / 1e12:.0f} TFLOP/s effective (an A100/H100-class GPU in bf16 at 30-40% of"
              " peak), halved because windows re-encode up to 100 + 100 subwords of context. For MiniLM the per-note"
              " CPU work (the tiny-model rate of the largest scale run above) bounds a GPU worker long before"
              " its encoder does: give a GPU worker several CPU threads (`--threads-per-worker`)."]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["speedup", "scale", "resume", "table"])
    parser.add_argument("--notes", type=int, default=None)
    parser.add_argument("--shard-size", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work", default=None, help="folder for the synthetic input and the tiny model (kept)")
    parser.add_argument("--interrupt-after", type=int, default=0, metavar="K",
                        help="scale: kill the driver once K shards are written, then run the same command again")
    args = parser.parse_args(argv)
    defaults = {"speedup": (200, 10), "scale": (100_000, 500), "resume": (2000, 100), "table": (0, 0)}[args.part]
    args.notes = args.notes or defaults[0]
    args.shard_size = args.shard_size or defaults[1]
    from clinx_hub.run_state import hardware

    path = RESULTS.with_suffix(".json")
    load_start = load_average()
    rows = {"speedup": speedup, "scale": scale, "resume": resume, "table": lambda a: []}[args.part](args)
    # Read after the run: parts run side by side each add their rows to what the others wrote.
    earlier = json.loads(path.read_text()) if path.is_file() else {"meta": {}, "rows": []}
    if args.part != "table":  # a scratch copy of the part's rows, outside the repository
        Path(tempfile.gettempdir(), f"batch-extraction-{args.part}.json").write_text(json.dumps(rows, default=str))
    if args.part != "table":
        # Scale runs of other sizes stay beside this one; any other part replaces its earlier rows.
        key = f"scale-{args.notes}" if args.part == "scale" else args.part
        kept = [r for r in earlier["rows"] if r["part"].split("-")[0] != args.part or (
            args.part == "scale" and r["notes"] != args.notes)]
        meta = run_meta("batch_extraction.py", argv, hardware("cpu"), load_start)
        earlier = {"meta": {**earlier["meta"], key: meta}, "rows": kept + rows}
    meta = next(iter(earlier["meta"].values()), {})
    write_results(RESULTS, table(earlier["rows"], {**meta, "runs": list(earlier["meta"].values())}), earlier["meta"],
                  earlier["rows"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
