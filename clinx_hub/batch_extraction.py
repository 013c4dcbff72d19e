"""Batch extraction over an archive of notes: a plan of shards, a local engine and a Ray Data engine.

The input is a folder of ``.txt`` files, JSON lines or parquet files with an id and a text column.
The driver reads ids only (a ``.txt`` file's id is its path) and cuts the notes into shards of
references (paths, byte ranges, row ranges), never texts; workers read their shard's notes, run the
model and write one parquet shard each. A run into ``OUT`` leaves:

- ``plan.json``: what the run is (input, columns, shard size, size limit, model and its version,
  a digest of the notes' ids in order); a rerun with another plan is refused unless ``overwrite``.
- ``shards/part-NNNNN.parquet``: ``id``, ``spans`` (``outputs.span_records``' fields), ``model``,
  ``model_version`` per note, written aside and renamed: a shard that exists is done, so a rerun
  skips it and a note is never written twice; ``part-NNNNN.errors.jsonl`` beside it (renamed first).
- ``errors.jsonl``: every note that was not extracted, with its id (or where it is) and the reason;
  never its text. ``manifest.json``: the shards with their counts, the engine, the time.

The Ray engine is Ray Data's ``map_batches`` over the pending shards with an actor pool: each
actor loads the model once and takes shard after shard (``num_workers`` actors, each
``threads_per_worker`` CPU threads or one GPU).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .documents import Document
from .formats.base import CorpusFormatError, write_text_atomic
from .outputs import OutputFolderError, span_records

PLAN_FILE = "plan.json"
MANIFEST_FILE = "manifest.json"
ERRORS_FILE = "errors.jsonl"
SHARDS_DIR = "shards"
NOTE_FORMATS = {".txt": "txt", ".jsonl": "jsonl", ".parquet": "parquet"}
DEFAULT_MAX_CHARS = 1_000_000
"""Longer notes are recorded as errors: extraction streams long notes in flat memory, but a note
of millions of characters in an archive is more likely a concatenation or a binary dump."""
PLAN_VERSION = 1


class BatchRunError(ValueError):
    """A batch run that cannot start: an unreadable input layout, or an output folder holding another run."""


@dataclass
class BatchSummary:
    """What a batch run did: notes written, errors recorded, shards done now, skipped (done before) or failed."""

    out: str
    notes: int = 0
    errors: int = 0
    shards: int = 0
    shards_done: int = 0
    shards_skipped: int = 0
    shards_failed: list[int] = field(default_factory=list)
    seconds: float = 0.0
    worker_peak_rss_mb: dict[str, float] = field(default_factory=dict)
    extraction_seconds: float = 0.0
    """From the first shard's start to the last one's end in this run: model loading and start-up left out."""


def _error(note_id: str | None, source: str, reason: str) -> dict:
    return {"id": note_id, "source": source, "reason": reason}


# --- planning (driver): ids and references only --------------------------------------------------


def _input_files(source: Path) -> tuple[str, list[Path]]:
    """The note format of ``source`` and its files in order (one format per input)."""
    if not source.exists():
        raise CorpusFormatError("no such file or folder", source)
    if source.is_file():
        kind = NOTE_FORMATS.get(source.suffix)
        if kind is None:
            raise CorpusFormatError(f"not a note file (one of {', '.join(NOTE_FORMATS)})", source)
        return kind, [source]
    found = {kind: sorted(p for p in source.rglob(f"*{suffix}")) for suffix, kind in NOTE_FORMATS.items()}
    present = [kind for kind, files in found.items() if files]
    if len(present) != 1:
        what = "no .txt, .jsonl or .parquet files" if not present else f"files of several formats ({', '.join(present)})"
        raise CorpusFormatError(f"holds {what}: give a folder of one format", source)
    for file in found[present[0]]:
        if not file.is_file():
            raise CorpusFormatError("matches a note suffix but is not a file (a folder?); rename it or move it out", file)
    return present[0], found[present[0]]


def _jsonl_ids(file: Path, id_column: str) -> Iterator[tuple[int, int, int, Any, str | None]]:
    """(line number, start byte, end byte, id or None, reason it is unusable) for each line of ``file``."""
    offset = 0
    with file.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                yield number, start, offset, None, "not UTF-8"
                continue
            except ValueError:
                yield number, start, offset, None, "not a JSON line"
                continue
            if not isinstance(record, dict):
                yield number, start, offset, None, "not a JSON object"
                continue
            yield number, start, offset, record.get(id_column), None


def _parquet_ids(file: Path, id_column: str, text_column: str) -> Iterator[tuple[int, Any]]:
    """(row index, id) for each row of ``file``; a missing column is an error naming it."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(file)
    names = parquet.schema_arrow.names
    for column in (id_column, text_column):
        if column not in names:
            raise CorpusFormatError(
                f"has no column {column!r} (columns: {', '.join(names)}); see --id-column/--text-column", file
            )
    row = 0
    for batch in parquet.iter_batches(columns=[id_column], batch_size=8192):
        for value in batch.column(0).to_pylist():
            yield row, value
            row += 1


