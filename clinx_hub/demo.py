"""The Gradio demo: paste or upload clinical notes and see the spans a CLIN-X model finds.

One Blocks app serves the Hugging Face Space (``spaces/clinx-demo/app.py``) and ``clinx demo``.
Models are local folders or Hub ids (a single model or an ensemble folder); the default is the
one ``clinx quickstart`` writes, so the demo runs offline on a fresh machine.

Privacy: input text is never logged or written anywhere by this module. It lives in memory for
the request (and, until the browser tab closes or ``STATE_SECONDS`` pass, in the session's
state so that downloads can be prepared); files are written only when the user asks for a
download. Uploads and downloads live in one folder of this process (``private_cache``: mode
0700, files 0600, under ``$GRADIO_TEMP_DIR`` or the system's temporary folder), which Gradio
sweeps on a schedule and which is deleted when the process ends: at Ctrl-C, SIGTERM, SIGHUP or a
normal exit (``run_until_stopped``). The app serves no path beyond it (``allowed_paths=[]``),
uploads are read only from Gradio's copies of them, and a failed request is logged as its error
class and a request id only (``guarded``), never with a traceback, a file name or text.

Fairness: extraction requests wait in two lanes (``ExtractionLanes``), so that a short note
never waits behind long ones.
"""

from __future__ import annotations

import atexit
import colorsys
import functools
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
import uuid
import zipfile
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .documents import Document
from .ensemble import ClinXEnsemble, Extractor, load_extractor
from .folders import TRAINING_RECORD, is_model_folder
from .outputs import DEID_TASKS, SPAN_FIELDS, deidentify, highlighted, jsonl_lines, span_records
from .quickstart import DEFAULT_OUT

DEFAULT_MODEL = str(DEFAULT_OUT / "model")
"""Where ``clinx quickstart`` puts its ensemble: the model the demo opens when given none."""
MODELS_ENV = "CLINX_DEMO_MODELS"
"""Comma-separated local folders or Hub ids, when ``build_demo`` is given no models."""
MAX_CHARS_ENV = "CLINX_DEMO_MAX_CHARS"
DEFAULT_MAX_CHARS = 200_000
"""Characters per request (pasted text and all uploads together); larger inputs get a message."""
SHORT_CHARS_ENV = "CLINX_DEMO_SHORT_CHARS"
DEFAULT_SHORT_CHARS = 5_000
"""Requests of at most this many characters (about two pages) take the short lane; 0 turns lanes off."""
STATE_SECONDS = 900
"""How long a session keeps its last result in memory for downloads."""
CACHE_SWEEP = (60, 600)
"""Gradio deletes the app's cached files (uploads, downloads) older than 600 s, every 60 s."""
TABLE_COLUMNS = ["document", *SPAN_FIELDS]
"""The document's id, then the one span record of every clinx_hub output (``outputs.span_records``)."""
PRIVACY_NOTE = (
    "**Privacy.** Use invented or de-identified text only. This demo does not log or store what you "
    "submit: text stays in memory while it is processed; uploaded files, and downloads when you ask for "
    "them, sit in a temporary folder no other user of the server can open, deleted within minutes and when "
    "the app stops."
)

log = logging.getLogger(__name__)

# Label words of the de-identification corpora (MEDDOCAN, i2b2 2006/2014): a model whose labels
# are mostly these finds personal data, and its spans are what de-identification masks.
_PHI_WORDS = frozenset(
    """NOMBRE NAME PATIENT DOCTOR USERNAME EDAD AGE FECHA FECHAS DATE HOSPITAL CENTRO SALUD
    INSTITUCION ORGANIZATION CALLE STREET TERRITORIO PAIS LOCATION CITY STATE COUNTRY ZIP ID
    IDNUM IDENTIF MEDICALRECORD NUMERO TELEFONO PHONE FAX CORREO ELECTRONICO EMAIL URL WEB
    SUJETO ASISTENCIA FAMILIARES CONTACT""".split()
)


class DemoInputError(ValueError):
    """An input the demo refuses, with the reason to show the user."""


@dataclass
class DemoModel:
    """An opened model with what the page shows about it."""

    name: str
    extractor: Extractor | ClinXEnsemble
    entity_types: list[str]
    task: str | None
    members: int

    @property
    def deidentification(self) -> bool:
        return is_deidentification(self.task, self.entity_types)


