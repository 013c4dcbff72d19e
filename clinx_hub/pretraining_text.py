"""Pre-training text: ``--text`` files and folders and tasks' training sides, read as a stream of documents.

What ``clinx pretrain`` (``pretraining.py``) reads: ``.txt`` files (one document each), JSON lines and
parquet files (one document per line or row, from a text column) and the training side of a task's
corpus, never its report split (PROTOCOL.md). Errors name the file and line, never the text.

>>> sorted(TEXT_SUFFIXES)
['.json', '.jsonl', '.parquet', '.txt']
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .corpora import get_task, load_task, locate_splits, task_names
from .formats.base import CorpusFormatError, read_text
from .training_args import TrainingSetupError

TEXT_SUFFIXES = {".txt": "txt", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
"""What a ``--text`` file or folder may hold: plain text (one document per file), JSON lines or parquet."""


@dataclass(frozen=True)
class PretrainingText:
    """One document of pre-training text; ``id`` names where it came from (file, line or row), never its text."""

    id: str
    text: str


class PretrainingCorpus:
    """The text to pre-train on: ``--text`` files or folders and the training sides of ``--task`` corpora.

    A task contributes only its training-side splits (``Task.train_splits`` without its report split);
    asking for a report split, or passing a folder that holds one as ``--text``, is refused. A document
    that two tasks share (MEDDOPROF-NER and -CLASS) is read once. A document that shares a sentence
    (``sentence_digests``) with the report split of any task in ``tasks`` or ``decontaminate`` is left
    out and counted (``excluded``): the corpora overlap (PharmaCoNER's training cases hold sentences
    of MEDDOCAN's test notes, and MEDDOCAN's of PharmaCoNER's dev cases), so a training side alone
    does not keep another task's report text out.

    >>> PretrainingCorpus(tasks=["pharmaconer"], data_dir="../shared/corpora", splits=["validation"])  # doctest: +SKIP
    Traceback (most recent call last):
    TrainingSetupError: split 'validation' is pharmaconer's report split (PROTOCOL.md): ...
    """

    def __init__(
        self,
        texts: Sequence[str | Path] = (),
        tasks: Sequence[str] = (),
        data_dir: str | Path | None = None,
        splits: Sequence[str] | None = None,
        text_column: str = "text",
        decontaminate: Sequence[str] = (),
    ) -> None:
        self.text_column = text_column
        self.files = [found for path in texts for found in _text_files(Path(path))]
        for path in texts:
            refuse_report_split_path(Path(path))
        if (tasks or decontaminate) and data_dir is None:
            raise TrainingSetupError("--task and --decontaminate need --data-dir (the corpus folder)")
        self.tasks = {name: _training_splits(name, splits) for name in tasks}
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.decontaminate = list(dict.fromkeys([*tasks, *decontaminate]))
        unknown = [name for name in self.decontaminate if name not in task_names()]
        if unknown:
            raise TrainingSetupError(f"unknown tasks {', '.join(unknown)}; known tasks: {', '.join(task_names())}")
        self._report_sentences: set[str] | None = None
        self.excluded = 0
        """Documents the last whole pass left out for sharing a sentence with a report split."""
        if not self.files and not self.tasks:
            raise TrainingSetupError("no pre-training text: give --text files or folders, or --task with --data-dir")

    def documents(self) -> Iterator[PretrainingText]:
        """Every document, files first (in sorted order), then each task's training side; streamed."""
        report = self.report_sentences()
        excluded = 0
        for text in self._all_documents():
            if report and not report.isdisjoint(sentence_digests(text.text)):
                excluded += 1
                continue
            yield text
        self.excluded = excluded

    def _all_documents(self) -> Iterator[PretrainingText]:
        for root, file, kind in self.files:
            yield from _read_file(root, file, kind, self.text_column)
        seen: set[str] = set()
        for name, splits in self.tasks.items():
            loaded = load_task(name, self.data_dir, splits=list(splits))
            for split in splits:
                for document in loaded[split]:
                    digest = hashlib.sha256(document.text.encode()).hexdigest()
                    if digest not in seen:
                        seen.add(digest)
                        yield PretrainingText(f"{name}/{split}/{document.id}", document.text)

    def report_sentences(self) -> set[str]:
        """The sentence digests of every ``decontaminate`` task's report split (read once)."""
        if self._report_sentences is None:
            self._report_sentences = set()
            for name in self.decontaminate:
                task = get_task(name)
                for document in load_task(name, self.data_dir, splits=[task.report_split])[task.report_split]:
                    self._report_sentences |= sentence_digests(document.text)
        return self._report_sentences

    def fingerprint(self) -> dict:
        """What identifies the corpus cheaply (file names and sizes, tasks and splits), for resuming."""
        listing = "\n".join(f"{file.relative_to(root).as_posix()}\t{file.stat().st_size}" for root, file, _ in self.files)
        return {
            "files": len(self.files),
            "files_sha256": hashlib.sha256(listing.encode()).hexdigest(),
            "tasks": {name: list(splits) for name, splits in self.tasks.items()},
            "text_column": self.text_column,
            "decontaminated_against": self.decontaminate,
        }

    def description(self) -> list[str]:
        """The sources as a card says them: kinds and counts of files, task names and splits (no paths)."""
        kinds: dict[str, int] = {}
        for _, _, kind in self.files:
            kinds[kind] = kinds.get(kind, 0) + 1
        lines = [f"{n} {kind} file{'s' if n > 1 else ''}" for kind, n in sorted(kinds.items())]
        lines += [f"{name}: {', '.join(splits)} (training side)" for name, splits in self.tasks.items()]
        if self.decontaminate:
            lines.append(f"documents sharing a sentence with the report split of {', '.join(self.decontaminate)} left out")
        return lines


OVERLAP_MIN_CHARACTERS = 40
"""Sentences this long or longer are compared for overlap; shorter ones are often stock phrases."""
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n")


def sentence_digests(text: str) -> set[str]:
    """Digests of the sentences of ``text`` of 40 characters or more (spaces collapsed, lower case).

    >>> len(sentence_digests("Corto. Paciente de 45 años con dolor abdominal y fiebre de 38 grados."))
    1
    """
    sentences = (" ".join(s.split()).lower() for s in _SENTENCE_BREAK.split(text))
    return {hashlib.sha1(s.encode()).hexdigest()[:16] for s in sentences if len(s) >= OVERLAP_MIN_CHARACTERS}


def _training_splits(task_name: str, splits: Sequence[str] | None) -> tuple[str, ...]:
    if task_name not in task_names():
        raise TrainingSetupError(f"unknown task {task_name!r}; known tasks: {', '.join(task_names())}")
    task = get_task(task_name)
    training = tuple(s for s in task.train_splits if s != task.report_split)
    wanted = tuple(splits) if splits else training
    for split in wanted:
        if split == task.report_split:
            raise TrainingSetupError(
                f"split {split!r} is {task_name}'s report split (PROTOCOL.md): pre-training on it would leak into"
                f" every figure reported on it; its training side is {', '.join(training)}"
            )
        if split not in training:
            raise TrainingSetupError(f"split {split!r} is not on {task_name}'s training side ({', '.join(training)})")
    return wanted


def refuse_report_split_path(path: Path) -> None:
    """Refuse a ``--text`` path that is, holds or lies inside a known task's report split.

    The corpus layouts are looked for at ``path`` and a few folders above it; a MEDDOPROF training
    folder holds its 300 held-out report documents, so it is refused too (use ``--task``).
    """
    if not path.exists():
        raise CorpusFormatError("no such file or folder", path)
    resolved = path.resolve()
    for name in task_names():
        task = get_task(name)
        if any("**" in p for patterns in task.splits.values() for p in patterns):
            continue  # a recursive layout would search whole file systems from an ancestor
        for ancestor in [resolved, *list(resolved.parents)[:4]]:
            try:
                _, layout = locate_splits(task, ancestor)
            except CorpusFormatError:
                continue
            for report in layout.get(task.report_split, []):
                report = report.resolve()
                if resolved == report or resolved.is_relative_to(report) or report.is_relative_to(resolved):
                    raise TrainingSetupError(
                        f"{path} holds or lies inside {name}'s report split ({task.report_split}, PROTOCOL.md):"
                        f" never pre-trained on; pass --task {name} --data-dir DIR for its training side"
                    )


def _text_files(path: Path) -> list[tuple[Path, Path, str]]:
    """``(root, file, kind)`` of each readable file at ``path`` (a file, or a folder searched recursively)."""
    if not path.exists():
        raise CorpusFormatError("no such file or folder", path)
    if path.is_file():
        if path.suffix not in TEXT_SUFFIXES:
            raise CorpusFormatError(f"not a pre-training text file (expected {', '.join(TEXT_SUFFIXES)})", path)
        return [(path.parent, path, TEXT_SUFFIXES[path.suffix])]
    files = sorted(f for f in path.rglob("*") if f.suffix in TEXT_SUFFIXES and f.is_file())
    if not files:
        raise CorpusFormatError(f"no {', '.join(TEXT_SUFFIXES)} files here (sub-folders included)", path)
    return [(path, f, TEXT_SUFFIXES[f.suffix]) for f in files]


def _read_file(root: Path, file: Path, kind: str, column: str) -> Iterator[PretrainingText]:
    name = file.relative_to(root).as_posix()
    if kind == "txt":
        yield PretrainingText(name, read_text(file))
    elif kind == "jsonl":
        with file.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as error:
                    raise CorpusFormatError(f"not valid JSON ({error.msg})", file, number) from None
                yield PretrainingText(f"{name}:{number}", _text_field(record, column, file, number))
    else:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(file)
        if column not in parquet.schema_arrow.names:
            raise CorpusFormatError(f"no column {column!r} (columns: {', '.join(parquet.schema_arrow.names)})", file)
        row = 0
        for batch in parquet.iter_batches(columns=[column], batch_size=256):
            for value in batch.column(0).to_pylist():
                row += 1
                yield PretrainingText(f"{name}:{row}", _text_field({column: value}, column, file, row, "row"))


def _text_field(record, column: str, file: Path, number: int, unit: str = "line") -> str:
    # Field names and types only: the value itself may be patient text.
    if not isinstance(record, dict) or column not in record:
        fields = ", ".join(record) if isinstance(record, dict) else type(record).__name__
        raise CorpusFormatError(f"{unit} {number} has no {column!r} field (has: {fields}); see --text-column", file)
    if not isinstance(record[column], str):
        raise CorpusFormatError(f"{unit} {number}: {column!r} is {type(record[column]).__name__}, not text", file)
    return record[column]
