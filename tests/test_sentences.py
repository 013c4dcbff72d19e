"""Sentence boundaries and word tokens keep exact offsets on clinical text."""

from __future__ import annotations

import pytest

from clinx_hub.documents import Span
from clinx_hub.sentences import _END, merge_across_spans, split_sentences, word_tokens


def sentences_of(text: str, spans: list[Span] | None = None) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text, spans or [])]


def test_abbreviations_initials_and_decimals_do_not_end_sentences():
    text = "Visto por el Dr. Pérez y la Dra. J. Gil. PSA de 1.16 ng/ml. Se pauta tto. con AAS. Fin."
    assert sentences_of(text) == [
        "Visto por el Dr. Pérez y la Dra. J. Gil.",
        "PSA de 1.16 ng/ml.",
        "Se pauta tto. con AAS.",
        "Fin.",
    ]


def test_no_ends_a_sentence_unless_a_number_follows():
    assert sentences_of("Alergias: no. Tabaco: sí. Refiere que no. Niega fiebre.") == [
        "Alergias: no.", "Tabaco: sí.", "Refiere que no.", "Niega fiebre.",
    ]
    assert sentences_of("Room No. 5 was clean. Fine.") == ["Room No. 5 was clean.", "Fine."]


def test_headings_and_list_items_without_final_punctuation_are_sentences():
    text = "ANAMNESIS\nMujer de 67 años\n- HTA\n- DM tipo 2\n1. Ingreso. 2. Alta\n\nEXPLORACIÓN"
    expected = ["ANAMNESIS", "Mujer de 67 años", "- HTA", "- DM tipo 2", "1. Ingreso.", "2. Alta", "EXPLORACIÓN"]
    assert sentences_of(text) == expected


def test_a_line_enumerator_does_not_end_a_sentence_but_a_final_number_does():
    assert sentences_of("1. Paciente estable.") == ["1. Paciente estable."]
    assert sentences_of("Ingresó el día 3. Después mejoró.") == ["Ingresó el día 3.", "Después mejoró."]


def test_hard_wrapped_lines_are_joined_and_offsets_are_exact():
    text = "\ufeffEl estudio lipídico, de\nvitaminas y hormonas fue normal.\r\nSin alergias."
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "El estudio lipídico, de\nvitaminas y hormonas fue normal.",
        "Sin alergias.",
    ]
    assert spans[0][0] == 1  # the byte-order mark stays character 0 and is outside the sentence


def test_no_sentence_cuts_an_annotated_span():
    text = "Vive en C. Mayor. 5 de Madrid. Fuma."
    assert sentences_of(text) == ["Vive en C. Mayor.", "5 de Madrid.", "Fuma."]
    address = Span(8, 29, "CALLE", "C. Mayor. 5 de Madrid")
    assert sentences_of(text, [address]) == ["Vive en C. Mayor. 5 de Madrid.", "Fuma."]


def test_merge_across_spans_only_joins_what_a_span_crosses():
    sentences = [(0, 4), (5, 9), (10, 14), (15, 19)]
    assert merge_across_spans(sentences, [Span(2, 6, "X"), Span(16, 18, "X")]) == [(0, 9), (10, 14), (15, 19)]
    assert merge_across_spans(sentences, [Span(3, 16, "X")]) == [(0, 19)]
    assert merge_across_spans(sentences, []) == sentences


def test_every_visible_character_is_in_exactly_one_sentence():
    text = "Dx: ca. de mama?  Sí!\tControl en 6 meses…Revisión\n\n  - TAC: normal"
    sentences = split_sentences(text)
    covered = [i for s, e in sentences for i in range(s, e)]
    assert len(covered) == len(set(covered))
    assert {i for i, c in enumerate(text) if not c.isspace()} <= set(covered)
    assert all(not text[s].isspace() and not text[e - 1].isspace() for s, e in sentences)


def test_word_tokens_split_symbols_and_skip_the_byte_order_mark():
    text = "\ufeffTA 120/80mmHg, Sr_X."
    assert [text[s:e] for s, e in word_tokens(text)] == ["TA", "120", "/", "80mmHg", ",", "Sr_X", "."]
    assert word_tokens(text, 4, 7) == [(4, 7)]


class _CountingText(str):
    """A text that adds up how many characters its slices, searches and whole-text methods go over.

    What the regular expressions scan in C is not counted: their part is checked separately.
    """

    touched = 0

    def __getitem__(self, key):
        item = super().__getitem__(key)
        self.touched += max(len(item), 1)
        return item


def _ranged(method):
    def counted(self, sub, start=None, end=None):
        low, high, _ = slice(start, end).indices(len(self))
        self.touched += max(high - low, 1)
        return method(self, sub, start, end)
    return counted


def _whole(method):
    def counted(self, *args, **kwargs):
        self.touched += len(self)
        return method(self, *args, **kwargs)
    return counted


for _name in ("find", "rfind", "index", "rindex", "count", "startswith", "endswith"):
    setattr(_CountingText, _name, _ranged(getattr(str, _name)))
for _name in ("strip", "lstrip", "rstrip", "lower", "upper", "casefold", "split", "rsplit", "splitlines",
              "replace", "partition", "rpartition", "translate", "encode", "__iter__", "__contains__"):
    setattr(_CountingText, _name, _whole(getattr(str, _name)))

# Invented; every rule is exercised: abbreviations, an initial, "No." before a number, enumerators.
_NOTE = "Paciente de 45 años con fiebre. Dr. Gil pauta tto. con AAS 100 mg. J. Gil. 1. Control en 3 días. " \
        "No. 5 Alergias: no. Fin! "


@pytest.mark.parametrize("separator", [" ", "\n"], ids=["one line", "line breaks"])
def test_splitting_goes_over_each_character_a_bounded_number_of_times(separator):
    # Searching back to the line start from every sentence end made a 16 MB one-line note take 76 s.
    text = _CountingText((_NOTE.replace("! ", "!" + separator) * 1000)[:100_000])
    sentences = split_sentences(text)
    assert len(sentences) > 4000
    assert text.touched <= 4 * len(text)


def test_a_sentence_end_match_starts_only_at_the_first_mark_of_a_run():
    # A match tried from every mark of a run rescans the rest of the run: 20,000 dots took 26 s.
    text = "Peso" + "." * 50 + " 70 kg. Fin"
    assert [i for i in range(len(text)) if _END.match(text, i)] == [4, 60]
    assert sentences_of(text) == ["Peso" + "." * 50, "70 kg.", "Fin"]
