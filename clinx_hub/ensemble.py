"""Extractors: one model or a majority-vote ensemble behind the same interface.

An :class:`Extractor` wraps a model folder (model + tokenizer); a :class:`ClinXEnsemble` is one
folder with ``ensemble.json`` and its members under ``members/``. Both save, load, predict and
evaluate the same way, both list their ``members`` (a single model is its own one member) and
their shared ``id2label``/``entity_types``, and :func:`load_extractor` opens either. An ensemble
has no model of its own: ask its ``members`` for theirs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from .devices import resolve_device, resolve_dtype, torch_dtype
from .documents import Document, Span
from .evaluation import score_documents
from .extraction import extract_documents
from .folders import ENSEMBLE_FILE, EnsembleSpec, ModelFolderError, ensemble_members, is_ensemble_folder, is_onnx_folder
from .hub import local_model_folder, open_model_folder
from .registration import register
from .streaming import Progress


class _SpanExtractor:
    """What one model and an ensemble share: spans for texts, their scores, and the label set."""

    members: list[Extractor]

    @property
    def id2label(self) -> dict[int, str]:
        """The tags, by id, of every member (an ensemble's members share one label set)."""
        return dict(self.members[0].config.id2label)

    @property
    def entity_types(self) -> list[str]:
        """Entity types in label order, without scheme prefixes (``["FECHAS", ...]``)."""
        return list(self.members[0].config.entity_types)

    def predict(
        self, documents: Sequence[str | Document], *, batch_size: int = 16, progress: Progress | None = None
    ) -> list[list[Span]]:
        raise NotImplementedError

    def evaluate(self, documents: Sequence[Document], *, batch_size: int = 16):
        """Strict micro P/R/F1 of the predictions against the documents' gold spans."""
        return _score(documents, self.predict(documents, batch_size=batch_size))


class Extractor(_SpanExtractor):
    """A single CLIN-X model with its tokenizer.

    >>> extractor = Extractor.from_pretrained("runs/meddocan")  # doctest: +SKIP
    >>> extractor.predict(["Paciente de 45 años."])  # doctest: +SKIP
    """

    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer

    @property
    def config(self):
        """The model's ``ClinXConfig``."""
        return self.model.config

    @property
    def members(self) -> list[Extractor]:
        """One model is its own one member."""
        return [self]

    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, device: str | None = None, dtype: str | None = None, **kwargs
    ) -> Extractor:
        """Open one model folder (or Hub id, or ``clinx export onnx`` folder) on ``device`` in ``dtype``.

        ``device``: ``auto`` (CUDA, then MPS, then the CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``;
        None keeps the model where it loads (the CPU). ``dtype``: ``fp32`` (default), ``fp16`` (GPU
        only), ``bf16``; the encoder and emission layer take it, the CRF stays float32. An exported
        ONNX folder runs with onnxruntime (CPU, or its CUDA provider). A folder that is not a
        clinx_hub model raises ModelFolderError.

        >>> Extractor.from_pretrained("runs/meddocan", device="auto", dtype="bf16")  # doctest: +SKIP
        """
        from transformers import AutoTokenizer

        register()
        folder = open_model_folder(path, ensemble=False)
        if is_onnx_folder(folder):
            from .onnx_model import OnnxClinXModel

            model = OnnxClinXModel.from_pretrained(folder, device=device or "cpu", dtype=dtype)
            return cls(model, AutoTokenizer.from_pretrained(folder))
        from transformers import AutoModelForTokenClassification

        target = resolve_device(device) if device is not None else "cpu"
        precision = resolve_dtype(dtype, target)  # fp16 on the CPU is refused before anything loads
        model = AutoModelForTokenClassification.from_pretrained(folder, **{**kwargs, "use_safetensors": True})
        return cls(model, AutoTokenizer.from_pretrained(folder)).to(target, precision)

    def save_pretrained(self, path: str | Path) -> None:
        if not hasattr(self.model, "save_pretrained"):  # an exported ONNX model
            raise TypeError("an exported ONNX model is written by `clinx export onnx` from its PyTorch folder, not saved")
        register()  # the folder gets auto_map and the two model files (remote code)
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)

    def to(self, device, dtype: str | None = None) -> Extractor:
        """Move the model to ``device`` (``"cuda"``, ``"cpu"``, a ``torch.device``), in ``dtype``; returns self.

        ``dtype`` (``fp32``/``fp16``/``bf16``) applies to the encoder and the emission layer: the CRF's
        long sums stay in float32 (emissions are cast to float32 before it).
        """
        self.model.to(device)
        if dtype is not None and hasattr(self.model, "encoder"):
            precision = torch_dtype(resolve_dtype(dtype, str(device)))
            self.model.encoder.to(precision)
            self.model.classifier.to(precision)
        return self

    def predict(
        self, documents: Sequence[str | Document], *, batch_size: int = 16, progress: Progress | None = None
    ) -> list[list[Span]]:
        """Spans for each document or text; ``progress.update(characters)`` as notes are done (``extract_documents``)."""
        return extract_documents(self.model, self.tokenizer, documents, batch_size=batch_size, progress=progress)


def _score(documents: Sequence[Document], predictions: Sequence[Sequence[Span]]):
    return score_documents(list(documents), [d.with_spans(p) for d, p in zip(documents, predictions)])


