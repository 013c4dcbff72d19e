"""Convert a task into a Hub-native dataset folder: parquet per split and config, plus a dataset card.

Two configs: ``documents`` (text, every gold span with codes, sentence offsets, and the same spans
as BigBio KB ``entities``) and ``sentences`` (word tokens with IOB2 tags from the spans a flat
tagger can represent). The folder loads offline
with ``datasets.load_dataset(folder, config)`` and can be pushed to the Hub as it is. The card
holds statistics, licence and citation, never document text.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from clinx_hub.corpora import get_task, load_task
from clinx_hub.documents import Document
from clinx_hub.flat_tags import bio_tags, flat_spans
from clinx_hub.folders import CARD_FILE
from clinx_hub.sentences import word_tokens
from clinx_hub.stats import split_statistics
from clinx_hub.task import Task

CONFIGS = ("documents", "sentences")
# The agreement that binds a task whose licence is "other" (the card's license_name, linked to the
# task's homepage). Any other "other" stays unnamed: only its user knows it (--license).
LICENSE_NAMES = {
    task: "n2c2-data-use-agreement" for task in ("i2b2-2006", "i2b2-2010", "i2b2-2012-c", "i2b2-2012-t", "i2b2-2014")
}
CODE_SYSTEMS = {"cantemist": "ICD-O-3"}
"""The code system of a task's AnnotatorNotes codes (BigBio's ``db_name``); a BRAT ``N`` line names its own."""
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


def size_category(documents: int) -> str:
    """The Hub's ``size_categories`` value for a number of rows (here: documents, the default config's rows).

    >>> size_category(1000), size_category(999)
    ('1K<n<10K', 'n<1K')
    """
    for limit, name in SIZE_CATEGORIES:
        if documents < limit:
            return name
    return "1M<n<10M"


def license_fields(task: Task, license: str | None = None) -> dict[str, str]:
    """A card's licence fields: the user's licence id, else the task's, named where the task's is "other".

    >>> license_fields(get_task("i2b2-2014"))["license_name"]
    'n2c2-data-use-agreement'
    >>> license_fields(get_task("brat")), license_fields(get_task("brat"), "cc-by-4.0")
    ({'license': 'other'}, {'license': 'cc-by-4.0'})
    """
    if license:
        return {"license": license}
    fields = {"license": task.license}
    if task.license == "other" and task.name in LICENSE_NAMES:
        fields["license_name"] = LICENSE_NAMES[task.name]
        if task.homepage:
            fields["license_link"] = task.homepage
    return fields


def tag_names(labels: tuple[str, ...]) -> list[str]:
    """The IOB2 tag set of the ``sentences`` config, in ``ClassLabel`` order.

    >>> tag_names(("EDAD", "FECHAS"))
    ['O', 'B-EDAD', 'I-EDAD', 'B-FECHAS', 'I-FECHAS']
    """
    return ["O", *(f"{prefix}-{label}" for label in labels for prefix in ("B", "I"))]


def _features(config: str, tags: list[str]):  # noqa: ANN202 - datasets.Features, imported lazily
    from datasets import ClassLabel, Features, List, Value

    if config == "documents":
        span = {
            "id": Value("string"), "label": Value("string"), "start": Value("int32"), "end": Value("int32"),
            "text": Value("string"), "codes": List(Value("string")),
            "fragments": List({"start": Value("int32"), "end": Value("int32")}),
        }
        entity = {  # BigBio KB's entity, field for field
            "id": Value("string"), "type": Value("string"), "text": List(Value("string")),
            "offsets": List(List(Value("int32"))),
            "normalized": List({"db_name": Value("string"), "db_id": Value("string")}),
        }
        return Features({
            "id": Value("string"),
            "document_id": Value("string"),
            "text": Value("string"),
            "spans": List(span),
            "entities": List(entity),
            "sentences": List({"start": Value("int32"), "end": Value("int32")}),
        })
    return Features({
        "id": Value("string"),
        "document_id": Value("string"),
        "sentence_index": Value("int32"),
        "start": Value("int32"),
        "end": Value("int32"),
        "tokens": List(Value("string")),
        "token_starts": List(Value("int32")),
        "token_ends": List(Value("int32")),
        "ner_tags": List(ClassLabel(names=tags)),
    })


def document_rows(documents: list[Document], code_system: str = "") -> list[dict]:
    """Rows of the ``documents`` config; span ids are prefixed with the document id to be unique.

    ``entities`` holds each span as BigBio KB does: ``type``, ``offsets`` (one ``[start, end]`` per
    fragment), ``text`` (the document's text at each offset) and ``normalized`` codes.
    """
    rows = []
    for doc in documents:
        spans, entities = [], []
        for span in doc.spans:
            span_id = f"{doc.id}-{span.id}" if span.id else ""
            pieces = list(span.fragments) or [(span.start, span.end)]
            spans.append({
                "id": span_id, "label": span.label, "start": span.start, "end": span.end, "text": span.text,
                "codes": list(span.codes), "fragments": [{"start": s, "end": e} for s, e in span.fragments],
            })
            entities.append({
                "id": span_id, "type": span.label, "text": [doc.text[s:e] for s, e in pieces],
                "offsets": [[s, e] for s, e in pieces], "normalized": [_normalized(c, code_system) for c in span.codes],
            })
        rows.append({
            "id": doc.id, "document_id": doc.id, "text": doc.text, "spans": spans, "entities": entities,
            "sentences": [{"start": s, "end": e} for s, e in doc.sentences],
        })
    return rows


def _normalized(code: str, code_system: str) -> dict[str, str]:
    # A BRAT N line reads "resource:reference"; an AnnotatorNotes code is in the task's code system.
    resource, colon, reference = code.partition(":")
    if colon and resource and reference and not code_system:
        return {"db_name": resource, "db_id": reference}
    return {"db_name": code_system, "db_id": code}


def sentence_rows(documents: list[Document]) -> list[dict]:
    """Rows of the ``sentences`` config: word tokens of each sentence with IOB2 tags (strings)."""
    rows = []
    for doc in documents:
        kept = flat_spans(doc).kept
        for index, (start, end) in enumerate(doc.sentences):
            tokens = word_tokens(doc.text, start, end)
            inside = [s for s in kept if start <= s.start and s.end <= end]
            rows.append({
                "id": f"{doc.id}-{index}",
                "document_id": doc.id,
                "sentence_index": index,
                "start": start,
                "end": end,
                "tokens": [doc.text[s:e] for s, e in tokens],
                "token_starts": [s for s, _ in tokens],
                "token_ends": [e for _, e in tokens],
                "ner_tags": bio_tags(tokens, inside),
            })
    return rows


def convert(
    task_name: str, data_dir: Path, out: Path, *, overwrite: bool = False, license: str | None = None, progress=None
) -> Path:
    """Write task ``task_name`` read from ``data_dir`` as a Hub-ready dataset folder at ``out``.

    ``license`` (a Hub licence id) goes into the card instead of the task's own licence;
    ``progress`` (a tqdm bar) gets ``update(documents)`` as each split is written.

    >>> convert("meddocan", Path("../shared/corpora"), Path("meddocan-hub"))  # doctest: +SKIP
    >>> datasets.load_dataset("meddocan-hub", "sentences")  # doctest: +SKIP
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    task = get_task(task_name)
    splits = load_task(task_name, data_dir)
    _prepare(out, overwrite)
    stats = {split: split_statistics(docs, task.labels, with_text=False) for split, docs in splits.items()}
    # Labels found beyond the declared set (all of them for a plain "brat" folder) are kept, not lost.
    found = {label for s in stats.values() for label in s["labels"]}
    labels = task.labels + tuple(sorted(found - set(task.labels)))
    tags = tag_names(labels)
    tag_ids = {tag: i for i, tag in enumerate(tags)}
    for split, documents in splits.items():
        sentences = sentence_rows(documents)
        for row in sentences:
            row["ner_tags"] = [tag_ids[tag] for tag in row["ner_tags"]]
        stats[split]["tokens"] = sum(len(row["tokens"]) for row in sentences)
        documents_rows = document_rows(documents, CODE_SYSTEMS.get(task.name, ""))
        for config, rows in (("documents", documents_rows), ("sentences", sentences)):
            folder = out / config
            folder.mkdir(parents=True, exist_ok=True)
            # Written with pyarrow directly (Dataset.from_list encodes row by row, 10x slower); the
            # schema's "huggingface" metadata carries the Features, ClassLabel names included.
            table = pa.Table.from_pylist(rows, schema=_features(config, tags).arrow_schema)
            pq.write_table(table, folder / f"{split}-00000-of-00001.parquet")
        if progress is not None:
            progress.update(len(documents))
    card = dataset_card(task, stats, list(splits), labels, license=license)
    (out / CARD_FILE).write_text(card, encoding="utf-8")
    return out


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty (use --overwrite to replace it)")
        # Only what convert writes is removed, so a stray file of the user's survives.
        for config in CONFIGS:
            shutil.rmtree(out / config, ignore_errors=True)
        (out / CARD_FILE).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def dataset_card(
    task: Task, stats: dict[str, dict], splits: list[str], labels: tuple[str, ...], *, license: str | None = None
) -> str:
    """The ``README.md`` of a converted folder: YAML metadata with ``configs``, then statistics and citation."""
    licence = license_fields(task, license)
    metadata: dict[str, object] = {
        "language": [task.language],
        **licence,
        "pretty_name": f"{task.name} (clinx_hub)",
        "size_categories": [size_category(sum(stats[split]["documents"] for split in splits))],
        # The corpus as its organisers distribute it, converted here (not derived from another Hub dataset).
        "source_datasets": ["original"],
        "task_categories": ["token-classification"],
        "task_ids": ["named-entity-recognition"],
        "tags": ["clinical", "clin-x", "clinx_hub"],
        "configs": [
            {
                "config_name": config,
                **({"default": True} if config == "documents" else {}),
                "data_files": [{"split": split, "path": f"{config}/{split}-*.parquet"} for split in splits],
            }
            for config in CONFIGS
        ],
    }
    if license:
        licence_line = f"{license} (given at conversion; the task's own: {task.license})"
    elif licence["license"] == "other" and "license_name" not in licence:
        licence_line = "other, not named by the task: the data's own terms apply (`clinx data convert --license` sets it)"
    else:
        licence_line = task.license
    lines = [
        "---",
        yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True).rstrip(),
        "---",
        "",
        f"# {task.name}",
        "",
        task.description,
        "",
        f"- Homepage: {task.homepage}",
        f"- Licence: {licence_line}" + (f" ({task.license_note})" if task.license_note else ""),
        f"- Protocol: train on {' + '.join(task.train_splits)}, report on {task.report_split}"
        " (strict span + label micro-F1; set-aside gold spans stay in the gold set).",
        *(f"- {note}" for note in task.notes),
        "",
        "## Configs",
        "",
        "- `documents` (the default; one row per document): `id`, `text`, `spans` (id, label, start, end, text, codes,"
        " fragments; character offsets with `end` exclusive, a byte-order mark counting as character 0),"
        " `entities` (the same spans in the BigBio KB schema, below) and `sentences` (start, end).",
        "- `sentences`: word tokens of each sentence with `token_starts`/`token_ends` (document offsets) and"
        " IOB2 `ner_tags` built from the spans a flat tagger can represent.",
        "",
        "```python",
        "from datasets import load_dataset",
        'documents = load_dataset("path/or/repo", "documents")',
        'sentences = load_dataset("path/or/repo", "sentences")',
        "```",
        "",
        "### As BigBio KB",
        "",
        "The `documents` config follows the BigBio KB schema (`bigbio_kb`) where the two meet:",
        "",
        "| BigBio KB | here |",
        "|---|---|",
        "| `id`, `document_id` | `id`, `document_id` (both the document id) |",
        "| `passages` | none stored: the whole document is `text`, its sentences are `sentences` (offsets into `text`) |",
        "| `entities[].id` | `entities[].id` (the annotation id, prefixed with the document id) |",
        "| `entities[].type` | `entities[].type` (the label) |",
        "| `entities[].offsets` | `entities[].offsets`: one `[start, end]` per fragment (several for a discontinuous span) |",
        "| `entities[].text` | `entities[].text`: `text[start:end]` for each offset |",
        "| `entities[].normalized` | `entities[].normalized`: `{db_name, db_id}` per code"
        + (f" ({CODE_SYSTEMS[task.name]} codes)" if task.name in CODE_SYSTEMS else "") + "; empty where none |",
        "| `events`, `coreferences`, `relations` | not stored (not part of this task) |",
        "",
        "## Labels",
        "",
        ", ".join(f"`{label}`" for label in labels),
        "",
        "## Statistics",
        "",
        "| split | documents | sentences | tokens | spans | flat spans | set aside (reason: count) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for split in splits:
        s = stats[split]
        reasons = ", ".join(f"{r}: {n}" for r, n in s["not_flat_reasons"].items()) or "-"
        lines.append(
            f"| {split} | {s['documents']} | {s['sentences']} | {s.get('tokens', 0)} | {s['spans']} |"
            f" {s['flat_spans']} | {reasons} |"
        )
    lines += ["", "Spans per label:", "", "| label | " + " | ".join(splits) + " |", "|---|" + "---:|" * len(splits)]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(str(stats[split]["labels"].get(label, 0)) for split in splits) + " |")
    repairs = {split: len(stats[split]["repairs"]) for split in splits if stats[split]["repairs"]}
    if repairs:
        lines += ["", "Reader repairs (see `clinx data stats`): " + ", ".join(f"{k}: {v}" for k, v in repairs.items())]
    lines += ["", "## Citation", "", "```bibtex", task.citation, "```", ""]
    return "\n".join(lines)
