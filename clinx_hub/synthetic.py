"""Invented clinical notes with de-identification entities, for demos and end-to-end runs without data.

Every word here is made up for clinx_hub: no sentence, name or place comes from a real corpus or a
real patient. The notes imitate the shape of Spanish (and English) discharge letters: headed
sections (anamnesis, exploración, pruebas, tratamiento, alta), header lines such as ``NHC: ...``,
lines that end without punctuation, entities at the start and at the end of sentences, and a few
notes long enough (over 600 words) to need several 256-subword windows. Both languages use the
same ``SYNTHETIC_LABELS``, so one model can be demoed on either.

Generation is deterministic: document ``i`` depends only on ``(language, seed, i)``, so the first
documents of a longer run equal those of a shorter one.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

from clinx_hub.documents import Document, Span
from clinx_hub.formats.brat import write_brat
from clinx_hub.sentences import split_sentences

SYNTHETIC_LABELS = (
    "NOMBRE_SUJETO_ASISTENCIA",
    "NOMBRE_PERSONAL_SANITARIO",
    "EDAD_SUJETO_ASISTENCIA",
    "FECHAS",
    "HOSPITAL",
    "TERRITORIO",
    "CALLE",
    "ID_SUJETO_ASISTENCIA",
    "CORREO_ELECTRONICO",
)
"""The entity labels of the synthetic notes (MEDDOCAN-style de-identification names, in both languages)."""

LANGUAGES = ("es", "en")
LONG_NOTE_MIN_WORDS = 650
SPLITS = ("train", "dev", "test")

# Template syntax: "{LABEL}" is an entity of that label, "{slot}" (lower case) a plain filler.
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

# ---------------------------------------------------------------------------------------------
# Vocabulary: small, generic, invented.

_VOCABULARY: dict[str, dict[str, list[str]]] = {
    "es": {
        "female": ["Lucía", "Marta", "Carmen", "Elena", "Rosa"],
        "male": ["Javier", "Pablo", "Andrés", "Sergio", "Tomás"],
        "title": ["el Dr.", "la Dra."],
        "surname": ["Ferrer", "Soto", "Molina", "Vidal", "Navarro", "Iglesias", "Campos", "Prieto", "Lozano", "Varela"],
        "hospital": [
            "Hospital General de Valdeluz",
            "Hospital Comarcal del Norte",
            "Clínica Santa Marta",
            "Hospital Universitario Los Olmos",
        ],
        "place": ["Valdeluz", "Monteclaro", "Villanueva del Río", "Puerto Alto", "Sierra Baja"],
        "street_kind": ["Calle", "Avenida", "Plaza", "Paseo"],
        "street_name": ["del Olmo", "de los Pinos", "Mayor", "de la Estación", "del Sol"],
        "month": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre".split(),
        "mail_domain": ["correo.example", "salud.example"],
        "symptom": ["dolor abdominal", "fiebre", "tos seca", "disnea de esfuerzo", "cefalea", "dolor torácico",
                    "mareo", "astenia"],
        "condition": ["hipertensión arterial", "diabetes mellitus tipo 2", "asma bronquial", "hipotiroidismo",
                      "dislipemia"],
        "drug": ["paracetamol", "ibuprofeno", "omeprazol", "amoxicilina", "metformina", "enalapril"],
        "dose": ["500 mg", "1 g", "20 mg", "850 mg", "10 mg"],
        "surgery": ["apendicitis", "hernia inguinal", "colecistitis"],
    },
    "en": {
        "female": ["Emily", "Grace", "Hannah", "Olivia", "Laura"],
        "male": ["James", "Daniel", "Thomas", "Henry", "Peter"],
        "title": ["Dr.", "Dr."],
        "surname": ["Walker", "Bennett", "Carter", "Hughes", "Foster", "Reed", "Palmer", "Ward", "Mills", "Fisher"],
        "hospital": [
            "Valdeluz General Hospital",
            "Northfield Community Hospital",
            "Saint Martha Clinic",
            "Oakridge University Hospital",
        ],
        "place": ["Millbrook", "Northfield", "Cedar Falls", "Oakridge", "Lake Morton"],
        "street_kind": ["Street", "Avenue", "Road", "Lane"],
        "street_name": ["Elm", "Maple", "Station", "Park", "Hill"],
        "month": "January February March April May June July August September October November December".split(),
        "mail_domain": ["mail.example", "health.example"],
        "symptom": ["abdominal pain", "fever", "dry cough", "exertional dyspnoea", "headache", "chest pain",
                    "dizziness", "fatigue"],
        "condition": ["arterial hypertension", "type 2 diabetes mellitus", "bronchial asthma", "hypothyroidism",
                      "dyslipidaemia"],
        "drug": ["paracetamol", "ibuprofen", "omeprazole", "amoxicillin", "metformin", "enalapril"],
        "dose": ["500 mg", "1 g", "20 mg", "850 mg", "10 mg"],
        "surgery": ["appendicitis", "inguinal hernia", "cholecystitis"],
    },
}

# ---------------------------------------------------------------------------------------------
# Sections: a heading and sentence templates, with and without entities.

_SECTIONS: dict[str, dict[str, dict[str, object]]] = {
    "es": {
        "anamnesis": {
            "heading": "ANAMNESIS",
            "entities": [
                "{NOMBRE_SUJETO_ASISTENCIA}, de {EDAD_SUJETO_ASISTENCIA}, acude a urgencias del {HOSPITAL} por "
                "{symptom} de {days} días de evolución.",
                "Paciente de {EDAD_SUJETO_ASISTENCIA} con derivación desde su centro de salud de {TERRITORIO} por "
                "{symptom}.",
                "Refiere {symptom} desde el {FECHAS}, sin otra clínica asociada.",
                "Antecedentes de {condition} en seguimiento por {title} {NOMBRE_PERSONAL_SANITARIO}.",
                "NHC {ID_SUJETO_ASISTENCIA}, valorado previamente en la consulta de {TERRITORIO}.",
                "Vive con su familia en {TERRITORIO}.",
            ],
            "plain": [
                "No refiere alergias medicamentosas conocidas.",
                "Niega hábitos tóxicos.",
                "Antecedentes personales de {condition} en tratamiento con {drug}.",
                "Intervenido de {surgery} hace {years} años sin complicaciones.",
                "Refiere {symptom} de predominio nocturno que no cede con la analgesia habitual.",
                "Buena calidad de vida previa, independiente para las actividades básicas.",
            ],
        },
        "exploracion": {
            "heading": "EXPLORACIÓN FÍSICA",
            "entities": [
                "Exploración realizada por {title} {NOMBRE_PERSONAL_SANITARIO} el {FECHAS}.",
                "{NOMBRE_SUJETO_ASISTENCIA} presenta buen estado general y colabora en la exploración.",
            ],
            "plain": [
                "Buen estado general, consciente y orientado.",
                "TA {ta} mmHg, FC {fc} lpm, temperatura {temp} ºC.",
                "Auscultación cardiopulmonar: tonos rítmicos sin soplos, murmullo vesicular conservado.",
                "Abdomen blando y depresible, no doloroso a la palpación.",
                "Exploración neurológica sin focalidad.",
                "Extremidades sin edemas ni signos de trombosis venosa profunda.",
            ],
        },
        "pruebas": {
            "heading": "PRUEBAS COMPLEMENTARIAS",
            "entities": [
                "Analítica del {FECHAS} sin alteraciones relevantes.",
                "Se solicita TC en el {HOSPITAL}, pendiente de resultado.",
            ],
            "plain": [
                "Analítica: hemoglobina {hb} g/dL, leucocitos {leu} mil/µL, PCR {pcr} mg/L.",
                "La radiografía de tórax no muestra condensaciones.",
                "Se realiza ecografía abdominal que resulta normal.",
                "Electrocardiograma en ritmo sinusal a {fc} lpm.",
            ],
        },
        "tratamiento": {
            "heading": "TRATAMIENTO",
            "entities": [
                "Control en consultas externas del {HOSPITAL} el {FECHAS}.",
                "Para cualquier duda puede escribir a {CORREO_ELECTRONICO}",
                "Se envía la receta a la farmacia de {CALLE}, {TERRITORIO}.",
            ],
            "plain": [
                "Se pauta {drug} {dose} cada {hours} horas durante {days} días.",
                "Se recomienda reposo relativo y abundante hidratación.",
                "Se ajusta la dosis de {drug} según la función renal.",
                "Acudir a urgencias si hay empeoramiento clínico.",
            ],
        },
        "alta": {
            "heading": "INFORME DE ALTA",
            "entities": [
                "{FECHAS}: alta a domicilio con mejoría clínica.",
                "Se remite informe a su médico de atención primaria, {NOMBRE_PERSONAL_SANITARIO}.",
                "Dirección de contacto: {CALLE}, {TERRITORIO}.",
                "Firmado: {NOMBRE_PERSONAL_SANITARIO}",
            ],
            "plain": [
                "Evolución favorable durante el ingreso, con buena tolerancia oral.",
                "Paciente asintomático en el momento del alta.",
                "Diagnóstico principal: descompensación de {condition}.",
            ],
        },
    },
    "en": {
        "anamnesis": {
            "heading": "HISTORY",
            "entities": [
                "{NOMBRE_SUJETO_ASISTENCIA}, aged {EDAD_SUJETO_ASISTENCIA}, presented to the emergency department of "
                "{HOSPITAL} with {symptom} of {days} days' duration.",
                "Patient aged {EDAD_SUJETO_ASISTENCIA}, referred by the primary care centre in {TERRITORIO} because of "
                "{symptom}.",
                "Reports {symptom} since {FECHAS}, without other symptoms.",
                "History of {condition}, followed up by {title} {NOMBRE_PERSONAL_SANITARIO}.",
                "MRN {ID_SUJETO_ASISTENCIA}, previously seen at the clinic in {TERRITORIO}.",
                "Lives with family in {TERRITORIO}.",
            ],
            "plain": [
                "No known drug allergies.",
                "Denies smoking or alcohol use.",
                "Past medical history of {condition} treated with {drug}.",
                "Underwent surgery for {surgery} {years} years ago without complications.",
                "Reports {symptom}, worse at night, not relieved by usual analgesia.",
                "Good previous quality of life, independent in daily activities.",
            ],
        },
        "exploracion": {
            "heading": "PHYSICAL EXAMINATION",
            "entities": [
                "Examined by {title} {NOMBRE_PERSONAL_SANITARIO} on {FECHAS}.",
                "{NOMBRE_SUJETO_ASISTENCIA} is alert, oriented and cooperative.",
            ],
            "plain": [
                "Good general condition, alert and oriented.",
                "BP {ta} mmHg, HR {fc} bpm, temperature {temp} °C.",
                "Heart and lung auscultation: regular rhythm without murmurs, normal breath sounds.",
                "Abdomen soft, not tender on palpation.",
                "No focal neurological deficit.",
                "No leg oedema or signs of deep vein thrombosis.",
            ],
        },
        "pruebas": {
            "heading": "INVESTIGATIONS",
            "entities": [
                "Blood tests on {FECHAS} without relevant findings.",
                "A CT scan was requested at {HOSPITAL}, result pending.",
            ],
            "plain": [
                "Bloods: haemoglobin {hb} g/dL, white cells {leu} x10^9/L, CRP {pcr} mg/L.",
                "Chest X-ray shows no consolidation.",
                "Abdominal ultrasound is normal.",
                "ECG in sinus rhythm at {fc} bpm.",
            ],
        },
        "tratamiento": {
            "heading": "TREATMENT",
            "entities": [
                "Follow-up at the outpatient clinic of {HOSPITAL} on {FECHAS}.",
                "For any questions please write to {CORREO_ELECTRONICO}",
                "Prescription sent to the pharmacy at {CALLE}, {TERRITORIO}.",
            ],
            "plain": [
                "Started on {drug} {dose} every {hours} hours for {days} days.",
                "Relative rest and plenty of fluids are advised.",
                "The dose of {drug} was adjusted to renal function.",
                "Return to the emergency department if symptoms get worse.",
            ],
        },
        "alta": {
            "heading": "DISCHARGE SUMMARY",
            "entities": [
                "{FECHAS}: discharged home with clinical improvement.",
                "A report is sent to the general practitioner, {NOMBRE_PERSONAL_SANITARIO}.",
                "Contact address: {CALLE}, {TERRITORIO}.",
                "Signed: {NOMBRE_PERSONAL_SANITARIO}",
            ],
            "plain": [
                "Good progress during admission, tolerating oral intake.",
                "Patient asymptomatic at discharge.",
                "Main diagnosis: decompensated {condition}.",
            ],
        },
    },
}

# Header lines opening some notes; each holds one entity that ends its line.
_HEADER: dict[str, list[str]] = {
    "es": [
        "Nombre: {NOMBRE_SUJETO_ASISTENCIA}",
        "NHC: {ID_SUJETO_ASISTENCIA}",
        "Domicilio: {CALLE}, {TERRITORIO}",
        "Fecha de ingreso: {FECHAS}",
        "Correo electrónico: {CORREO_ELECTRONICO}",
        "Médico responsable: {NOMBRE_PERSONAL_SANITARIO}",
    ],
    "en": [
        "Name: {NOMBRE_SUJETO_ASISTENCIA}",
        "MRN: {ID_SUJETO_ASISTENCIA}",
        "Address: {CALLE}, {TERRITORIO}",
        "Admission date: {FECHAS}",
        "Email: {CORREO_ELECTRONICO}",
        "Attending physician: {NOMBRE_PERSONAL_SANITARIO}",
    ],
}

_EXAMPLE_NOTES: dict[str, list[str]] = {
    "es": [
        "Paciente de 58 años que acude al Hospital General de Valdeluz el 4 de mayo de 2021 por dolor torácico. "
        "Vive en Monteclaro. Le atiende la Dra. Elena Vidal Campos.",
        "Nombre: Tomás Prieto Lozano\nNHC: 40318275\nDomicilio: Calle del Olmo 12, Puerto Alto\n"
        "Alta el 12/03/2020 con buena evolución. Para cualquier duda escriba a tomas.prieto@correo.example",
        "Marta Soto Varela, de 34 años, refiere cefalea desde el 2 de febrero de 2022. "
        "Exploración sin hallazgos. Control en la Clínica Santa Marta dentro de un mes.",
    ],
    "en": [
        "A 61-year-old patient attended Valdeluz General Hospital on May 4, 2021 with chest pain. "
        "Lives in Cedar Falls. Seen by Dr. Hannah Reed.",
        "Name: Peter Hughes\nMRN: 40318275\nAddress: 12 Elm Street, Oakridge\n"
        "Discharged on 03/12/2020 in good condition. For any questions write to peter.hughes@mail.example",
        "Grace Foster, aged 34 years, reports headache since February 2, 2022. "
        "Examination unremarkable. Follow-up at Saint Martha Clinic in one month.",
    ],
}


def synthetic_documents(n: int, *, language: str = "es", seed: int = 0) -> list[Document]:
    """``n`` invented clinical notes with exact entity offsets and sentence boundaries.

    Every sixth note (index 2, 8, ...) is long (over 600 words, all sections); every sixth from
    index 5 has no entities; the others are one or two sections with a few entities each.

    >>> docs = synthetic_documents(3, seed=1)
    >>> [d.id for d in docs]
    ['synthetic-es-1-0000', 'synthetic-es-1-0001', 'synthetic-es-1-0002']
    >>> all(d.text[s.start : s.end] == s.text for d in docs for s in d.spans)
    True
    """
    return _generate(n, language, str(seed))


def write_synthetic_corpus(
    out_dir: Path, *, n_train: int, n_dev: int, n_test: int, language: str = "es", seed: int = 0
) -> Path:
    """Write ``train/``, ``dev/`` and ``test/`` BRAT folders of synthetic notes; returns ``out_dir``.

    The splits hold different notes (each split has its own generator stream and document ids).

    >>> import tempfile
    >>> out = write_synthetic_corpus(Path(tempfile.mkdtemp()), n_train=2, n_dev=1, n_test=1)
    >>> sorted(p.name for p in (out / "dev").iterdir())
    ['synthetic-es-0-dev-0000.ann', 'synthetic-es-0-dev-0000.txt']
    """
    out_dir = Path(out_dir)
    for split, n in zip(SPLITS, (n_train, n_dev, n_test)):
        write_brat(_generate(n, language, f"{seed}-{split}"), out_dir / split)
    return out_dir


def example_notes(language: str) -> list[str]:
    """Three short invented notes to paste into a demo.

    >>> len(example_notes("en"))
    3
    """
    _check_language(language)
    return list(_EXAMPLE_NOTES[language])


# ---------------------------------------------------------------------------------------------


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"no synthetic notes in language {language!r}; choose one of {', '.join(LANGUAGES)}")


def _generate(n: int, language: str, key: str) -> list[Document]:
    _check_language(language)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return [
        _document(f"synthetic-{language}-{key}-{i:04d}", language, random.Random(f"{language}|{key}|{i}"), i)
        for i in range(n)
    ]


class _NoteBuilder:
    """Appends text and entities, so every span's offsets are those of the text it was appended as."""

    def __init__(self, language: str, rng: random.Random) -> None:
        self.language = language
        self.rng = rng
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[Span] = []
        self.words = 0
        # One patient per note: name, age and record number stay the same wherever they recur.
        self.patient = _person(language, rng)
        self.patient_age = rng.randint(18, 95)
        self.patient_id = str(rng.randint(10_000_000, 99_999_999))
        self.staff_female = rng.random() < 0.5  # set by a {title} slot for the name that follows it

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)
        self.words += len(text.split())

    def sentence(self, template: str) -> None:
        """Fill ``template``: upper-case placeholders become entities, lower-case ones plain words."""
        position = 0
        for match in _PLACEHOLDER.finditer(template):
            self.add(template[position : match.start()])
            name = match.group(1)
            if name.isupper():
                value = _entity_value(name, self)
                self.spans.append(Span(self.length, self.length + len(value), name, value, f"T{len(self.spans) + 1}"))
            else:
                value = _slot_value(name, self)
            self.add(value)
            position = match.end()
        self.add(template[position:])

    def document(self, doc_id: str, kind: str) -> Document:
        text = "".join(self.parts)
        return Document(
            id=doc_id,
            text=text,
            spans=self.spans,
            sentences=split_sentences(text, self.spans),
            metadata={"source": "synthetic", "language": self.language, "kind": kind},
        )