def ensemble_vote(predictions: Sequence[Sequence[Span]], min_votes: int | None = None) -> list[Span]:
    """Spans predicted by at least ``min_votes`` members (default: a strict majority).

    Overlapping winners are resolved deterministically: more votes first, then the longer span,
    then the earlier start, then the label. A span's score is the share of members that voted
    for it times their mean confidence.

    >>> a, b = Span(0, 4, "X", score=1.0), Span(0, 2, "X", score=1.0)
    >>> ensemble_vote([[a], [a], [b]])
    [Span(start=0, end=4, label='X', text='', id='', codes=(), score=0.6666666666666666)]
    """
    members = len(predictions)
    if min_votes is None:
        min_votes = members // 2 + 1
    votes: Counter[tuple[str, int, int]] = Counter()
    scores: dict[tuple[str, int, int], list[float]] = defaultdict(list)
    texts: dict[tuple[str, int, int], str] = {}
    for spans in predictions:
        for span in {s.key: s for s in spans}.values():  # one vote per member
            votes[span.key] += 1
            scores[span.key].append(1.0 if span.score is None else span.score)
            texts[span.key] = span.text
    ranked = sorted(
        (key for key, count in votes.items() if count >= min_votes),
        key=lambda k: (-votes[k], -(k[2] - k[1]), k[1], k[0]),
    )
    kept: list[Span] = []
    for label, start, end in ranked:
        if all(end <= s.start or s.end <= start for s in kept):
            key = (label, start, end)
            score = votes[key] / members * sum(scores[key]) / len(scores[key])
            kept.append(Span(start, end, label, text=texts[key], score=score))
    return sorted(kept, key=lambda s: (s.start, s.end, s.label))


class ClinXEnsemble(_SpanExtractor):
    """Members trained on different random splits, voting span by span.

    ``members`` are :class:`Extractor` s, one per folder under ``members/``; the ensemble has no
    model or config of its own (its members share one label set: ``id2label``, ``entity_types``).

    >>> ensemble = ClinXEnsemble.from_pretrained("runs/meddocan-ensemble")  # doctest: +SKIP
    >>> ensemble.predict(["Paciente de 45 años."])  # doctest: +SKIP
    """

    def __init__(self, members: Sequence[Extractor], *, min_votes: int | None = None, names: Sequence[str] | None = None):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        labels = [tuple(m.config.id2label.items()) for m in members]
        if len(set(labels)) != 1:
            raise ValueError("ensemble members must share one label set")
        self.members = list(members)
        self.min_votes = min_votes
        self.names = list(names) if names is not None else [str(i) for i in range(len(members))]

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> ClinXEnsemble:
        path = open_model_folder(path)
        if not is_ensemble_folder(path):
            raise ModelFolderError(f"{path} is not an ensemble folder: no {ENSEMBLE_FILE}")
        members = ensemble_members(path)  # checked: every member inside the folder
        extractors = [Extractor.from_pretrained(folder, **kwargs) for folder in members.values()]
        return cls(extractors, min_votes=EnsembleSpec.read(path).min_votes, names=list(members))

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        for name, member in zip(self.names, self.members):
            member.save_pretrained(EnsembleSpec.member_folder(path, name))
        self.members[0].tokenizer.save_pretrained(path)  # the members' tokenizer, at the top as well
        # The members' shared config at the top too (no weights there: members/ hold them), so that
        # transformers' pipeline() and the Hub read the folder's model type and labels.
        self.members[0].config.save_pretrained(path)
        EnsembleSpec(self.names, self.min_votes).write(path)

    def to(self, device) -> ClinXEnsemble:
        for member in self.members:
            member.to(device)
        return self

    def predict(
        self, documents: Sequence[str | Document], *, batch_size: int = 16, progress: Progress | None = None
    ) -> list[list[Span]]:
        """The members' vote for each document; each member reports to ``progress`` (members x characters in all)."""
        return self._vote(self._member_predictions(documents, batch_size, progress))

    def _member_predictions(
        self, documents: Sequence[str | Document], batch_size: int, progress: Progress | None = None
    ) -> list[list[list[Span]]]:
        return [member.predict(documents, batch_size=batch_size, progress=progress) for member in self.members]

    def _vote(self, per_member: Sequence[Sequence[Sequence[Span]]]) -> list[list[Span]]:
        return [ensemble_vote([m[i] for m in per_member], self.min_votes) for i in range(len(per_member[0]))]

    def evaluate_members(self, documents: Sequence[Document], *, batch_size: int = 16):
        """The ensemble's strict scores and each member's, from one pass of each member.

        The paper's Table 4 compares the ensemble with its median member; this gives both
        without decoding the documents twice.

        >>> ensemble_result, member_results = ensemble.evaluate_members(dev)  # doctest: +SKIP
        """
        per_member = self._member_predictions(documents, batch_size)
        return _score(documents, self._vote(per_member)), [_score(documents, p) for p in per_member]


def load_extractor(path: str | Path, **kwargs) -> Extractor | ClinXEnsemble:
    """Open a model folder or an ensemble folder (it has ``ensemble.json``), local or on the Hub.

    A name that is not a local folder is a Hub id (or a CLIN-X short name, ``hub.resolve_model_name``):
    the whole repo is downloaded, ensemble members included, and opened like a local folder. A
    folder is checked before anything in it is opened (``folders.check_model_folder``): safetensors
    weights only, a clinx_hub config, a tokenizer, ensemble members inside the folder; what fails
    raises :class:`clinx_hub.folders.ModelFolderError` with one line on what is wrong.

    >>> load_extractor("runs/meddocan").predict(["..."])  # doctest: +SKIP
    >>> load_extractor("clinx-hub/clin-x-es-meddocan")  # doctest: +SKIP
    """
    # Each class checks the folder it opens: checking it here too read every member's files twice.
    folder = local_model_folder(path)
    opener = ClinXEnsemble if is_ensemble_folder(folder) else Extractor
    return opener.from_pretrained(folder, **kwargs)