def is_deidentification(task: str | None, entity_types: Sequence[str]) -> bool:
    """Whether a model's spans are personal data: a de-identification task, or PHI-like labels.

    >>> is_deidentification("brat", ["NOMBRE_SUJETO_ASISTENCIA", "FECHAS", "HOSPITAL"])
    True
    >>> is_deidentification("cantemist", ["MORFOLOGIA_NEOPLASIA"])
    False
    """
    if task in DEID_TASKS:
        return True
    from .corpora import task_names

    if task in task_names() and task != "brat":
        return False
    phi = [t for t in entity_types if _PHI_WORDS & set(re.split(r"[_\-\s]+", t.upper()))]
    return bool(entity_types) and 2 * len(phi) >= len(entity_types)


def parse_models(spec: str | Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """Dropdown name -> local folder or Hub id; ``None`` reads ``$CLINX_DEMO_MODELS``, then the default.

    >>> parse_models("runs/a, org/model")
    {'runs/a': 'runs/a', 'org/model': 'org/model'}
    """
    if spec is None:
        spec = os.environ.get(MODELS_ENV) or [DEFAULT_MODEL]
    if isinstance(spec, Mapping):
        return {str(k): str(v) for k, v in spec.items()}
    if isinstance(spec, str):
        spec = spec.split(",")
    return {item.strip(): item.strip() for item in spec if item.strip()}


def color_map(entity_types: Sequence[str]) -> dict[str, str]:
    """One light colour per label, evenly spread around the hue circle (stable for a label set).

    >>> color_map(["A", "B"])
    {'A': '#f5a3a3', 'B': '#a3f5f5'}
    """
    n = max(len(entity_types), 1)
    colors = {}
    for i, label in enumerate(entity_types):
        r, g, b = colorsys.hls_to_rgb(i / n, 0.8, 0.8)
        colors[label] = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
    return colors


def no_model_message(models: Mapping[str, str]) -> str:
    tried = ", ".join(f"`{v}`" for v in models.values()) or "none"
    return (
        f"**No model found** (tried {tried}). Train the small demo model first with "
        "`.venv/bin/clinx quickstart` (a few minutes, no network, invented notes), or start the demo "
        f"with `clinx demo --model PATH_OR_HUB_ID` or `{MODELS_ENV}=PATH_OR_HUB_ID,...`."
    )


class ModelShelf:
    """Opens each model once, on first use, and shares it between requests (inference is read-only)."""

    def __init__(self, models: Mapping[str, str], *, device: str | None = None, dtype: str | None = None):
        self.models = dict(models)
        self.device, self.dtype = device, dtype  # where and in which precision models open (devices.py)
        self._open: dict[str, DemoModel] = {}
        self._lock = threading.Lock()

    def available(self) -> list[str]:
        """Names worth offering: local model folders that exist, and every Hub id."""
        return [name for name, source in self.models.items() if _looks_local(source) is not False]

    def get(self, name: str) -> DemoModel:
        if name not in self.models:  # the dropdown is the only way in: never a path from the client
            raise DemoInputError(f"unknown model {name!r}")
        with self._lock:
            if name not in self._open:
                self._open[name] = _open_model(name, self.models[name], device=self.device, dtype=self.dtype)
            return self._open[name]


def _looks_local(source: str) -> bool | None:
    """True for a model folder, False for a folder-like path that is not one, None for a Hub id."""
    path = Path(source).expanduser()
    if is_model_folder(path):
        return True
    if path.exists() or source.startswith((".", "/", "~")) or source.count("/") != 1:
        return False
    return None


def _open_model(name: str, source: str, *, device: str | None = None, dtype: str | None = None) -> DemoModel:
    from .folders import ModelNotAvailable
    from .hub import available_model

    folder = Path(source).expanduser()
    if _looks_local(source) is not True:
        if _looks_local(source) is False:
            raise DemoInputError(f"{source} is not a model folder")
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(available_model(source)))
        except ModelNotAvailable as err:
            raise DemoInputError(str(err)) from None
    try:
        extractor = load_extractor(folder, device=device, dtype=dtype)
    except ModelNotAvailable as err:  # ModelFolderError too: a folder that is not a (safe) clinx model
        raise DemoInputError(str(err)) from None
    record_file = folder / TRAINING_RECORD
    task = json.loads(record_file.read_text()).get("task") if record_file.is_file() else None
    return DemoModel(name, extractor, extractor.entity_types, task, len(extractor.members))