def _document(doc_id: str, language: str, rng: random.Random, index: int) -> Document:
    sections = _SECTIONS[language]
    note = _NoteBuilder(language, rng)
    if index % 6 == 2:
        _long_note(note, sections)
        return note.document(doc_id, "long")
    with_entities = index % 6 != 5
    kind = rng.choice(list(sections))
    if with_entities and rng.random() < 0.5:
        for line in rng.sample(_HEADER[language], rng.randint(2, 4)):
            note.sentence(line)
            note.add("\n")
        note.add("\n")
    kinds = [kind] + ([rng.choice([k for k in sections if k != kind])] if rng.random() < 0.4 else [])
    for number, section_kind in enumerate(kinds):
        if number:
            note.add("\n\n")
        _section(note, sections[section_kind], with_entities, n_sentences=rng.randint(3, 6))
    note.add("\n")
    return note.document(doc_id, kind if with_entities else f"{kind}-no-entities")


def _long_note(note: _NoteBuilder, sections: dict[str, dict[str, object]]) -> None:
    """A header, then all sections in order, again and again, until the note passes the word count."""
    for line in _HEADER[note.language]:
        note.sentence(line)
        note.add("\n")
    for _ in range(100):  # bounded; three rounds are always enough
        for section in sections.values():
            note.add("\n")
            _section(note, section, True, n_sentences=note.rng.randint(5, 8))
            note.add("\n")
        if note.words > LONG_NOTE_MIN_WORDS:
            break


