"""Predicted spans -> what people consume: records, JSON lines, Gradio highlights, de-identified text.

BRAT output is ``clinx_hub.formats.brat.write_brat`` on ``Document.with_spans``; where it may go
(never over an input, over earlier predictions only when asked) is ``prepare_output_folder``.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .documents import Span

DEID_TASKS = ("meddocan", "i2b2-2006", "i2b2-2014")
"""The de-identification tasks, whose models' spans are personal data to mask."""


PREDICTION_SUFFIXES = (".ann", ".jsonl")
"""Files of earlier predictions: a folder holding any is not written into unless asked (they would mix)."""


class OutputFolderError(ValueError):
    """A folder that predictions cannot or must not be written to; the message names the folder.

    >>> str(OutputFolderError("is the input folder", "notes"))
    'notes: is the input folder'
    """

    def __init__(self, message: str, path: str | Path) -> None:
        self.path = str(path)
        self.reason = message
        super().__init__(f"{path}: {message}")


def prepare_output_folder(
    out: Path, files: Sequence[Path], *, inputs: Sequence[Path] = (), overwrite: bool = False
) -> None:
    """Check that ``files`` may be written in ``out``, then create ``out`` and test-write in it.

    Called before any model is loaded, so a wrong or unwritable folder fails in a second, not
    after hours of inference. Raises ``OutputFolderError``.

    Args:
        files: every file the caller will write, inside ``out``.
        inputs: the files and folders that were read. None is ever written over (``overwrite``
            or not), and ``out`` may be neither an input folder nor inside one.
        overwrite: write even where ``out`` already holds ``.ann``/``.jsonl`` files or any of ``files``.

    >>> import tempfile; notes = Path(tempfile.mkdtemp()); out = notes.parent / (notes.name + "-pred")
    >>> prepare_output_folder(out, [out / "n1.ann"], inputs=[notes]); out.is_dir()
    True
    """
    if out.exists() and not out.is_dir():
        raise OutputFolderError("exists and is not a folder", out)
    target = out.resolve()
    folders = [p.resolve() for p in inputs if p.is_dir()]
    taken = {p.resolve() for p in inputs if not p.is_dir()}
    for folder in folders:
        if target == folder:
            raise OutputFolderError("is the input folder; predictions would replace its files", out)
        if target.is_relative_to(folder):
            # Inputs are read recursively: a second run would read these predictions as notes.
            raise OutputFolderError(f"lies inside the input folder {folder}; choose a folder outside it", out)
    for path in files:
        resolved = path.resolve()
        if resolved in taken or any(resolved.is_relative_to(folder) for folder in folders):
            raise OutputFolderError(f"writing here would replace the input {resolved}", out)
        if path.is_dir():
            raise OutputFolderError(f"holds a folder {path.relative_to(out)} where a file is to be written", out)
    if not overwrite and out.is_dir():
        earlier = sorted(p for p in out.rglob("*") if p.suffix in PREDICTION_SUFFIXES and p.is_file())
        earlier += sorted(p for p in files if p.is_file() and p.suffix not in PREDICTION_SUFFIXES)
        if earlier:
            first = earlier[0].relative_to(out)
            raise OutputFolderError(
                f"already holds {len(earlier)} earlier output file(s), e.g. {first}; "
                "choose an empty folder or pass --overwrite to write over them",
                out,
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise OutputFolderError(f"cannot write here ({err.strerror or type(err).__name__})", out) from None


def stale_outputs(out: Path, files: Sequence[Path]) -> list[Path]:
    """Earlier prediction files (``.ann``/``.jsonl``) in ``out`` that a run writing ``files`` does not replace.

    ``--overwrite`` writes over what it writes and deletes nothing (the folder may hold a person's own
    annotations), so these stay beside the new predictions: the commands name them.
    """
    if not out.is_dir():
        return []
    written = {path.resolve() for path in files}
    return sorted(p for p in out.rglob("*") if p.suffix in PREDICTION_SUFFIXES and p.is_file()
                  and p.resolve() not in written)


def warn_stale(out: Path, stale: Sequence[Path]) -> None:
    """One stderr line naming the earlier prediction files a run left beside its own (see ``stale_outputs``)."""
    if stale:
        import sys

        print(
            f"clinx: warning: {out} also holds {len(stale)} earlier prediction file(s) this run did not write,"
            f" e.g. {stale[0].relative_to(out)}; they were left as they were: remove them or use an empty"
            " folder so that they do not mix with these predictions",
            file=sys.stderr,
        )


SPAN_FIELDS = ("start", "end", "label", "text", "score")
"""The one span record of every output: JSON lines, the pipeline, the demo's table, parquet shards."""


def span_records(spans: Sequence[Span]) -> list[dict]:
    """Plain dictionaries (JSON-ready), one per span, with the keys of ``SPAN_FIELDS``.

    >>> span_records([Span(0, 4, "EDAD", "45 a", score=0.9)])
    [{'start': 0, 'end': 4, 'label': 'EDAD', 'text': '45 a', 'score': 0.9}]
    """
    return [{field: getattr(s, field) for field in SPAN_FIELDS} for s in spans]


def jsonl_lines(ids: Sequence[str], predictions: Sequence[Sequence[Span]]) -> list[str]:
    """One JSON line per document: ``{"id": ..., "spans": [...]}``.

    >>> jsonl_lines(["n1"], [[Span(0, 2, "X", "ab")]])
    ['{"id": "n1", "spans": [{"start": 0, "end": 2, "label": "X", "text": "ab", "score": null}]}']
    """
    return [
        json.dumps({"id": doc_id, "spans": span_records(spans)}, ensure_ascii=False)
        for doc_id, spans in zip(ids, predictions)
    ]


def highlighted(text: str, spans: Sequence[Span]) -> list[tuple[str, str | None]]:
    """The ``(text, label)`` pieces Gradio's ``HighlightedText`` shows; unlabelled text gets ``None``.

    >>> highlighted("Ana vive en Madrid.", [Span(0, 3, "NOMBRE"), Span(12, 18, "LUGAR")])
    [('Ana', 'NOMBRE'), (' vive en ', None), ('Madrid', 'LUGAR'), ('.', None)]
    """
    pieces: list[tuple[str, str | None]] = []
    cursor = 0
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if span.start < cursor:  # overlapping predictions (never from one CRF path): keep the first
            continue
        if span.start > cursor:
            pieces.append((text[cursor : span.start], None))
        pieces.append((text[span.start : span.end], span.label))
        cursor = span.end
    if cursor < len(text):
        pieces.append((text[cursor:], None))
    return pieces


# Invented replacement values: consistent per (label, surface) within one call.
_SURROGATES = {
    "name": ["Lucía Moreno Gil", "Pablo Serrano Díaz", "Marta Ibáñez Soler", "Jorge Vidal Peña", "Alba Ferrer Ruiz"],
    "date": ["03/02/2001", "17 de mayo de 2003", "11/11/2011", "2 de enero de 2005", "29/06/2009"],
    "age": ["41 años", "58 años", "33 años", "67 años", "25 años"],
    "place": ["Villanueva del Río", "Puerto Alto", "Valdemora", "San Julián de la Vega", "Montealegre"],
    "hospital": ["Hospital General de Valdemora", "Clínica Puerto Alto", "Hospital Comarcal del Río"],
    "street": ["Calle del Olmo 12", "Avenida de la Sierra 45", "Plaza Mayor 3"],
    "id": ["90817263", "AB-4471-Z", "55120934K", "7731-0042"],
    "email": ["persona@ejemplo.org", "contacto@ejemplo.net", "usuario@ejemplo.com"],
    "phone": ["600 111 222", "911 000 333", "622 444 555"],
    "url": ["https://ejemplo.org/ficha", "https://ejemplo.net/perfil"],
}
_KINDS = [
    ("email", r"CORREO|EMAIL"),
    ("url", r"URL|WEB|INTERNET"),
    ("phone", r"TELEF|PHONE|FAX"),
    ("hospital", r"HOSPITAL|CENTRO_SALUD|INSTITUCION|ORGANIZATION"),
    ("street", r"CALLE|STREET"),
    ("name", r"NOMBRE|NAME|PATIENT|DOCTOR|FAMILIAR"),
    ("age", r"EDAD|AGE"),
    ("date", r"FECHA|DATE"),
    ("place", r"TERRITORIO|PAIS|LOCATION|CITY|STATE|COUNTRY|ZIP"),
    ("id", r"ID|NUMERO|MEDICALRECORD|IDNUM|DEVICE|HEALTHPLAN|ACCOUNT|LICENSE|BIOID"),
]


def _surrogate(label: str, surface: str) -> str:
    kind = next((k for k, pattern in _KINDS if re.search(pattern, label.upper())), None)
    if kind is None:
        return f"[{label}]"
    values = _SURROGATES[kind]
    digest = hashlib.sha256(f"{label}\x00{surface.casefold()}".encode()).digest()
    return values[int.from_bytes(digest[:4], "big") % len(values)]


def deidentify(text: str, spans: Sequence[Span], *, mode: str = "label") -> str:
    """The text with each span replaced by ``[LABEL]`` or by a consistent invented surrogate.

    With ``mode="surrogate"`` the same surface string of the same label always gets the same
    replacement, so a name repeated in a note stays one (different) name.

    >>> deidentify("Ana vive en Madrid.", [Span(0, 3, "NOMBRE"), Span(12, 18, "TERRITORIO")])
    '[NOMBRE] vive en [TERRITORIO].'
    """
    if mode not in ("label", "surrogate"):
        raise ValueError(f"unknown de-identification mode {mode!r}; use 'label' or 'surrogate'")
    parts = []
    for piece, label in highlighted(text, spans):
        if label is None:
            parts.append(piece)
        else:
            parts.append(f"[{label}]" if mode == "label" else _surrogate(label, piece))
    return "".join(parts)
