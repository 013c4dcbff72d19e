"""The four i2b2 formats, on synthetic files only (the real data are under a Data Use Agreement)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinx_hub.formats.base import OFFSET_SHIFT, REPAIRED_XML, TEXT_MISMATCH, CorpusFormatError
from clinx_hub.formats.i2b2 import (
    read_i2b2_2006,
    read_i2b2_2010,
    read_i2b2_2010_folders,
    read_i2b2_2012,
    read_i2b2_2014,
    read_xml_folder,
)

# Invented notes in the shape of I2B2_FORMATS.md, including the quirks it lists.
XML_2006 = """<ROOT>
<RECORD ID="900">
<TEXT>
Admission Date : <PHI TYPE="DATE">01/02/2099</PHI>
Attending : <PHI TYPE="DOCTOR">Alan Smithee</PHI> , M.D. &gt; 3 &amp; <PHI TYPE="DOCTOR">O&apos;Hara</PHI>
[ report_end ]
</TEXT>
</RECORD>
<RECORD ID="901">
<TEXT>
Seen on <PHI TYPE="DATE">25th of July<PHI TYPE="DOCTOR"> by <PHI TYPE="PATIENT">Alan Smithee</PHI> .
[ report_end ]
</TEXT>
</RECORD>
</ROOT>
"""

XML_2012 = """<?xml version="1.0" encoding="UTF-8" ?>
<ClinicalNarrativeTemporalAnnotation>
<TEXT><![CDATA[
Admission Date :
2099-03-02
He was started on heparin & aspirin for a pulmonary embolism , given twice daily for 3 days .
]]></TEXT>
<TAGS>
<EVENT id="E0" start="1" end="10" text="Admission" modality="FACTUAL" polarity="POS" type="OCCURENCE" />
<EVENT id="E1" start="47" end="64" text="heparin & aspirin" modality="FACTUAL" polarity="POS" type="TREATMENT" />
<EVENT id="E2" start="69" end="89" text="a pulmonary embolism" modality="FACTUAL" polarity="POS" type="PROBLEM" />
<TIMEX3 id="T0" start="18" end="28" text="2099-03-02" type="DATE" val="2099-03-02" mod="NA" />
<TIMEX3 id="T1" start="98" end="109" text="twice daily" type="FREQUENCY" val="RPT2D" mod="NA" />
<TIMEX3 id="T2" start="114" end="120" text="3 days" type="DURATION" val="P3D" mod="NA" />
<TLINK id="TL0" fromID="E0" fromText="Admission" toID="T0" toText="2099-03-02" type="SIMULTANEOUS" />
<SECTIME id="S0" start="18" end="28" text="2099-03-02" type="ADMISSION" dvalue="2099-03-02" />
</TAGS>
</ClinicalNarrativeTemporalAnnotation>
"""

XML_2014 = """<?xml version="1.0" encoding="UTF-8" ?>
<deIdi2b2>
<TEXT><![CDATA[
Record date: 2099-05-03

Patient Jane Roe is a 64 yo nurse seen at Springfield General.
]]></TEXT>
<TAGS>
<DATE id="P0" start="14" end="24" text="2099-05-03" TYPE="DATE" comment="" />
<NAME id="P1" start="34" end="42" text="Jane Roe" TYPE="PATIENT" comment="" />
<AGE id="P2" start="48" end="50" text="64" TYPE="AGE" comment="" />
<PROFESSION id="P3" start="54" end="59" text="nurse" TYPE="PROFESSION" comment="" />
<LOCATION id="P4" start="68" end="87" text="Springfield General" TYPE="HOSPITAL" comment="" />
</TAGS>
</deIdi2b2>
"""

TXT_2010 = "Admission Date :\n2099-01-01\nThe patient was given aspirin 81 mg for chest\npain .\n"
CON_2010 = 'c="aspirin" 3:4 3:4||t="treatment"\nc="chest pain" 3:8 4:0||t="problem"\nc="81 mg" 3:5 3:6||t="test"\n'


def write(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8", newline="")
    return path


def spans_of(doc) -> list[tuple[str, int, int, str]]:
    return [(s.label, s.start, s.end, doc.span_text(s)) for s in doc.spans]


def test_2006_inline_tags_become_offsets_and_the_malformed_tag_is_repaired(tmp_path):
    path = write(tmp_path / "deid_surrogate_train_all_version2.xml", XML_2006)
    first, second = read_i2b2_2006(path)
    assert first.id == "900"
    assert first.text == "Admission Date : 01/02/2099\nAttending : Alan Smithee , M.D. > 3 & O'Hara"
    assert spans_of(first) == [("DATE", 17, 27, "01/02/2099"), ("DOCTOR", 40, 52, "Alan Smithee"), ("DOCTOR", 66, 72, "O'Hara")]
    assert not first.findings
    assert spans_of(second) == [("DATE", 8, 20, "25th of July"), ("PATIENT", 24, 36, "Alan Smithee")]
    assert [(f.reason, f.location) for f in second.findings] == [(REPAIRED_XML, f"{path}:11")]


def test_2010_line_token_references_give_character_spans_across_lines(tmp_path):
    doc = read_i2b2_2010(write(tmp_path / "r.txt", TXT_2010), write(tmp_path / "r.con", CON_2010))
    assert spans_of(doc) == [
        ("treatment", 50, 57, "aspirin"),
        ("problem", 68, 78, "chest\npain"),
        ("test", 58, 63, "81 mg"),
    ]
    # The release's lines are its sentences, joined only where a concept runs over a line break.
    assert [doc.text[s:e] for s, e in doc.sentences] == ["Admission Date :", "2099-01-01", TXT_2010.split("\n", 2)[2].strip()]
    assert doc.findings == []


@pytest.mark.parametrize(
    ("con", "message"),
    [
        ('c="x" 9:0 9:0||t="test"\n', r"r\.con:1: refers to line 9, but the text has 5 lines"),
        (
            'c="aspirin" 3:4 3:4||t="treatment"\nc="x" 3:12 3:12||t="test"\n',
            r"r\.con:2: refers to token 12 of line 3, which has 9 tokens",
        ),
        ('c="aspirin" 3:4||t="treatment"\n', r"r\.con:1: malformed concept line"),
        ('c="x" 3:4 3:2||t="test"\n', r"r\.con:1: concept ends \(3:2\) before it starts"),
        # int() reads Arabic-Indic digits, the release format has ASCII ones only: refused, not guessed
        ('c="aspirin" \u0663:4 3:4||t="treatment"\n', r"r\.con:1: malformed concept line"),
    ],
)
def test_2010_bad_references_raise_with_file_and_line(tmp_path, con, message):
    txt = write(tmp_path / "r.txt", TXT_2010)
    with pytest.raises(CorpusFormatError, match=message):
        read_i2b2_2010(txt, write(tmp_path / "r.con", con))


def test_2010_concept_text_that_disagrees_is_kept_and_reported(tmp_path):
    doc = read_i2b2_2010(write(tmp_path / "r.txt", TXT_2010), write(tmp_path / "r.con", 'c="ibuprofen" 3:4 3:4||t="treatment"\n'))
    assert spans_of(doc) == [("treatment", 50, 57, "aspirin")]
    assert [(f.reason, f.location) for f in doc.findings] == [(TEXT_MISMATCH, f"{tmp_path / 'r.con'}:1")]


def test_2010_folders_pair_txt_and_con_across_the_release_layout(tmp_path):
    write(tmp_path / "test_data" / "r1.txt", TXT_2010)
    write(tmp_path / "reference_standard_for_test_data" / "concepts" / "r1.con", CON_2010)
    write(tmp_path / "test_data" / "README.txt", "not a note")
    [doc] = read_i2b2_2010_folders(tmp_path / "test_data", tmp_path / "reference_standard_for_test_data")
    assert doc.id == "r1" and len(doc.spans) == 3
    write(tmp_path / "train" / "beth" / "concept" / "r2.con", CON_2010)
    with pytest.raises(CorpusFormatError, match=r"r2\.con: has no matching r2\.txt"):
        read_i2b2_2010_folders(tmp_path / "train")
    write(tmp_path / "train2" / "partners" / "txt" / "r3.txt", TXT_2010)
    with pytest.raises(CorpusFormatError, match=r"r3\.txt: has no matching r3\.con"):
        read_i2b2_2010_folders(tmp_path / "train2")


def test_2012_events_and_timexes_with_an_unescaped_ampersand(tmp_path):
    path = write(tmp_path / "1.xml", XML_2012)
    events = read_i2b2_2012(path)
    assert spans_of(events) == [
        ("OCCURRENCE", 1, 10, "Admission"),  # the "OCCURENCE" spelling is normalised
        ("TREATMENT", 47, 64, "heparin & aspirin"),
        ("PROBLEM", 69, 89, "a pulmonary embolism"),
    ]
    assert [(f.reason, f.location) for f in events.findings] == [(REPAIRED_XML, f"{path}:10")]
    timexes = read_i2b2_2012(path, tags=("TIMEX3",))
    assert [(s.label, s.codes) for s in timexes.spans] == [
        ("DATE", ("2099-03-02",)), ("FREQUENCY", ("RPT2D",)), ("DURATION", ("P3D",))
    ]
    assert timexes.text.startswith("\nAdmission")  # the CDATA's leading newline is what offsets count


def test_2012_offsets_counted_without_the_leading_newline_are_shifted_and_reported(tmp_path):
    shifted = XML_2012
    for old, new in (('start="1" end="10"', 'start="0" end="9"'), ('start="47" end="64"', 'start="46" end="63"'),
                     ('start="69" end="89"', 'start="68" end="88"')):
        shifted = shifted.replace(old, new)
    doc = read_i2b2_2012(write(tmp_path / "2.xml", shifted))
    assert [s.start for s in doc.spans] == [1, 47, 69]
    assert [f.reason for f in doc.findings] == [REPAIRED_XML, OFFSET_SHIFT]


def test_2014_tags_read_with_offsets_into_the_raw_cdata(tmp_path):
    doc = read_i2b2_2014(write(tmp_path / "320-03.xml", XML_2014))
    assert doc.id == "320-03"
    assert spans_of(doc) == [
        ("DATE", 14, 24, "2099-05-03"), ("PATIENT", 34, 42, "Jane Roe"), ("AGE", 48, 50, "64"),
        ("PROFESSION", 54, 59, "nurse"), ("HOSPITAL", 68, 87, "Springfield General"),
    ]
    assert doc.findings == []


def test_2014_mismatched_tag_is_kept_and_reported_with_its_line(tmp_path):
    path = write(tmp_path / "a.xml", XML_2014.replace('text="64"', 'text="65"'))
    doc = read_i2b2_2014(path)
    assert len(doc.spans) == 5
    assert [(f.reason, f.location) for f in doc.findings] == [(TEXT_MISMATCH, f"{path}:11")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (XML_2014.replace("</TAGS>", "</TAG>"), r"a\.xml:14: malformed XML \(mismatched tag, column 3\)"),
        (XML_2014.replace('start="48"', 'start="x"'), r"a\.xml:11: <AGE id='P2'> lacks integer start/end"),
        (XML_2014.replace('end="87"', 'end="870"'), r"a\.xml:13: P4 offsets 68-870 lie outside the text"),
        (XML_2014.replace("<TEXT>", "<TEXTO>").replace("</TEXT>", "</TEXTO>"), r"a\.xml: no <TEXT> element"),
    ],
)
def test_broken_xml_raises_with_file_and_line(tmp_path, content, message):
    with pytest.raises(CorpusFormatError, match=message):
        read_i2b2_2014(write(tmp_path / "a.xml", content))


def test_xml_folder_reads_every_record_sorted_and_rejects_an_empty_folder(tmp_path):
    write(tmp_path / "set1" / "b.xml", XML_2014)
    write(tmp_path / "set2" / "a.xml", XML_2014)
    assert [d.id for d in read_xml_folder(tmp_path, read_i2b2_2014)] == ["a", "b"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusFormatError, match="no .xml files found"):
        read_xml_folder(tmp_path / "empty", read_i2b2_2014)