@dataclass
class _Plan:
    settings: dict
    tasks: list[dict]
    errors: list[dict]


class _Planner:
    """Cuts notes into shards of at most ``shard_size``; a shard never spans two files (but .txt files)."""

    def __init__(self, shard_size: int) -> None:
        self.shard_size = shard_size
        self.tasks: list[dict] = []
        self.errors: list[dict] = []
        self.seen: set[str] = set()
        self.digest = hashlib.sha256()
        self.notes = 0
        self.current: dict | None = None

    def accept(self, note_id: Any, source: str) -> bool:
        """Whether a note with ``note_id`` goes into the run (else its error is recorded)."""
        if note_id is None or (isinstance(note_id, str) and not note_id.strip()) or isinstance(note_id, (dict, list)):
            self.errors.append(_error(None, source, "missing id"))
            return False
        note_id = str(note_id)
        if note_id in self.seen:
            self.errors.append(_error(note_id, source, "duplicate id (an earlier note has it; that one is kept)"))
            return False
        self.seen.add(note_id)
        self.digest.update(note_id.encode() + b"\n")
        self.notes += 1
        return True

    def open(self, kind: str, file: str, **ref) -> dict:
        if self.current is None or self.current["file"] != file or self.current["count"] >= self.shard_size:
            self.current = {"shard": len(self.tasks), "kind": kind, "file": file, "count": 0, "skip": [], **ref}
            self.tasks.append(self.current)
        return self.current


def plan_shards(
    source: str | Path,
    *,
    shard_size: int = 256,
    id_column: str = "id",
    text_column: str = "text",
) -> tuple[str, list[dict], list[dict], str, int]:
    """Format, shard tasks, planning errors (missing or duplicate ids), digest and note count of ``source``.

    >>> kind, tasks, errors, digest, notes = plan_shards("notes/", shard_size=128)  # doctest: +SKIP
    """
    source = Path(source)
    kind, files = _input_files(source)
    planner = _Planner(shard_size)
    for file in files:
        name = file.relative_to(source).as_posix() if source.is_dir() else file.name
        if kind == "txt":
            note_id = Path(name).with_suffix("").as_posix() if source.is_dir() else file.stem
            if planner.accept(note_id, name):
                task = planner.open(kind, str(source if source.is_dir() else file.parent), paths=[])
                task["paths"].append(name if source.is_dir() else file.name)
                task["count"] += 1
        elif kind == "jsonl":
            for number, start, end, note_id, reason in _jsonl_ids(file, id_column):
                task = planner.open(kind, str(file), start=start, end=end, first_line=number - 1)
                task["end"] = end
                task["count"] += 1
                if reason:
                    planner.errors.append(_error(None, f"{name}:{number}", reason))
                if reason or not planner.accept(note_id, f"{name}:{number}"):
                    task["skip"].append(number)
        else:
            for row, note_id in _parquet_ids(file, id_column, text_column):
                task = planner.open(kind, str(file), start=row, end=row + 1)
                task["end"] = row + 1
                task["count"] += 1
                if not planner.accept(note_id, f"{name}:row {row}"):
                    task["skip"].append(row)
    return kind, planner.tasks, planner.errors, planner.digest.hexdigest(), planner.notes


# --- a shard (worker): read its notes, extract, write it whole ------------------------------------


