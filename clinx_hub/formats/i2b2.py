"""Readers for the four i2b2/n2c2 formats (2006, 2010, 2012, 2014) into Documents.

The i2b2 data are under a Data Use Agreement: only synthetic files in these formats may be used
in tests (see ``shared/corpora/I2B2_FORMATS.md``). The known defects of the distributed files
are repaired and reported as findings: the malformed ``<PHI>`` tag of the 2006 training file,
unescaped ``&`` in 2012 XML, and offsets counted without (or with) the CDATA's leading newline.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from clinx_hub.documents import Document, Finding, Span
from clinx_hub.formats.base import (
    OFFSET_SHIFT,
    REPAIRED_XML,
    CorpusFormatError,
    best_shift,
    line_of,
    mismatch_finding,
    read_text,
    span_matches,
)
from clinx_hub.sentences import merge_across_spans, split_sentences

EVENT_TYPES = ("PROBLEM", "TEST", "TREATMENT", "CLINICAL_DEPT", "EVIDENTIAL", "OCCURRENCE")
TIMEX3_TYPES = ("DATE", "TIME", "DURATION", "FREQUENCY")
# One public 2012 loader spells the EVENT type "OCCURENCE"; both mean the same class.
_TYPE_SPELLINGS = {"OCCURENCE": "OCCURRENCE"}

_CDATA = re.compile(r"<!\[CDATA\[.*?\]\]>", re.DOTALL)
_BARE_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)")
_PHI_TAG = re.compile(r'<PHI TYPE="[^"]*">|</PHI>')
_TAG_ID = re.compile(r'<(\w+)\b[^>]*?\bid="([^"]*)"')
_CON_LINE = re.compile(r'c="(.*)" ([0-9]+):([0-9]+) ([0-9]+):([0-9]+)\|\|t="([^"]*)"\s*')


def _parse_xml(source: str, path: Path) -> ET.Element:
    try:
        return ET.fromstring(source)
    except ET.ParseError as err:
        line, column = err.position
        message = str(err).split(":")[0]
        raise CorpusFormatError(f"malformed XML ({message}, column {column + 1})", path, line) from None


def _escape_bare_ampersands(raw: str, path: Path, doc_id: str) -> tuple[str, list[Finding]]:
    """Escape ``&`` that starts no entity, outside CDATA only (inside CDATA it is literal text)."""
    findings: list[Finding] = []
    pieces: list[str] = []
    position = 0
    for cdata in [*_CDATA.finditer(raw), None]:
        end = cdata.start() if cdata else len(raw)
        outside = raw[position:end]
        for bare in _BARE_AMPERSAND.finditer(outside):
            line = line_of(raw, position + bare.start())
            findings.append(Finding(doc_id, REPAIRED_XML, f"{path}:{line}", detail="unescaped '&' escaped as '&amp;'"))
        pieces.append(_BARE_AMPERSAND.sub("&amp;", outside))
        if cdata:
            pieces.append(cdata.group(0))
            position = cdata.end()
    return "".join(pieces), findings


def _finish(
    doc_id: str, text: str, spans: list[Span], findings: list[Finding], path: Path, lines: dict[str, int]
) -> Document:
    """Apply a consistent per-document offset shift if one is needed, check every span, split sentences."""
    where = {s.id: f"{path}:{lines[s.id]}" if s.id in lines else str(path) for s in spans}
    shift = best_shift(text, spans)
    if shift:
        spans = [replace(s, start=s.start + shift, end=s.end + shift) for s in spans]
        findings.append(
            Finding(doc_id, OFFSET_SHIFT, str(path), detail=f"all offsets shifted by {shift:+d} to match the tag texts")
        )
    for span in spans:
        if span.start < 0 or span.end > len(text) or span.start > span.end:
            line = lines.get(span.id)
            raise CorpusFormatError(
                f"{span.id} offsets {span.start}-{span.end} lie outside the text ({len(text)} characters)", path, line
            )
        if not span_matches(text, span):
            findings.append(mismatch_finding(doc_id, text, span, where[span.id]))
    return Document(
        id=doc_id,
        text=text,
        spans=spans,
        sentences=split_sentences(text, spans),
        findings=findings,
        metadata={"source": str(path)},
    )


def _offset_tags(
    path: Path, tags: tuple[str, ...] | None, *, repair_ampersands: bool, codes_from: tuple[str, ...] = ()
) -> Document:
    """Shared body of the 2012 and 2014 readers: ``<TEXT>`` CDATA plus offset tags under ``<TAGS>``."""
    doc_id = path.stem
    raw = read_text(path)
    findings: list[Finding] = []
    if repair_ampersands:
        raw, findings = _escape_bare_ampersands(raw, path, doc_id)
    root = _parse_xml(raw, path)
    text_element = root.find("TEXT")
    tags_element = root.find("TAGS")
    if text_element is None:
        raise CorpusFormatError("no <TEXT> element", path)
    # The CDATA is kept whole, leading newline included: that is what the offsets count.
    text = text_element.text or ""
    lines = {m.group(2): line_of(raw, m.start()) for m in _TAG_ID.finditer(raw)}
    spans = []
    for tag in tags_element if tags_element is not None else []:
        if tags is not None and tag.tag not in tags:
            continue
        attributes = tag.attrib
        try:
            start, end = int(attributes["start"]), int(attributes["end"])
        except (KeyError, ValueError):
            raise CorpusFormatError(
                f"<{tag.tag} id={attributes.get('id')!r}> lacks integer start/end", path, lines.get(attributes.get("id", ""))
            ) from None
        label = attributes.get("TYPE") or attributes.get("type") or tag.tag
        label = _TYPE_SPELLINGS.get(label, label)
        codes = tuple(attributes[name] for name in codes_from if attributes.get(name))
        spans.append(Span(start, end, label, attributes.get("text", ""), attributes.get("id", ""), codes))
    return _finish(doc_id, text, spans, findings, path, lines)


def read_i2b2_2014(path: Path) -> Document:
    """Read one 2014 de-identification XML (``<TEXT>`` CDATA + typed PHI tags); labels are the ``TYPE``s.

    MEDDOCAN's XML has the same structure and reads with this function too.

    >>> read_i2b2_2014(Path("meddocan/corpus/dev/xml/S0004-06142005000900016-1.xml"))  # doctest: +SKIP
    """
    return _offset_tags(path, None, repair_ampersands=False)


def read_i2b2_2012(path: Path, tags: tuple[str, ...] = ("EVENT",)) -> Document:
    """Read one 2012 temporal XML: ``EVENT`` spans (2012-C) or ``TIMEX3`` spans (2012-T), by ``type``.

    TIMEX3 ``val`` normalisations become span codes; bare ``&`` are escaped and reported.

    >>> read_i2b2_2012(Path("train/1.xml"), tags=("TIMEX3",))  # doctest: +SKIP
    """
    return _offset_tags(path, tags, repair_ampersands=True, codes_from=("val",))


def read_i2b2_2006(path: Path) -> list[Document]:
    """Read a 2006 de-identification XML (all records of a split, inline ``<PHI TYPE>`` tags, no offsets).

    >>> read_i2b2_2006(Path("deid_surrogate_test_all_groundtruth_version2.xml"))  # doctest: +SKIP
    """
    raw = read_text(path)
    raw, repairs = _repair_phi_tags(raw, path)
    root = _parse_xml(raw, path)
    documents = []
    for record in root.iter("RECORD"):
        doc_id = record.get("ID")
        text_element = record.find("TEXT")
        if not doc_id or text_element is None:
            raise CorpusFormatError("a <RECORD> lacks its ID or <TEXT>", path)
        pieces = [text_element.text or ""]
        length = len(pieces[0])
        spans = []
        for number, child in enumerate(text_element):
            if child.tag != "PHI" or len(child):
                raise CorpusFormatError(f"record {doc_id}: unexpected <{child.tag}> inside <TEXT>", path)
            surface = child.text or ""
            spans.append(Span(length, length + len(surface), child.get("TYPE", ""), surface, f"P{number}"))
            pieces += [surface, child.tail or ""]
            length += len(surface) + len(child.tail or "")
        text = "".join(pieces)
        # As BigBIO does: drop the newlines around the note and its "[ report_end ]" marker.
        lead = len(text) - len(text.lstrip("\n"))
        text = text.strip("\n")
        if text.endswith("[ report_end ]"):
            text = text[: -len("[ report_end ]")].rstrip("\n")
        spans = [replace(s, start=s.start - lead, end=s.end - lead) for s in spans]
        findings = [f for f in repairs if f.doc_id == doc_id]
        documents.append(_finish(doc_id, text, spans, findings, path, {}))
    return documents


def _repair_phi_tags(raw: str, path: Path) -> tuple[str, list[Finding]]:
    """PHI tags never nest, so an opening tag inside an open one is the missing ``</PHI>``."""
    findings: list[Finding] = []
    pieces: list[str] = []
    position = 0
    open_tag = False
    for tag in _PHI_TAG.finditer(raw):
        closing = tag.group(0) == "</PHI>"
        if not closing and open_tag:
            record = re.findall(r'<RECORD ID="([^"]*)"', raw[: tag.start()])
            findings.append(
                Finding(
                    record[-1] if record else "",
                    REPAIRED_XML,
                    f"{path}:{line_of(raw, tag.start())}",
                    detail=f"{tag.group(0)} inside an open PHI tag replaced by </PHI>",
                )
            )
            pieces += [raw[position : tag.start()], "</PHI>"]
            position = tag.end()
            open_tag = False
            continue
        open_tag = not closing
    pieces.append(raw[position:])
    return "".join(pieces), findings


def read_i2b2_2010(txt_path: Path, con_path: Path) -> Document:
    """Read a 2010 ``.txt`` (one sentence per line) with its ``.con`` line:token concept references.

    Lines are 1-based, tokens 0-based whitespace-split tokens, and the end token is inclusive.

    >>> read_i2b2_2010(Path("record-900.txt"), Path("record-900.con"))  # doctest: +SKIP
    """
    doc_id = txt_path.stem
    text = read_text(txt_path)
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    tokens = [[(starts[i] + m.start(), starts[i] + m.end()) for m in re.finditer(r"\S+", line)] for i, line in enumerate(lines)]
    spans, findings = [], []
    for number, raw_line in enumerate(read_text(con_path).split("\n"), start=1):
        entry = raw_line.rstrip("\r")
        if not entry.strip():
            continue
        match = _CON_LINE.fullmatch(entry)
        if not match:
            raise CorpusFormatError(f"malformed concept line {entry[:80]!r}", con_path, number)
        surface, label = match.group(1), match.group(6)
        first_line, first_token, last_line, last_token = (int(match.group(i)) for i in range(2, 6))
        start = _token_offset(tokens, first_line, first_token, con_path, number)[0]
        end = _token_offset(tokens, last_line, last_token, con_path, number)[1]
        if end <= start:
            raise CorpusFormatError(f"concept ends ({last_line}:{last_token}) before it starts", con_path, number)
        span = Span(start, end, label, text[start:end], f"C{len(spans)}")
        # The c="..." text is lower-cased in the releases: compare case- and whitespace-insensitively.
        if " ".join(surface.lower().split()) != " ".join(span.text.lower().split()):
            findings.append(mismatch_finding(doc_id, text, Span(start, end, label, surface), f"{con_path}:{number}"))
        spans.append(span)
    sentences = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped:
            begin = starts[i] + len(line) - len(line.lstrip())
            sentences.append((begin, begin + len(stripped)))
    # The lines are the release's sentences; only a concept running over a line break joins two.
    sentences = merge_across_spans(sentences, spans)
    return Document(doc_id, text, spans, sentences, findings, {"source": str(con_path)})


def _token_offset(
    tokens: list[list[tuple[int, int]]], line: int, token: int, path: Path, number: int
) -> tuple[int, int]:
    if not 1 <= line <= len(tokens):
        raise CorpusFormatError(f"refers to line {line}, but the text has {len(tokens)} lines", path, number)
    if not 0 <= token < len(tokens[line - 1]):
        raise CorpusFormatError(
            f"refers to token {token} of line {line}, which has {len(tokens[line - 1])} tokens", path, number
        )
    return tokens[line - 1][token]


def read_i2b2_2010_folders(*roots: Path) -> list[Document]:
    """Pair every ``.con`` under ``roots`` with the ``.txt`` of the same name (anywhere under them).

    >>> read_i2b2_2010_folders(Path("test_data"), Path("reference_standard_for_test_data"))  # doctest: +SKIP
    """
    texts: dict[str, Path] = {}
    concepts: dict[str, Path] = {}
    for root in roots:
        for found, index in ((sorted(root.rglob("*.txt")), texts), (sorted(root.rglob("*.con")), concepts)):
            for path in found:
                if path.stem in index and index[path.stem] != path:
                    raise CorpusFormatError(f"two files for document {path.stem}: also {index[path.stem]}", path)
                index[path.stem] = path
    con_folders = {p.parent for p in concepts.values()}
    for stem, path in sorted(concepts.items()):
        if stem not in texts:
            raise CorpusFormatError(f"has no matching {stem}.txt", path)
    for stem, path in sorted(texts.items()):
        # A .txt is a note only inside a txt/ folder or beside .con files (READMEs are not).
        if stem not in concepts and (path.parent.name == "txt" or path.parent in con_folders):
            raise CorpusFormatError(f"has no matching {stem}.con", path)
    return [read_i2b2_2010(texts[stem], concepts[stem]) for stem in sorted(concepts)]


def read_xml_folder(folder: Path, reader: Callable[..., Document], **options: object) -> list[Document]:
    """Read every ``*.xml`` of ``folder`` (recursively, sorted by name) with a one-document reader.

    >>> read_xml_folder(Path("training-PHI-Gold-Set1"), read_i2b2_2014)  # doctest: +SKIP
    """
    if folder.is_file():
        return [reader(folder, **options)]
    paths = sorted(folder.rglob("*.xml"), key=lambda p: p.name)
    if not paths:
        raise CorpusFormatError("no .xml files found", folder)
    return [reader(path, **options) for path in paths]
