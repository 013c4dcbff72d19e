"""Output forms of predicted spans: records, JSON lines, highlights, de-identification."""

from __future__ import annotations

import doctest
import json

import pytest

import clinx_hub.outputs
from clinx_hub import Span
from clinx_hub.outputs import deidentify, highlighted, jsonl_lines

TEXT = "Ana López vive en Madrid. Ana López nació el 3 de mayo de 1950 en Madrid."
SPANS = [
    Span(0, 9, "NOMBRE_SUJETO_ASISTENCIA", "Ana López"),
    Span(18, 24, "TERRITORIO", "Madrid"),
    Span(26, 35, "NOMBRE_SUJETO_ASISTENCIA", "Ana López"),
    Span(45, 62, "FECHAS", "3 de mayo de 1950"),
    Span(66, 72, "TERRITORIO", "Madrid"),
]


def test_doctests() -> None:
    assert doctest.testmod(clinx_hub.outputs).failed == 0


def test_highlighted_pieces_rebuild_the_text_exactly() -> None:
    pieces = highlighted(TEXT, SPANS)
    assert "".join(p for p, _ in pieces) == TEXT
    assert [p for p, label in pieces if label] == [s.text for s in SPANS]
    assert highlighted("", []) == [] and highlighted("abc", []) == [("abc", None)]
    # overlapping spans (an ensemble never produces them, a user list might): first one wins, text intact
    overlapping = highlighted("abcdef", [Span(0, 4, "A"), Span(2, 6, "B")])
    assert overlapping == [("abcd", "A"), ("ef", None)]


def test_label_mode_masks_every_span() -> None:
    masked = deidentify(TEXT, SPANS)
    assert "Ana" not in masked and "Madrid" not in masked and "1950" not in masked
    assert masked.count("[NOMBRE_SUJETO_ASISTENCIA]") == 2 and masked.endswith("en [TERRITORIO].")


def test_surrogates_are_consistent_and_replace_the_originals() -> None:
    replaced = deidentify(TEXT, SPANS, mode="surrogate")
    assert "Ana López" not in replaced and "Madrid" not in replaced
    first_name = replaced.split(" vive en ")[0]
    assert replaced.count(first_name) == 2  # the same person stays one person
    assert deidentify(TEXT, SPANS, mode="surrogate") == replaced
    assert deidentify("x", [Span(0, 1, "SOMETHING_ELSE")], mode="surrogate") == "[SOMETHING_ELSE]"
    with pytest.raises(ValueError, match="mode"):
        deidentify(TEXT, SPANS, mode="hash")


def test_jsonl_lines_round_trip() -> None:
    [line] = jsonl_lines(["n1"], [SPANS])
    row = json.loads(line)
    assert row["id"] == "n1" and [(s["start"], s["end"], s["label"]) for s in row["spans"]] == [
        (s.start, s.end, s.label) for s in SPANS
    ]
