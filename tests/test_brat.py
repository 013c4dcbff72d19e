"""BRAT standoff: the full line grammar, the corpus quirks, clear errors for broken files, the writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinx_hub.documents import Document, Span
from clinx_hub.formats.base import CRLF_NORMALISED, TEXT_MISMATCH, CorpusFormatError
from clinx_hub.formats.brat import format_ann, parse_ann, read_brat_document, read_brat_folder, write_brat


def write_pair(folder: Path, stem: str, text: str | bytes, ann: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    txt = folder / f"{stem}.txt"
    if isinstance(text, bytes):
        txt.write_bytes(text)
    else:
        txt.write_text(text, encoding="utf-8", newline="")
    (folder / f"{stem}.ann").write_text(ann, encoding="utf-8", newline="")
    return txt


FULL_ANN = (
    "T1\tFARMACO 10 19\tparacetam\n"
    "T2\tDOSIS 0 4;6 9\tdosi 500\n"
    "#1\tAnnotatorNotes T1\tATC:N02BE01\n"
    "A1\tNegacion T1\n"
    "M2\tIncierto T2 Alta\n"
    "R1\tTiene Arg1:T1 Arg2:T2\n"
    "E1\tAdministra:T1 Dosis:T2\n"
    "N1\tReference T1 SNOMED:387517004\tParacetamol\n"
    "*\tIgual T1 T2\n"
    "\n"
)


def test_every_line_type_of_the_grammar_is_parsed():
    ann = parse_ann(FULL_ANN, "x.ann")
    assert [(e.id, e.label, e.fragments, e.text) for e in ann.entities] == [
        ("T1", "FARMACO", ((10, 19),), "paracetam"),
        ("T2", "DOSIS", ((0, 4), (6, 9)), "dosi 500"),
    ]
    assert (ann.notes[0].target, ann.notes[0].note) == ("T1", "ATC:N02BE01")
    assert [(a.id, a.name, a.target, a.value) for a in ann.attributes] == [
        ("A1", "Negacion", "T1", None),
        ("M2", "Incierto", "T2", "Alta"),
    ]
    assert ann.relations[0].arguments == (("Arg1", "T1"), ("Arg2", "T2"))
    assert (ann.events[0].trigger, ann.events[0].arguments) == ("T1", (("Dosis", "T2"),))
    assert (ann.normalisations[0].resource, ann.normalisations[0].reference) == ("SNOMED", "387517004")
    assert ann.equivalences[0].members == ("T1", "T2")


def test_document_spans_carry_codes_and_fragments(tmp_path):
    txt = write_pair(tmp_path, "d1", "dosis 500 paracetamol", FULL_ANN)
    doc = read_brat_document(txt)
    first, second = doc.spans
    assert first.codes == ("ATC:N02BE01", "SNOMED:387517004")
    assert (second.start, second.end, second.fragments) == (0, 9, ((0, 4), (6, 9)))
    assert doc.findings == []  # a discontinuous span's text is its fragments joined by one space


@pytest.mark.parametrize(
    ("ann", "message"),
    [
        ("T1\tFECHAS 0 x\t2019\n", "d.ann:1: malformed 'T' line (T1): expected 'T<n> TAB LABEL START END"),
        # Text in the wrong field: still never shown.
        ("T1 FECHAS 0 4\tJuan Pérez\n", "d.ann:1: malformed 'T' line (T1): expected"),
        ("T1\tFECHAS 0 4 Juan Pérez\n", "d.ann:1: malformed 'T' line (T1): expected"),
        ("Juan Pérez 0 4\n", "d.ann:1: unknown annotation type 'J' (expected"),
        ("T1\tFECHAS 0 4\t2019\nX1\tfoo\n", "d.ann:2: unknown annotation type 'X'"),
        ("T1\tFECHAS 0 4\t2019\n#1\tAnnotatorNotes T9\tcode\n", "d.ann:2: refers to T9, which this file does not define"),
        ("T1\tFECHAS 0 4\t2019\nT1\tFECHAS 0 4\t2019\n", "d.ann:2: id T1 already defined on line 1"),
        ("T1\tFECHAS 4 0\t2019\n", "d.ann:1: span '4 0' ends before it starts"),
        ("T1\tFECHAS 0 4\t2019\nT2\tFECHAS 5 40\tmayo\n", "d.ann:2: T2 ends at 40, past the end of d.txt (9 characters)"),
        ("R1\tTiene Arg1:T1\n", "d.ann:1: malformed 'R' line (R1): expected 'R<n> TAB TYPE Arg1:<id> Arg2:<id>'"),
    ],
)
def test_broken_ann_files_raise_with_file_and_line(tmp_path, ann, message):
    txt = write_pair(tmp_path, "d", "2019 mayo", ann)
    with pytest.raises(CorpusFormatError) as caught:
        read_brat_document(txt, location="d.ann")
    assert str(caught.value).startswith(message)
    assert "Pérez" not in str(caught.value)  # an annotation's text never reaches the message


def test_non_utf8_text_names_the_file_and_line(tmp_path):
    txt = write_pair(tmp_path, "d", b"Hola\nfiebre \xe9levada\n", "")
    with pytest.raises(CorpusFormatError, match=r"d\.txt:2: not valid UTF-8: byte 0xe9 at offset 12"):
        read_brat_document(txt)


def test_a_txt_without_its_ann_and_the_reverse_are_errors(tmp_path):
    write_pair(tmp_path, "a", "Hola", "")
    (tmp_path / "b.txt").write_text("Solo texto", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"b\.txt: has no matching b\.ann"):
        read_brat_folder(tmp_path)
    (tmp_path / "b.txt").unlink()
    (tmp_path / "c.ann").write_text("", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"c\.ann: has no matching c\.txt"):
        read_brat_folder(tmp_path)


def test_byte_order_mark_counts_as_character_zero(tmp_path):
    txt = write_pair(tmp_path, "d", "\ufeffEdad: 70 años", "T1\tEDAD 7 14\t70 años\n")
    doc = read_brat_document(txt)
    assert doc.text[0] == "\ufeff" and doc.span_text(doc.spans[0]) == "70 años" and not doc.findings


def test_crlf_text_whose_offsets_count_one_character_per_line_break_is_normalised(tmp_path):
    txt = write_pair(tmp_path, "d", "Alta.\r\nFiebre.\r\nTos.", "T1\tSINTOMA 14 17\tTos\n")
    doc = read_brat_document(txt)
    assert "\r" not in doc.text and doc.span_text(doc.spans[0]) == "Tos"
    assert [f.reason for f in doc.findings] == [CRLF_NORMALISED]
    kept = write_pair(tmp_path, "e", "Alta.\r\nTos.", "T1\tSINTOMA 7 10\tTos\n")
    assert read_brat_document(kept).text == "Alta.\r\nTos."  # offsets that count \r keep it


def test_shifted_span_is_kept_and_reported_with_its_line(tmp_path):
    txt = write_pair(tmp_path, "d", "Proteína de Bence-Jones positiva", "T1\tPROTEINAS 13 24\tBence-Jones\n")
    doc = read_brat_document(txt, location="train/d.ann")
    assert [s.key for s in doc.spans] == [("PROTEINAS", 13, 24)]
    assert [(f.reason, f.location) for f in doc.findings] == [(TEXT_MISMATCH, "train/d.ann:1")]


def test_empty_ann_and_duplicated_span_are_kept(tmp_path):
    write_pair(tmp_path, "a", "Sin hallazgos.", "")
    write_pair(
        tmp_path, "b", "Carcinoma",
        "T1\tM 0 9\tCarcinoma\n#1\tAnnotatorNotes T1\t8010/3\nT2\tM 0 9\tCarcinoma\n#2\tAnnotatorNotes T2\t8010/6\n",
    )
    empty, twice = read_brat_folder(tmp_path)
    assert empty.spans == [] and empty.id == "a"
    assert [(s.key, s.codes) for s in twice.spans] == [(("M", 0, 9), ("8010/3",)), (("M", 0, 9), ("8010/6",))]


def test_writer_output_reads_back_identically(tmp_path):
    text = "\ufeffDosis 500 mg de paracetamol.\r\nAlta"
    spans = [
        Span(1, 10, "DOSIS", "Dosis 500", "T3", codes=("a", "b")),
        Span(1, 30, "X", "Dosis paracetamol", "T4", fragments=((1, 6), (18, 29))),
    ]
    doc = Document("n1", text, spans)
    write_brat([doc], tmp_path)
    again = read_brat_document(tmp_path / "n1.txt")
    assert again.text == text
    assert [(s.id, s.key, s.codes, s.fragments, s.text) for s in again.spans] == [
        ("T3", ("DOSIS", 1, 10), ("a", "b"), (), "Dosis 500"),
        ("T4", ("X", 1, 29), (), ((1, 6), (18, 29)), "Dosis paracetamol"),
    ]


def test_writer_renumbers_spans_without_brat_ids():
    doc = Document("n1", "a\nb", [Span(0, 3, "X", id="p-7"), Span(2, 3, "Y", id="p-8")])
    assert format_ann(doc) == "T1\tX 0 3\ta b\nT2\tY 2 3\tb\n"


# Arabic-Indic 9 and 4, fullwidth 4, Devanagari 4: "\d", int() and isdigit() take them all.
@pytest.mark.parametrize("digit", ["\u0669", "\u0664", "\uff14", "\u096a"])
def test_offsets_take_ascii_digits_only(tmp_path, digit):
    for ann in (f"T1\tFECHAS 0 {digit}\t2019\n", f"T1\tFECHAS {digit} 4\t2019\n", f"T1\tFECHAS 0 4;5 {digit}\t2019\n"):
        txt = write_pair(tmp_path, "d", "2019 mayo", ann)
        with pytest.raises(CorpusFormatError, match=r"^d\.ann:1: malformed 'T' line \(T1\): expected"):
            read_brat_document(txt, location="d.ann")


LINE_BREAKING = ["\t", "\n", "\r\n", "\r", "\u2028", "\u2029", "\x0b", "\x0c", "\x85", "\x1c", "\x1d", "\x1e"]


def test_writer_keeps_each_annotation_on_one_line(tmp_path):
    # Invented text: each span runs over a tab or one of the characters str.splitlines breaks on.
    text, spans = "", []
    for number, separator in enumerate(LINE_BREAKING, start=1):
        start = len(text)
        text += f"dolor{separator}agudo "
        spans.append(Span(start, start + 10 + len(separator), "SINTOMA", id=f"T{number}", codes=(f"R{separator}52",)))
    doc = Document("n1", text, spans)
    write_brat([doc], tmp_path)
    written = (tmp_path / "n1.ann").read_text(encoding="utf-8")
    assert len(written.splitlines()) == len(written.split("\n")) - 1 == 2 * len(spans)  # T line + note each
    assert all(line.count("\t") == 2 for line in written.splitlines())
    again = read_brat_document(tmp_path / "n1.txt")
    assert again.text == text
    assert [(s.id, s.key) for s in again.spans] == [(s.id, s.key) for s in spans]
    assert [s.text for s in again.spans] == [f"dolor{' ' * len(sep)}agudo" for sep in LINE_BREAKING]
    assert [s.codes for s in again.spans] == [(f"R{' ' * len(sep)}52",) for sep in LINE_BREAKING]
    assert again.findings == []  # a space standing for a line break is no text mismatch


def test_writer_replaces_files_whole_or_not_at_all(tmp_path, monkeypatch):
    import os

    write_pair(tmp_path, "n1", "Fiebre alta.", "T1\tSINTOMA 0 6\tFiebre\n")
    before = sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir())

    def interrupted(source, target):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_brat([Document("n1", "Tos seca.", [Span(0, 3, "SINTOMA", "Tos")])], tmp_path)
    # The old pair is intact and no temporary file is left behind.
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir()) == before


def test_writer_mirrors_nested_ids_and_keeps_ids_inside_the_folder(tmp_path):
    written = write_brat([Document("a/b", "Tos."), Document("c", "Fiebre.")], tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in written] == ["a/b.txt", "a/b.ann", "c.txt", "c.ann"]
    for bad in ("../escape", "/abs/path", ""):
        with pytest.raises(ValueError, match="is not a relative file name"):
            write_brat([Document(bad, "Tos.")], tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