def _check_text(note_id: str, source: str, text: Any, max_chars: int) -> str | dict:
    """The note's text, or the error that keeps it out (empty, not text, over ``max_chars``)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            return _error(note_id, source, f"not UTF-8 (byte {err.start})")
    if text is None:
        return _error(note_id, source, "no text (missing or null)")
    if not isinstance(text, str):
        return _error(note_id, source, f"text is a {type(text).__name__}, not a string")
    if len(text) > max_chars:
        return _error(note_id, source, f"over the size limit ({len(text)} > {max_chars} characters)")
    if not text.strip():
        return _error(note_id, source, "empty")
    return text


def read_shard_notes(task: dict, *, id_column: str, text_column: str, max_chars: int) -> tuple[list[Document], list[dict]]:
    """The notes of one shard task, and the errors of those that cannot be extracted."""
    notes: list[Document] = []
    errors: list[dict] = []

    def add(note_id: str, source: str, text: Any) -> None:
        checked = _check_text(note_id, source, text, max_chars)
        if isinstance(checked, dict):
            errors.append(checked)
        else:
            notes.append(Document(note_id, checked))

    file = Path(task["file"])
    if task["kind"] == "txt":
        for name in task["paths"]:
            path = file / name
            note_id = Path(name).with_suffix("").as_posix()
            try:
                # Checked before reading: a huge file is never loaded whole (UTF-8 is at most 4 bytes a character).
                size = path.stat().st_size
                add(note_id, name, path.read_bytes() if size <= 4 * max_chars else "x" * (max_chars + 1))
            except OSError as err:
                errors.append(_error(note_id, name, f"cannot be read ({err.strerror or type(err).__name__})"))
    elif task["kind"] == "jsonl":
        skip = set(task["skip"])
        with file.open("rb") as lines:
            lines.seek(task["start"])
            data = lines.read(task["end"] - task["start"])
        number = task["first_line"]
        for line in io.BytesIO(data):  # split as the planner's file iteration did (on "\n" only)
            number += 1
            if line.strip() and number not in skip:
                record = json.loads(line.decode("utf-8"))
                add(str(record[id_column]), f"{file.name}:{number}", record.get(text_column))
    else:
        import pyarrow.parquet as pq

        skip = set(task["skip"])
        parquet = pq.ParquetFile(file)
        row = 0
        for group in range(parquet.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            if row + rows > task["start"] and row < task["end"]:
                table = parquet.read_row_group(group, columns=[id_column, text_column])
                for i, (note_id, text) in enumerate(zip(*(table.column(c).to_pylist() for c in (id_column, text_column)))):
                    index = row + i
                    if task["start"] <= index < task["end"] and index not in skip:
                        add(str(note_id), f"{file.name}:row {index}", text)
            row += rows
    return notes, errors


def _shard_schema():
    import pyarrow as pa

    span = pa.struct([
        ("start", pa.int64()), ("end", pa.int64()), ("label", pa.string()), ("text", pa.string()), ("score", pa.float64())
    ])
    return pa.schema([
        ("id", pa.string()), ("spans", pa.list_(span)), ("model", pa.string()), ("model_version", pa.string())
    ])


def shard_path(out: Path, shard: int) -> Path:
    """Where shard ``shard`` of a run into ``out`` is written (its errors beside it)."""
    return out / SHARDS_DIR / f"part-{shard:05d}.parquet"


def _errors_path(out: Path, shard: int) -> Path:
    return shard_path(out, shard).with_suffix(".errors.jsonl")


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def run_shard(task: dict, extractor, out: Path, settings: dict, *, batch_size: int = 16) -> dict:
    """Extract one shard into ``out/shards``: its errors file, then its parquet file (present = done)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    started = time.time()
    summary = {"shard": task["shard"], "pid": os.getpid(), "status": "done", "started": started}
    try:
        notes, errors = read_shard_notes(
            task, id_column=settings["id_column"], text_column=settings["text_column"], max_chars=settings["max_chars"]
        )
        predictions = extractor.predict(notes, batch_size=batch_size) if notes else []
        table = pa.table(
            {
                "id": [d.id for d in notes],
                "spans": [span_records(spans) for spans in predictions],
                "model": [settings["model"]] * len(notes),
                "model_version": [settings["model_version"]] * len(notes),
            },
            schema=_shard_schema().with_metadata({"clinx_spans": str(sum(map(len, predictions)))}),
        )
        path = shard_path(out, task["shard"])
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(_errors_path(out, task["shard"]), _jsonl(errors))
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            pq.write_table(table, temporary)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        summary.update(notes=len(notes), errors=len(errors), spans=sum(map(len, predictions)))
    except Exception as err:  # noqa: BLE001 - a failed shard is reported and redone by a rerun, never fatal to the job
        # The class only: a message may quote the note.
        summary.update(status="failed", reason=type(err).__name__)
    summary["finished"] = time.time()
    summary["seconds"] = round(summary["finished"] - started, 3)
    summary["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return summary


def load_batch_model(model: str | Path, *, device: str | None = None, dtype: str | None = None, threads: int | None = None):
    """The extractor a worker keeps: ``load_extractor`` with ``device``/``dtype`` where it takes them."""
    import inspect

    import torch

    from .ensemble import Extractor, load_extractor

    if threads:
        torch.set_num_threads(threads)
    # Taken by load_extractor itself or passed through to Extractor.from_pretrained (which opens every member).
    accepted = {*inspect.signature(load_extractor).parameters, *inspect.signature(Extractor.from_pretrained).parameters}
    options = {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None and k in accepted}
    extractor = load_extractor(model, **options)
    if device is not None and "device" not in accepted:
        extractor = extractor.to(device)
    return extractor


class ShardWorker:
    """A Ray Data actor: loads the model once, then extracts the shards it is given, one per batch row."""

    def __init__(self, model: str, out: str, settings: dict, options: dict) -> None:
        self.out = Path(out)
        self.settings = settings
        self.batch_size = options["batch_size"]
        self.extractor = load_batch_model(
            model, device=options["device"], dtype=options["dtype"], threads=options["threads"]
        )

    def __call__(self, batch: dict) -> dict:
        summaries = [
            run_shard(json.loads(task), self.extractor, self.out, self.settings, batch_size=self.batch_size)
            for task in batch["task"]
        ]
        return {"summary": [json.dumps(s) for s in summaries]}


# --- the run (driver) ------------------------------------------------------------------------------


def model_version(model: str | Path) -> str:
    """A digest of a model folder's config and weights (members included): which model wrote a shard.

    >>> model_version("runs/quickstart/model")  # doctest: +SKIP
    'sha256:3f1c...'
    """
    from .hub import local_model_folder

    folder = local_model_folder(model)
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and (path.suffix == ".safetensors" or path.name in ("config.json", "ensemble.json")):
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            with path.open("rb") as file:
                while chunk := file.read(1 << 20):
                    digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:16]