def _clean_id(name: str, taken: set[str]) -> str:
    stem = re.sub(r"[^\w.\-]+", "_", Path(name).stem).strip("._") or "note"
    doc_id, n = stem, 1
    while doc_id in taken:
        n += 1
        doc_id = f"{stem}-{n}"
    taken.add(doc_id)
    return doc_id


def read_inputs(text: str | None, files: Sequence[str] | None, *, upload_dir: str | Path, max_chars: int) -> list[Document]:
    """The pasted text (as ``note``) and each uploaded ``.txt`` file, within ``max_chars`` in all.

    Uploads are read only from inside ``upload_dir`` (Gradio's cache), whatever path arrives, and
    are made private to this user (0600, their folders 0700) before they are read.
    """
    from .formats.base import CorpusFormatError, read_text

    documents: list[Document] = []
    taken: set[str] = set()
    total = 0

    too_long = DemoInputError(
        f"The input is too long: over {max_chars:,} characters in all. Split it into smaller "
        "parts, or run `clinx predict` on your own machine for long documents."
    )

    def add(name: str, content: str) -> None:
        nonlocal total
        total += len(content)
        if total > max_chars:
            raise too_long
        documents.append(Document(_clean_id(name, taken), content))

    if text and text.strip():
        add("note", text)
    root = Path(upload_dir).resolve()
    for item in files or []:
        path = Path(item).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise DemoInputError("uploads are read from the app's upload folder only")
        if path.suffix.lower() != ".txt":
            raise DemoInputError(f"{path.name}: only .txt files are accepted")
        _make_private(path, root)
        if path.stat().st_size > 4 * max_chars:  # UTF-8 needs at most 4 bytes a character
            raise too_long
        try:
            add(path.name, read_text(path))
        except CorpusFormatError as err:  # its message holds the cache path: give the reason only
            where = f", line {err.line}" if err.line else ""
            raise DemoInputError(f"{path.name}{where}: {err.reason}") from None
    if not documents:
        raise DemoInputError("Paste a note or upload .txt files first.")
    return documents


def result_views(documents: Sequence[Document], deidentification: bool, mode: str) -> tuple[list, list[list], str]:
    """Highlight pieces, table rows and de-identified text of documents carrying predicted spans.

    Several documents are shown one after another, each under a ``── id ──`` line.
    """
    pieces: list[tuple[str, str | None]] = []
    rows: list[list] = []
    deid: list[str] = []
    for i, document in enumerate(documents):
        header = ""
        if len(documents) > 1:
            header = ("\n\n" if i else "") + f"── {document.id} ──\n"
        if header:
            pieces.append((header, None))
        pieces += highlighted(document.text, document.spans)
        for record in span_records(document.spans):
            if record["score"] is not None:
                record["score"] = round(record["score"], 3)
            rows.append([document.id, *(record[field] for field in SPAN_FIELDS)])
        if deidentification:
            deid.append(header + deidentify(document.text, document.spans, mode=mode))
    return pieces, rows, "".join(deid)


def write_downloads(documents: Sequence[Document], folder: Path) -> tuple[str, str]:
    """``predictions.jsonl`` and ``brat.zip`` (a ``.txt`` + ``.ann`` per document) in ``folder``."""
    from .formats.brat import format_ann

    _private_folder(folder)
    jsonl = folder / "predictions.jsonl"
    lines = jsonl_lines([d.id for d in documents], [d.spans for d in documents])
    with _private_file(jsonl) as out:
        out.write("".join(line + "\n" for line in lines).encode("utf-8"))
    brat = folder / "brat.zip"
    with _private_file(brat) as out, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for document in documents:
            archive.writestr(f"{document.id}.txt", document.text)
            archive.writestr(f"{document.id}.ann", format_ann(document))
    return str(jsonl), str(brat)