def _section(note: _NoteBuilder, section: dict[str, object], with_entities: bool, n_sentences: int) -> None:
    """A heading line, then paragraphs of distinct sentences (two or more with entities if ``with_entities``)."""
    rng = note.rng
    plain, entities = list(section["plain"]), list(section["entities"])  # type: ignore[call-overload]
    chosen = rng.sample(entities, min(2, len(entities))) if with_entities else []
    rest = [t for t in plain + (entities if with_entities else []) if t not in chosen]
    chosen += rng.sample(rest, min(max(n_sentences - len(chosen), 1), len(rest)))
    rng.shuffle(chosen)
    note.add(f"{section['heading']}\n")
    for number, template in enumerate(chosen):
        if number:
            # A line without final punctuation (a signature, an e-mail) ends with its line, as in real notes.
            unfinished = not chosen[number - 1].endswith((".", ":"))
            note.add("\n" if unfinished else "\n\n" if rng.random() < 0.2 else " ")
        note.sentence(template)


def _person(language: str, rng: random.Random, female: bool | None = None) -> tuple[str, str, str]:
    words = _VOCABULARY[language]
    female = rng.random() < 0.5 if female is None else female
    first = rng.choice(words["female" if female else "male"])
    return first, rng.choice(words["surname"]), rng.choice(words["surname"])


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