def _prepare_out(out: Path, source: Path, plan: dict, overwrite: bool) -> None:
    """Refuse an ``out`` that is (inside) the input or holds another run; with ``overwrite``, clear our files."""
    target, source = out.resolve(), source.resolve()
    if target == source or (source.is_dir() and target.is_relative_to(source)) or source.is_relative_to(target):
        raise OutputFolderError("is, holds or lies inside the input; choose a folder beside it", out)
    if out.exists() and not out.is_dir():
        raise OutputFolderError("exists and is not a folder", out)
    ours = [out / name for name in (PLAN_FILE, MANIFEST_FILE, ERRORS_FILE, SHARDS_DIR)]
    if overwrite:
        import shutil

        for path in ours:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    elif (out / PLAN_FILE).is_file():
        earlier = json.loads((out / PLAN_FILE).read_text())
        changed = sorted(k for k in plan.keys() | earlier.keys() if plan.get(k) != earlier.get(k))
        if changed:
            raise OutputFolderError(
                f"holds a batch run with another plan ({', '.join(changed)}): rerun with its settings to finish it,"
                " choose another --out, or pass --overwrite to start over",
                out,
            )
    elif out.is_dir() and any(out.iterdir()):
        raise OutputFolderError("holds files but no batch run; choose an empty folder or pass --overwrite", out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / PLAN_FILE, json.dumps(plan, indent=2) + "\n")


def _shard_counts(out: Path, shard: int) -> dict:
    import pyarrow.parquet as pq

    schema = pq.read_schema(shard_path(out, shard))
    errors = _errors_path(out, shard)
    return {
        "notes": pq.read_metadata(shard_path(out, shard)).num_rows,
        "spans": int(schema.metadata[b"clinx_spans"]),
        "errors": len(errors.read_text().splitlines()) if errors.is_file() else 0,
    }


def _run_ray(pending: list[dict], model: str, out: Path, settings: dict, options: dict, address: str | None) -> Iterator[dict]:
    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    gpus = 1 if str(options["device"] or "").startswith("cuda") else 0
    threads = options["threads"] or 1
    tasks = ray.data.from_items([{"task": json.dumps(t)} for t in pending], override_num_blocks=len(pending))
    results = tasks.map_batches(
        ShardWorker,
        fn_constructor_kwargs={"model": model, "out": str(out), "settings": settings, "options": options},
        batch_size=1,
        concurrency=min(options["workers"], len(pending)),  # an idle actor would still load the model
        num_cpus=threads if not gpus else 1,
        num_gpus=gpus,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}},
    )
    for row in results.iter_rows():
        yield json.loads(row["summary"])