def _private_folder(folder: Path) -> None:
    """``folder`` and any missing parents, mode 0700 (``mkdir(parents=True)`` gives parents 0755)."""
    if not folder.is_dir():
        _private_folder(folder.parent)
        folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)


@contextmanager
def _private_file(path: Path) -> Iterator:
    """``path`` opened for binary writing, created 0600 (never readable by others, even for a moment)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        os.fchmod(out.fileno(), 0o600)  # an older file of that name keeps its mode through O_TRUNC
        yield out


def _make_private(path: Path, root: Path) -> None:
    """Mode 0600 for ``path`` and 0700 for its folders up to ``root`` (Gradio makes an upload's folder 0755)."""
    os.chmod(path, 0o600)
    for folder in path.parents:
        if not folder.is_relative_to(root) or folder == root:
            break
        os.chmod(folder, 0o700)


CACHE_PREFIX = "clinx-demo-"
_cache: dict[str, Path] = {}  # "folder": this process's private cache, "parent": where it was made


def private_cache() -> Path:
    """This process's folder for uploads and downloads: made once (mode 0700), deleted at exit.

    Gradio is pointed at it through ``$GRADIO_TEMP_DIR`` (it reads the variable when components are
    made and at each request), so that every copy Gradio makes lies inside a folder no other local
    user can open, instead of in the world-readable ``/tmp/gradio`` that all Gradio apps share. The
    folder is made under the ``$GRADIO_TEMP_DIR`` that was set before, or the system's temporary folder.

    >>> oct(private_cache().stat().st_mode & 0o777)  # doctest: +SKIP
    '0o700'
    """
    folder = _cache.get("folder")
    if folder is None or not folder.is_dir():
        parent = _cache.setdefault("parent", Path(os.environ.get("GRADIO_TEMP_DIR") or tempfile.gettempdir()))
        parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{CACHE_PREFIX}{os.getpid()}-", dir=parent))  # 0700
        if "folder" not in _cache:
            atexit.register(remove_private_cache)
        _cache["folder"] = folder
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    return folder


def remove_private_cache() -> None:
    """Delete this process's upload and download folder with everything in it."""
    folder = _cache.get("folder")
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


class ExtractionLanes:
    """Extraction slots shared so that a short note never waits behind long ones.

    At most ``slots`` requests extract at once. A request of more than ``short_chars`` characters
    takes the long lane, and long requests hold at most ``slots - 1`` slots: one is always there
    for short notes. While a long request waits, short ones hold at most ``slots - 1`` as well, so
    a stream of short notes cannot starve the long lane either. First come, first served within a
    lane. ``short_chars=0`` or a single slot turns lanes off: one first-come-first-served line.
    At most ``max_waiting`` requests wait; one more is refused (``DemoInputError``).

    Gradio's queue cannot do this itself: a concurrency group belongs to an event, not to an input,
    so every extraction would stand in one line; the event is left unlimited and waits here.
    Splitting long notes into pieces that queue one by one was the other way, but predicting
    pieces apart changes spans near each cut (windows and the CRF's path cross it).

    >>> lanes = ExtractionLanes(slots=2, short_chars=5_000)
    >>> lanes.lane(1_000), lanes.lane(200_000)
    ('short', 'long')
    >>> with lanes.slot(200_000) as lane:
    ...     lanes.running()
    {'short': 0, 'long': 1}
    """

    def __init__(self, slots: int, short_chars: int, *, max_waiting: int = 64):
        if slots < 1:
            raise ValueError("an extraction needs at least one slot")
        self.slots = slots
        self.short_chars = short_chars if slots > 1 else 0
        self.max_waiting = max_waiting
        self._changed = threading.Condition()
        self._running = {"short": 0, "long": 0}
        self._waiting: dict[str, deque[object]] = {"short": deque(), "long": deque()}

    @property
    def capacity(self) -> int:
        """Requests in the lanes at most, running or waiting."""
        return self.slots + self.max_waiting

    def lane(self, chars: int) -> str:
        """``"short"`` or ``"long"``: which lane a request of ``chars`` characters takes."""
        return "short" if chars <= self.short_chars else "long"

    def running(self) -> dict[str, int]:
        with self._changed:
            return dict(self._running)

    def _may_start(self, lane: str, ticket: object) -> bool:
        if self._waiting[lane][0] is not ticket or sum(self._running.values()) >= self.slots:
            return False
        if not self.short_chars:
            return True
        other = "short" if lane == "long" else "long"
        if lane == "long" or self._waiting[other]:
            return self._running[lane] < self.slots - 1
        return True

    @contextmanager
    def slot(self, chars: int) -> Iterator[str]:
        """Wait for a slot in the lane of a ``chars``-character request; hold it inside the block."""
        lane = self.lane(chars)
        ticket = object()
        with self._changed:
            if sum(map(len, self._waiting.values())) >= self.max_waiting:
                raise DemoInputError("The demo is busy: too many requests are waiting. Try again in a minute.")
            self._waiting[lane].append(ticket)
            try:
                self._changed.wait_for(lambda: self._may_start(lane, ticket))
                self._running[lane] += 1
            finally:
                self._waiting[lane].remove(ticket)
                self._changed.notify_all()  # the next in this lane is now first in it
        try:
            yield lane
        finally:
            with self._changed:
                self._running[lane] -= 1
                self._changed.notify_all()


def guarded(handler: Callable) -> Callable:
    """``handler`` for a Gradio event, with errors that leak nothing to the log or the page.

    A refused input (``DemoInputError``) shows its message to the user and is not logged. Any other
    error is logged as its class and a request id only: no traceback (it holds cache paths, uploaded
    file names and sometimes text), no message; the user sees the same request id.
    """
    import gradio as gr

    @functools.wraps(handler)
    def run(*args):
        try:
            return handler(*args)
        except DemoInputError as err:
            raise gr.Error(str(err), print_exception=False) from None
        except gr.Error as err:
            err.print_exception = False
            raise
        except Exception as err:  # every other failure: reported without its content
            request = uuid.uuid4().hex[:12]
            kind = type(err)
            name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
            log.error("request %s failed: %s", request, name)
            raise gr.Error(
                f"Something went wrong (request {request}). Try again, or report the request id to "
                "whoever runs this demo.", print_exception=False,
            ) from None

    return run


def _model_markdown(model: DemoModel) -> str:
    kind = f"an ensemble of {model.members}" if model.members > 1 else "a single model"
    deid = "de-identification (personal data)" if model.deidentification else "concept extraction"
    task = f", task `{model.task}`" if model.task else ""
    return f"`{model.name}`: {kind}{task}, {deid}; {len(model.entity_types)} labels: " + ", ".join(
        f"`{t}`" for t in model.entity_types
    )


def build_demo(
    model_paths: Mapping[str, str] | Sequence[str] | str | None = None,
    *,
    max_chars: int | None = None,
    concurrency_limit: int = 2,
    max_queue: int = 64,
    short_chars: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
):
    """The demo as a ``gr.Blocks``; serve it with ``run_until_stopped(demo)``.

    Args:
        model_paths: dropdown name -> local folder or Hub id (or a list, or a comma-separated
            string); ``None`` reads ``$CLINX_DEMO_MODELS``, then ``runs/quickstart/model``.
        max_chars: characters per request (default ``$CLINX_DEMO_MAX_CHARS`` or 200,000).
        concurrency_limit: extractions run at once; the others wait, at most ``max_queue`` of them,
            in the lanes of ``ExtractionLanes``.
        short_chars: requests up to this many characters take the short lane (default
            ``$CLINX_DEMO_SHORT_CHARS`` or 5,000; 0: one first-come-first-served line).
        device, dtype: where and in which precision each model opens (``load_extractor``; None: the CPU, fp32).

    >>> demo = build_demo(["runs/quickstart/model"])  # doctest: +SKIP
    >>> run_until_stopped(demo, server_port=7861)  # doctest: +SKIP
    """
    import gradio as gr

    from .synthetic import example_notes

    private_cache()  # before any component: each reads Gradio's cache folder when it is made
    shelf = ModelShelf(parse_models(model_paths), device=device, dtype=dtype)
    max_chars = max_chars or int(os.environ.get(MAX_CHARS_ENV, DEFAULT_MAX_CHARS))
    if short_chars is None:
        short_chars = int(os.environ.get(SHORT_CHARS_ENV, DEFAULT_SHORT_CHARS))
    lanes = ExtractionLanes(concurrency_limit, short_chars, max_waiting=max_queue)
    names = shelf.available()

    @guarded
    def describe(name: str | None):
        if not name:
            return no_model_message(shelf.models), gr.HighlightedText(value=None)
        try:
            model = shelf.get(name)
        except DemoInputError as err:
            return f"**{err}**", gr.HighlightedText(value=None)
        return _model_markdown(model), gr.HighlightedText(value=None, color_map=color_map(model.entity_types))

    @guarded
    def extract(name: str | None, text: str | None, files: list[str] | None, mode: str):
        if not name:
            raise DemoInputError(no_model_message(shelf.models).replace("**", ""))
        model = shelf.get(name)
        documents = read_inputs(text, files, upload_dir=demo.GRADIO_CACHE, max_chars=max_chars)
        with lanes.slot(sum(len(d.text) for d in documents)):
            predictions = model.extractor.predict(documents)
        documents = [d.with_spans(p) for d, p in zip(documents, predictions)]
        pieces, rows, deid = result_views(documents, model.deidentification, mode)
        n = len(rows)
        status = f"{n} span{'s' if n != 1 else ''} in {len(documents)} document{'s' if len(documents) != 1 else ''}."
        result = {"documents": documents, "deidentification": model.deidentification}
        return (
            status,
            gr.HighlightedText(value=pieces, color_map=color_map(model.entity_types)),
            rows,
            gr.Textbox(value=deid, visible=model.deidentification),
            gr.Radio(visible=model.deidentification),
            result,
            None,
        )

    @guarded
    def redo_deid(result: dict | None, mode: str) -> str:
        if not result or not result["deidentification"]:
            return ""
        return result_views(result["documents"], True, mode)[2]

    @guarded
    def downloads(result: dict | None) -> list[str]:
        if not result:
            raise DemoInputError("Extract spans first; the downloads hold the last result.")
        folder = Path(demo.GRADIO_CACHE) / "clinx-demo" / uuid.uuid4().hex
        return list(write_downloads(result["documents"], folder))

    examples = [[note] for language in ("es", "en") for note in example_notes(language)]
    with gr.Blocks(title="CLIN-X clinical concept extraction", analytics_enabled=False, delete_cache=CACHE_SWEEP) as demo:
        gr.Markdown(
            "# CLIN-X clinical concept extraction\n"
            "Encoder + CRF span extraction the CLIN-X way (Lange et al., 2022) with "
            "[clinx_hub](https://github.com/clinx-hub/clinx_hub). Paste a note or upload `.txt` files."
        )
        with gr.Row():
            model_box = gr.Dropdown(names, value=names[0] if names else None, label="Model", scale=1)
            info = gr.Markdown(no_model_message(shelf.models) if not names else "", label="model", elem_id="model-info")
        with gr.Row():
            with gr.Column():
                text_box = gr.Textbox(label="Clinical note", lines=10, max_lines=20, elem_id="note",
                                      placeholder="Paste invented or de-identified text here")
                files_box = gr.File(label=".txt files", file_count="multiple", file_types=[".txt"], type="filepath")
                run = gr.Button("Extract", variant="primary", elem_id="extract")
                gr.Examples(examples, inputs=[text_box], label="Invented example notes (Spanish and English)")
            with gr.Column():
                status = gr.Markdown(label="status", elem_id="status")
                spans_view = gr.HighlightedText(label="Spans", show_legend=True, combine_adjacent=False, elem_id="spans")
                mode_box = gr.Radio(["label", "surrogate"], value="label", label="De-identification", visible=False)
                deid_box = gr.Textbox(label="De-identified text", lines=8, visible=False, buttons=["copy"], elem_id="deid")
        table = gr.Dataframe(headers=TABLE_COLUMNS, label="Spans as a table", interactive=False, elem_id="table",
                             wrap=True)
        with gr.Row():
            prepare = gr.Button("Prepare downloads (JSON lines, BRAT .zip)")
            files_out = gr.File(label="Downloads", file_count="multiple", interactive=False)
        gr.Markdown(PRIVACY_NOTE + f" Inputs are limited to {max_chars:,} characters per request.")
        result = gr.State(time_to_live=STATE_SECONDS)

        demo.load(describe, [model_box], [info, spans_view], api_name="describe")
        model_box.change(describe, [model_box], [info, spans_view], api_name=False)
        run.click(  # no limit here: requests wait in the lanes, where short ones pass long ones
            extract, [model_box, text_box, files_box, mode_box],
            [status, spans_view, table, deid_box, mode_box, result, files_out], api_name="extract",
            concurrency_limit=None,
        )
        mode_box.change(redo_deid, [result, mode_box], [deid_box], api_name=False)
        prepare.click(downloads, [result], [files_out], api_name="downloads")
    demo.queue(default_concurrency_limit=concurrency_limit, max_size=max_queue)
    demo.clinx_shelf = shelf  # for launch_settings and warm_up
    demo.clinx_max_chars = max_chars
    demo.clinx_lanes = lanes
    return demo


def launch_settings(demo=None, **overrides) -> dict:
    """``launch()`` arguments that keep the demo private: nothing served beyond Gradio's cache,
    no browser-side run history of inputs, no monitoring endpoint, small uploads.

    >>> launch_settings(server_port=7861)["allowed_paths"]
    []
    """
    blocked, max_chars, in_lanes = [], DEFAULT_MAX_CHARS, ExtractionLanes(2, DEFAULT_SHORT_CHARS).capacity
    if demo is not None:  # model files are never served, even if a path to them leaks
        blocked = [str(Path(s).expanduser().resolve()) for s in demo.clinx_shelf.models.values() if _looks_local(s)]
        max_chars, in_lanes = demo.clinx_max_chars, demo.clinx_lanes.capacity
    settings = dict(
        allowed_paths=[],
        blocked_paths=blocked,
        run_history=False,
        enable_monitoring=False,
        max_file_size=4 * max_chars + 1024,  # a file of max_chars characters, whatever their UTF-8 width
        footer_links=["api", "gradio"],
        show_error=True,
        # Gradio runs at most max_threads events at once (40 by default): one for each request the
        # lanes can hold, and some for the page's other events, so that none waits in Gradio's line.
        max_threads=in_lanes + 16,
    )
    settings.update(overrides)
    return settings


def warm_up(demo, name: str | None = None) -> DemoModel:
    """Open a model (the first one by default) before serving, so the first request is quick."""
    shelf: ModelShelf = demo.clinx_shelf
    names = shelf.available()
    if not names:
        raise DemoInputError(no_model_message(shelf.models))
    return shelf.get(name or names[0])


def run_until_stopped(demo, **overrides) -> None:
    """Serve ``demo`` until Ctrl-C, SIGTERM or SIGHUP; then close it and delete its uploads and downloads.

    Python ends at SIGTERM without running ``atexit`` or ``finally``: here the signal stops the
    server as Ctrl-C does, and the private cache goes whichever way the app stops.

    >>> run_until_stopped(build_demo(), server_port=7861)  # doctest: +SKIP
    """

    def stop(signum, frame):
        raise KeyboardInterrupt  # what Gradio's launch() waits for to close its server

    previous = {}
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, stop)
    try:
        demo.launch(**launch_settings(demo, **overrides))
    except KeyboardInterrupt:  # a signal that came before launch() was waiting for it
        pass
    finally:
        for signum in previous:  # a second signal must not cut the clean-up short
            signal.signal(signum, signal.SIG_IGN)
        try:
            demo.close()
        finally:
            remove_private_cache()
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def serve(
    models: Sequence[str] | None = None, *, host: str = "127.0.0.1", port: int | None = None,
    device: str | None = None, dtype: str | None = None,
) -> None:
    """What ``clinx demo`` runs: build, warm up the first model, serve until stopped (models on ``device``, ``dtype``)."""
    demo = build_demo(list(models) if models else None, device=device, dtype=dtype)
    try:
        warm_up(demo)
    except DemoInputError as err:
        print(f"clinx demo: {err}".replace("**", "").replace("`", ""))
    run_until_stopped(demo, server_name=host, server_port=port)


__all__ = [
    "build_demo", "launch_settings", "run_until_stopped", "parse_models", "is_deidentification", "serve",
    "ExtractionLanes", "private_cache", "DEFAULT_MODEL",
]
