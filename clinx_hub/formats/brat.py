"""BRAT standoff: the complete ``.ann`` line grammar, folder reading into Documents, and a writer.

Grammar (https://brat.nlplab.org/standoff.html), one annotation per line, fields separated by tabs:
``T`` text-bound (``T1<TAB>LABEL 0 5;9 12<TAB>text``, ``;`` separates discontinuous fragments),
``#`` notes, ``A``/``M`` attributes, ``R`` relations, ``E`` events, ``N`` normalisations and
``*`` equivalences. Ids are local to a file; where ids leave their file (datasets, stats) they
are prefixed with the document id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from clinx_hub.documents import Document, Finding, Span
from clinx_hub.formats.base import (
    CRLF_NORMALISED,
    CorpusFormatError,
    mismatch_finding,
    one_line,
    read_text,
    span_matches,
    write_text_atomic,
)
from clinx_hub.sentences import split_sentences

_ID = r"[A-Za-z0-9_.\-]+"
# Offsets are ASCII digits only: "\d" and int() also take other scripts' digits (Arabic-Indic "\u0669" is 9),
# which no BRAT tool or scorer writes or reads.
_OFFSETS = r"[0-9]+ [0-9]+(?:;[0-9]+ [0-9]+)*"
_T = re.compile(rf"(T{_ID})\t(\S+) ({_OFFSETS})\t(.*)")
_NOTE = re.compile(rf"(#{_ID})\t(\S+) ({_ID})(?:\t(.*))?")
_ATTRIBUTE = re.compile(rf"([AM]{_ID})\t(\S+) ({_ID})(?: (\S+))?")
_RELATION = re.compile(rf"(R{_ID})\t(\S+) (\S+):({_ID}) (\S+):({_ID})")
_EVENT = re.compile(rf"(E{_ID})\t(\S+):({_ID})((?: \S+:{_ID})*) ?")
_NORMALISATION = re.compile(rf"(N{_ID})\t(\S+) ({_ID}) ([^\s:]+):(\S+)(?:\t(.*))?")
_EQUIVALENCE = re.compile(rf"\*\t(\S+)((?: {_ID})+)")


@dataclass(frozen=True)
class BratEntity:
    id: str
    label: str
    fragments: tuple[tuple[int, int], ...]
    text: str
    line: int


@dataclass(frozen=True)
class BratNote:
    id: str
    kind: str
    target: str
    note: str
    line: int


@dataclass(frozen=True)
class BratAttribute:
    id: str
    name: str
    target: str
    value: str | None
    line: int


@dataclass(frozen=True)
class BratRelation:
    id: str
    label: str
    arguments: tuple[tuple[str, str], ...]
    line: int


@dataclass(frozen=True)
class BratEvent:
    id: str
    label: str
    trigger: str
    arguments: tuple[tuple[str, str], ...]
    line: int


@dataclass(frozen=True)
class BratNormalisation:
    id: str
    kind: str
    target: str
    resource: str
    reference: str
    text: str
    line: int


@dataclass(frozen=True)
class BratEquivalence:
    label: str
    members: tuple[str, ...]
    line: int


@dataclass
class BratAnnotations:
    """Everything one ``.ann`` file says, in file order per line type."""

    entities: list[BratEntity] = field(default_factory=list)
    notes: list[BratNote] = field(default_factory=list)
    attributes: list[BratAttribute] = field(default_factory=list)
    relations: list[BratRelation] = field(default_factory=list)
    events: list[BratEvent] = field(default_factory=list)
    normalisations: list[BratNormalisation] = field(default_factory=list)
    equivalences: list[BratEquivalence] = field(default_factory=list)


def parse_ann(content: str, path: str | Path = "<ann>") -> BratAnnotations:
    """Parse the text of a ``.ann`` file; a malformed line or dangling reference raises ``CorpusFormatError``.

    >>> ann = parse_ann("T1\\tFECHAS 0 4\\t2019\\n#1\\tAnnotatorNotes T1\\t8000/6\\n")
    >>> ann.entities[0].fragments, ann.notes[0].note
    (((0, 4),), '8000/6')
    """
    result = BratAnnotations()
    ids: dict[str, int] = {}
    # A byte-order mark counts in a .txt's offsets, but in a .ann it is only an editor's leftover.
    for number, raw in enumerate(content.removeprefix("\ufeff").split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        _parse_line(line, number, path, result)
        # Equivalence lines ("*") have no id of their own.
        new_id = None if line.startswith("*") else line.split("\t", 1)[0]
        if new_id is not None:
            if new_id in ids:
                raise CorpusFormatError(f"id {new_id} already defined on line {ids[new_id]}", path, number)
            ids[new_id] = number
    _check_references(result, ids, path)
    return result


def _parse_line(line: str, number: int, path: str | Path, out: BratAnnotations) -> None:
    kind = line[0]
    if kind == "T":
        if m := _T.fullmatch(line):
            fragments = tuple(
                (int(a), int(b)) for a, b in (piece.split() for piece in m.group(3).split(";"))
            )
            if any(start > end for start, end in fragments):
                raise CorpusFormatError(f"span {m.group(3)!r} ends before it starts", path, number)
            out.entities.append(BratEntity(m.group(1), m.group(2), fragments, m.group(4), number))
            return
    elif kind == "#":
        if m := _NOTE.fullmatch(line):
            out.notes.append(BratNote(m.group(1), m.group(2), m.group(3), (m.group(4) or "").strip(), number))
            return
    elif kind in "AM":
        if m := _ATTRIBUTE.fullmatch(line):
            out.attributes.append(BratAttribute(m.group(1), m.group(2), m.group(3), m.group(4), number))
            return
    elif kind == "R":
        if m := _RELATION.fullmatch(line):
            arguments = ((m.group(3), m.group(4)), (m.group(5), m.group(6)))
            out.relations.append(BratRelation(m.group(1), m.group(2), arguments, number))
            return
    elif kind == "E":
        if m := _EVENT.fullmatch(line):
            arguments = tuple((role, target) for role, target in (a.split(":", 1) for a in m.group(4).split()))
            out.events.append(BratEvent(m.group(1), m.group(2), m.group(3), arguments, number))
            return
    elif kind == "N":
        if m := _NORMALISATION.fullmatch(line):
            out.normalisations.append(
                BratNormalisation(m.group(1), m.group(2), m.group(3), m.group(4), m.group(5), m.group(6) or "", number)
            )
            return
    elif kind == "*":
        if m := _EQUIVALENCE.fullmatch(line):
            out.equivalences.append(BratEquivalence(m.group(1), tuple(m.group(2).split()), number))
            return
    else:
        raise CorpusFormatError(f"unknown annotation type {kind!r} (expected one of {' '.join(_SHAPES)})", path, number)
    # The line itself is not shown: a malformed line's text (patient data in clinical corpora) may
    # sit in any field, and an error message must not carry it to logs. Its id and the expected
    # shape locate the problem.
    ident = re.match(r"[TREAMN#][0-9]+(?=\s)", line)
    where = f" ({ident.group(0)})" if ident else ""
    raise CorpusFormatError(f"malformed {kind!r} line{where}: expected {_SHAPES[kind]}", path, number)


# What each kind of line looks like, for error messages (TAB between fields).
_SHAPES = {
    "T": "'T<n> TAB LABEL START END[;START END...] TAB TEXT'",
    "R": "'R<n> TAB TYPE Arg1:<id> Arg2:<id>'",
    "E": "'E<n> TAB TYPE:T<n> [ROLE:<id> ...]'",
    "A": "'A<n> TAB NAME <id> [VALUE]'",
    "M": "'M<n> TAB NAME <id> [VALUE]'",
    "N": "'N<n> TAB Reference <id> DB:KEY TAB TEXT'",
    "#": "'#<n> TAB AnnotatorNotes <id> TAB NOTE'",
    "*": "'* TAB Equiv <id> <id> ...'",
}


def _check_references(ann: BratAnnotations, ids: dict[str, int], path: str | Path) -> None:
    references = [(n.target, n.line) for n in ann.notes]
    references += [(a.target, a.line) for a in ann.attributes]
    references += [(n.target, n.line) for n in ann.normalisations]
    references += [(target, r.line) for r in ann.relations for _, target in r.arguments]
    references += [(target, e.line) for e in ann.events for target in (e.trigger, *(t for _, t in e.arguments))]
    references += [(member, q.line) for q in ann.equivalences for member in q.members]
    for target, line in references:
        if target not in ids:
            raise CorpusFormatError(f"refers to {target}, which this file does not define", path, line)


def read_brat_document(
    txt_path: Path, ann_path: Path | None = None, *, doc_id: str | None = None, location: str | None = None
) -> Document:
    """Read one ``.txt``/``.ann`` pair into a Document with spans, codes, sentences and findings.

    ``location`` is how findings name the ``.ann`` file (default: its path).

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> _ = (d / "n1.txt").write_text("Fiebre alta.", encoding="utf-8")
    >>> _ = (d / "n1.ann").write_text("T1\\tSINTOMA 0 6\\tFiebre\\n", encoding="utf-8")
    >>> read_brat_document(d / "n1.txt").spans
    [Span(start=0, end=6, label='SINTOMA', text='Fiebre', id='T1', codes=(), score=None)]
    """
    ann_path = ann_path or txt_path.with_suffix(".ann")
    doc_id = doc_id or txt_path.stem
    where = location or str(ann_path)
    for needed in (txt_path, ann_path):
        if not needed.is_file():
            raise CorpusFormatError(f"missing {needed.name} for document {doc_id}", needed)
    text = read_text(txt_path)
    ann = parse_ann(read_text(ann_path), where)
    codes: dict[str, list[str]] = {}
    for note in ann.notes:
        if note.kind == "AnnotatorNotes" and note.note:
            codes.setdefault(note.target, []).append(note.note)
    for norm in ann.normalisations:
        codes.setdefault(norm.target, []).append(f"{norm.resource}:{norm.reference}")
    spans = [
        Span(
            start=e.fragments[0][0],
            end=e.fragments[-1][1],
            label=e.label,
            text=e.text,
            id=e.id,
            codes=tuple(codes.get(e.id, ())),
            fragments=e.fragments if len(e.fragments) > 1 else (),
        )
        for e in ann.entities
    ]
    findings: list[Finding] = []
    if "\r" in text and not all(span_matches(text, s) for s in spans):
        # BRAT tools that read text in universal-newline mode count "\r\n" as one character.
        normalised = text.replace("\r\n", "\n")
        if all(s.end <= len(normalised) and span_matches(normalised, s) for s in spans):
            findings.append(Finding(doc_id, CRLF_NORMALISED, str(txt_path), detail="offsets count \\r\\n as one character"))
            text = normalised
    for entity, span in zip(ann.entities, spans):
        if span.end > len(text):
            raise CorpusFormatError(
                f"{entity.id} ends at {span.end}, past the end of {txt_path.name} ({len(text)} characters)",
                where,
                entity.line,
            )
        if not span_matches(text, span):
            findings.append(mismatch_finding(doc_id, text, span, f"{where}:{entity.line}"))
    return Document(
        id=doc_id,
        text=text,
        spans=spans,
        sentences=split_sentences(text, spans),
        findings=findings,
        metadata={"source": where},
    )


def read_brat_folder(folder: Path, *, root: Path | None = None, doc_ids: set[str] | None = None) -> list[Document]:
    """Read every ``.txt``/``.ann`` pair of ``folder`` (not recursive), sorted by file name.

    A ``.txt`` without its ``.ann`` or the reverse raises ``CorpusFormatError``; other files are ignored.
    ``root`` makes the locations in findings relative; ``doc_ids`` restricts reading to those documents.

    >>> read_brat_folder(Path("corpora/meddocan/corpus/dev/brat"))  # doctest: +SKIP
    """
    if not folder.is_dir():
        raise CorpusFormatError("not a folder of BRAT files", folder)
    texts = {p.stem: p for p in folder.glob("*.txt")}
    anns = {p.stem: p for p in folder.glob("*.ann")}
    for stem in sorted(texts.keys() ^ anns.keys()):
        present = texts.get(stem) or anns[stem]
        other = ".ann" if stem in texts else ".txt"
        raise CorpusFormatError(f"has no matching {stem}{other}", present)
    documents = []
    for stem in sorted(texts):
        if doc_ids is not None and stem not in doc_ids:
            continue
        ann_path = anns[stem]
        location = str(ann_path.relative_to(root)) if root else str(ann_path)
        documents.append(read_brat_document(texts[stem], ann_path, location=location))
    return documents


def format_ann(document: Document) -> str:
    """The ``.ann`` text of ``document``: ``T`` lines plus one ``#`` AnnotatorNotes line per code.

    Span ids are kept where they are valid, unique ``T`` ids, otherwise all spans are renumbered.

    >>> doc = Document(id="n1", text="Fiebre alta.", spans=[Span(0, 6, "SINTOMA", codes=("R50.9",))])
    >>> format_ann(doc).splitlines()
    ['T1\\tSINTOMA 0 6\\tFiebre', '#1\\tAnnotatorNotes T1\\tR50.9']
    """
    ids = [s.id for s in document.spans]
    keep_ids = all(re.fullmatch(r"T[0-9]+", i) for i in ids) and len(set(ids)) == len(ids)
    lines = []
    note = 0
    for number, span in enumerate(document.spans, start=1):
        span_id = span.id if keep_ids else f"T{number}"
        fragments = span.fragments or ((span.start, span.end),)
        offsets = ";".join(f"{s} {e}" for s, e in fragments)
        surface = span.text or " ".join(document.text[s:e] for s, e in fragments)
        # The .ann format is line based and tab separated: the CANTEMIST and MEDDOPROF scorers
        # skip a whole file on a tab or line break inside a field (splitlines breaks on more than
        # "\n"). One space per character keeps the field as long as its offsets say.
        lines.append(f"{span_id}\t{span.label} {offsets}\t{one_line(surface)}\n")
        for code in span.codes:
            note += 1
            lines.append(f"#{note}\tAnnotatorNotes {span_id}\t{one_line(code)}\n")
    return "".join(lines)


def brat_paths(doc_id: str, out_dir: Path) -> tuple[Path, Path]:
    """The ``.txt`` and ``.ann`` paths of document ``doc_id`` in ``out_dir``; an id ``a/b`` lies in ``a/``.

    >>> [p.as_posix() for p in brat_paths("a/b", Path("out"))]
    ['out/a/b.txt', 'out/a/b.ann']
    """
    relative = PurePosixPath(doc_id)
    # An id is a name inside out_dir (a relative path for nested inputs), never a way out of it.
    if not doc_id or relative.is_absolute() or ".." in relative.parts or "\\" in doc_id:
        raise ValueError(f"document id {doc_id!r} is not a relative file name")
    return out_dir / f"{doc_id}.txt", out_dir / f"{doc_id}.ann"


def write_brat(documents: list[Document], out_dir: Path) -> list[Path]:
    """Write ``<id>.txt`` + ``<id>.ann`` per document, the layout the shared-task scorers read.

    Each file is written whole or not at all (``write_text_atomic``), so an interrupted run
    leaves no truncated ``.ann`` for a scorer to read as a document without spans.

    >>> import tempfile; out = Path(tempfile.mkdtemp())
    >>> [p.name for p in write_brat([Document(id="n1", text="Hola")], out)]
    ['n1.txt', 'n1.ann']
    """
    written = []
    for document in documents:
        txt, ann = brat_paths(document.id, out_dir)
        txt.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(txt, document.text)
        write_text_atomic(ann, format_ann(document))
        written += [txt, ann]
    return written