def _entity_value(label: str, note: _NoteBuilder) -> str:
    words, rng, language = _VOCABULARY[note.language], note.rng, note.language
    first, surname, second = note.patient
    if label == "NOMBRE_SUJETO_ASISTENCIA":
        # The patient keeps one name through a note; Spanish names carry two surnames.
        return f"{first} {surname} {second}" if language == "es" else f"{first} {surname}"
    if label == "NOMBRE_PERSONAL_SANITARIO":
        other = note.patient
        for _ in range(10):  # bounded: a clinician other than the patient
            if other[:2] != note.patient[:2]:
                break
            other = _person(language, rng, female=note.staff_female)
        note.staff_female = rng.random() < 0.5
        with_second_surname = language == "es" and rng.random() < 0.5
        return " ".join(other if with_second_surname else other[:2])
    if label == "EDAD_SUJETO_ASISTENCIA":
        return f"{note.patient_age} {'años' if language == 'es' else 'years'}"
    if label == "FECHAS":
        return _date(note)
    if label == "HOSPITAL":
        return rng.choice(words["hospital"])
    if label == "TERRITORIO":
        return rng.choice(words["place"])
    if label == "CALLE":
        number = rng.randint(1, 120)
        kind, name = rng.choice(words["street_kind"]), rng.choice(words["street_name"])
        return f"{kind} {name} {number}" if language == "es" else f"{number} {name} {kind}"
    if label == "ID_SUJETO_ASISTENCIA":
        return note.patient_id
    if label == "CORREO_ELECTRONICO":
        return f"{_ascii(first)}.{_ascii(surname)}@{rng.choice(words['mail_domain'])}"
    raise KeyError(f"no synthetic values for label {label}")