def extract_batch(
    model: str | Path,
    source: str | Path,
    out: str | Path,
    *,
    engine: str = "local",
    num_workers: int = 1,
    threads_per_worker: int | None = None,
    address: str | None = None,
    id_column: str = "id",
    text_column: str = "text",
    max_chars: int = DEFAULT_MAX_CHARS,
    shard_size: int = 256,
    batch_size: int = 16,
    device: str | None = None,
    dtype: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> BatchSummary:
    """Extract spans from every note under ``source`` into parquet shards in ``out``; resumable, exactly once.

    ``engine`` is ``"local"`` (this process) or ``"ray"`` (Ray Data actors; ``address`` joins a cluster,
    else a local Ray starts). Both write the same shards for the same input.

    >>> extract_batch("runs/quickstart/model", "notes.jsonl", "out", engine="ray", num_workers=2)  # doctest: +SKIP
    """
    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be 'local' or 'ray', not {engine!r}")
    for name, value in (("num_workers", num_workers), ("shard_size", shard_size), ("max_chars", max_chars)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, not {value}")
    started = time.time()
    source, out = Path(source), Path(out)
    kind, tasks, plan_errors, digest, notes = plan_shards(
        source, shard_size=shard_size, id_column=id_column, text_column=text_column
    )
    settings = {"model": str(model), "model_version": model_version(model), "id_column": id_column,
                "text_column": text_column, "max_chars": max_chars}
    plan = {"plan_version": PLAN_VERSION, "input": str(source.resolve()), "format": kind, "shard_size": shard_size,
            "shards": len(tasks), "notes": notes, "ids_sha256": digest, **settings}
    _prepare_out(out, source, plan, overwrite)
    pending = [t for t in tasks if not shard_path(out, t["shard"]).is_file()]
    summary = BatchSummary(out=str(out), shards=len(tasks), shards_skipped=len(tasks) - len(pending))
    options = {"batch_size": batch_size, "device": device, "dtype": dtype, "threads": threads_per_worker,
               "workers": num_workers}
    if engine == "ray" and pending:
        results = _run_ray(pending, str(model), out, settings, options, address)
    else:
        extractor = load_batch_model(model, device=device, dtype=dtype, threads=threads_per_worker) if pending else None
        results = (run_shard(t, extractor, out, settings, batch_size=batch_size) for t in pending)
    window = [float("inf"), 0.0]
    for result in results:
        window = [min(window[0], result["started"]), max(window[1], result["finished"])]
        if result["status"] == "done":
            summary.shards_done += 1
        else:
            summary.shards_failed.append(result["shard"])
        pid = str(result["pid"])
        summary.worker_peak_rss_mb[pid] = max(summary.worker_peak_rss_mb.get(pid, 0.0), result["peak_rss_mb"])
        if progress:
            done = summary.shards_done + summary.shards_skipped
            print(f"shard {result['shard']}: {result['status']} ({done}/{len(tasks)} shards done)", flush=True)
    summary.shards_failed.sort()
    summary.extraction_seconds = round(max(window[1] - window[0], 0.0), 3)
    _finish(out, tasks, plan_errors, summary, engine=engine, workers=num_workers, started=started)
    return summary


def _finish(out: Path, tasks: list[dict], plan_errors: list[dict], summary: BatchSummary, **run) -> None:
    """The errors file (planning errors, then each shard's) and the manifest, both written whole."""
    shards, errors = [], list(plan_errors)
    for task in tasks:
        if shard_path(out, task["shard"]).is_file():
            counts = _shard_counts(out, task["shard"])
            shards.append({"shard": task["shard"], "file": shard_path(out, task["shard"]).relative_to(out).as_posix(),
                           **counts})
            summary.notes += counts["notes"]
            text = _errors_path(out, task["shard"]).read_text()
            errors.extend(json.loads(line) for line in text.splitlines())
    summary.errors = len(errors)
    summary.seconds = round(time.time() - run.pop("started"), 2)
    write_text_atomic(out / ERRORS_FILE, _jsonl(errors))
    manifest = {**run, **{k: v for k, v in asdict(summary).items() if k != "out"}, "shard_files": shards,
                "complete": not summary.shards_failed and len(shards) == len(tasks)}
    write_text_atomic(out / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")


def read_batch_output(out: str | Path) -> Iterator[dict]:
    """The records of a batch run's shards, shard by shard: ``{"id", "spans", "model", "model_version"}``.

    >>> next(read_batch_output("out"))["spans"]  # doctest: +SKIP
    """
    import pyarrow.parquet as pq

    for path in sorted((Path(out) / SHARDS_DIR).glob("part-*.parquet")):
        yield from pq.read_table(path).to_pylist()