def _date(note: _NoteBuilder) -> str:
    rng, months = note.rng, _VOCABULARY[note.language]["month"]
    day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(2015, 2023)
    style = rng.randrange(3)
    if style == 0:
        return f"{day:02d}/{month:02d}/{year}" if note.language == "es" else f"{month:02d}/{day:02d}/{year}"
    if style == 1:
        name = months[month - 1]
        return f"{day} de {name} de {year}" if note.language == "es" else f"{name} {day}, {year}"
    return f"{year}-{month:02d}-{day:02d}"


_SLOTS: dict[str, Callable[[random.Random, dict[str, list[str]]], str]] = {
    "symptom": lambda rng, w: rng.choice(w["symptom"]),
    "condition": lambda rng, w: rng.choice(w["condition"]),
    "drug": lambda rng, w: rng.choice(w["drug"]),
    "dose": lambda rng, w: rng.choice(w["dose"]),
    "surgery": lambda rng, w: rng.choice(w["surgery"]),
    "days": lambda rng, w: str(rng.randint(2, 14)),
    "years": lambda rng, w: str(rng.randint(2, 30)),
    "hours": lambda rng, w: rng.choice(["6", "8", "12", "24"]),
    "ta": lambda rng, w: f"{rng.randint(100, 160)}/{rng.randint(60, 95)}",
    "fc": lambda rng, w: str(rng.randint(55, 110)),
    "temp": lambda rng, w: f"{rng.randint(36, 38)}.{rng.randint(0, 9)}",
    "hb": lambda rng, w: f"{rng.randint(10, 16)}",
    "leu": lambda rng, w: f"{rng.randint(4, 15)}",
    "pcr": lambda rng, w: f"{rng.randint(1, 120)}",
}


def _slot_value(name: str, note: _NoteBuilder) -> str:
    if name == "title":
        note.staff_female = note.rng.random() < 0.5
        return _VOCABULARY[note.language]["title"][int(note.staff_female)]
    value = _SLOTS[name](note.rng, _VOCABULARY[note.language])
    # Spanish writes decimals with a comma.
    return value.replace(".", ",") if name == "temp" and note.language == "es" else value
