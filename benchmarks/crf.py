"""CRF speed: clinx_hub's LinearChainCRF against pytorch-crf on the same inputs, same constraints.

Times NLL forward+backward and Viterbi decoding at batch 32 x 256 positions for BIOES tag sets
of 4, 14 and 29 entity types (17, 57 and 117 tags). pytorch-crf gets the BIOES constraints as a
transition mask (-10000 on forbidden transitions), so both must return identical paths, and
the run stops if they do not. A third column runs our decoder without the constraint structure
(one dense block, i.e. a plain vectorised port) to show what the block structure buys.

    python benchmarks/crf.py                 # CPU; writes benchmarks/results/crf-cpu.{md,json}
    python benchmarks/crf.py --device cuda   # the same table on a GPU
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torchcrf import CRF

from clinx_hub.modeling_clinx import LinearChainCRF, scheme_constraints
from clinx_hub.run_state import hardware
from clinx_hub.tagging import scheme_labels

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn, device: str, repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_one(entity_types: int, batch: int, length: int, device: str, repeats: int, seed: int) -> dict:
    labels = scheme_labels([f"T{i}" for i in range(entity_types)], "bioes")
    num_tags = len(labels)
    allowed, allowed_start, allowed_end = scheme_constraints(labels, "bioes")
    torch.manual_seed(seed)
    ours = LinearChainCRF(num_tags, allowed, allowed_start, allowed_end).to(device)
    dense = LinearChainCRF(num_tags).to(device)  # no structure: every transition is one block
    reference = CRF(num_tags, batch_first=True).to(device)
    with torch.no_grad():
        for crf in (dense, reference):
            crf.transitions.copy_(ours.transitions.masked_fill(~allowed.to(device), -1e4))
            crf.start_transitions.copy_(ours.start_transitions.masked_fill(~allowed_start.to(device), -1e4))
            crf.end_transitions.copy_(ours.end_transitions.masked_fill(~allowed_end.to(device), -1e4))

    emissions = torch.randn(batch, length, num_tags, device=device) * 2
    lengths = torch.randint(length // 2, length + 1, (batch,), device=device)
    lengths[0] = length
    mask = torch.arange(length, device=device).unsqueeze(0) < lengths.unsqueeze(1)

    reference_paths = reference.decode(emissions, mask)
    our_paths = ours.viterbi(emissions, mask)
    dense_paths = dense.viterbi(emissions, mask)
    for row, expected in enumerate(reference_paths):
        got = our_paths[row, : lengths[row]].tolist()
        if got != expected or dense_paths[row, : lengths[row]].tolist() != expected:
            raise SystemExit(f"paths differ from pytorch-crf at {num_tags} tags, row {row}")
    gold = our_paths.clamp(min=0)

    def nll_reference() -> None:
        e = emissions.detach().requires_grad_(True)
        (-reference(e, gold, mask, reduction="sum")).backward()

    def nll_ours() -> None:
        e = emissions.detach().requires_grad_(True)
        ours(e, gold, mask).sum().backward()

    nll_check = float(ours(emissions, gold, mask).sum())
    nll_expected = float(-reference(emissions, gold, mask, reduction="sum"))
    if abs(nll_check - nll_expected) > 1e-4 * abs(nll_expected) + 1e-3:
        raise SystemExit(f"NLL differs from pytorch-crf at {num_tags} tags: {nll_check} vs {nll_expected}")

    row = {
        "entity_types": entity_types,
        "tags": num_tags,
        "decode_ms_pytorch_crf": timed(lambda: reference.decode(emissions, mask), device, repeats),
        "decode_ms_ours": timed(lambda: ours.viterbi(emissions, mask), device, repeats),
        "decode_ms_ours_dense": timed(lambda: dense.viterbi(emissions, mask), device, repeats),
        "nll_fwd_bwd_ms_pytorch_crf": timed(nll_reference, device, repeats),
        "nll_fwd_bwd_ms_ours": timed(nll_ours, device, repeats),
    }
    row["decode_speedup"] = row["decode_ms_pytorch_crf"] / row["decode_ms_ours"]
    row["nll_speedup"] = row["nll_fwd_bwd_ms_pytorch_crf"] / row["nll_fwd_bwd_ms_ours"]
    return row


def render(rows: list[dict], meta: dict) -> str:
    lines = [
        f"# CRF speed: clinx_hub vs pytorch-crf ({meta['device']})",
        "",
        f"- date: {meta['date']}",
        f"- hardware: {meta['hardware']}",
        f"- command: `{meta['command']}`",
        f"- batch {meta['batch']} x {meta['length']} positions (lengths {meta['length'] // 2}-{meta['length']}),"
        f" median of {meta['repeats']} runs; pytorch-crf {meta['pytorch_crf']} with the BIOES constraints as a"
        " -1e4 transition mask; paths checked identical before timing.",
        "",
        "| entity types | tags | decode pytorch-crf ms | decode ours ms | speed-up | decode ours, dense port ms"
        " | NLL fwd+bwd pytorch-crf ms | NLL fwd+bwd ours ms | speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['entity_types']} | {r['tags']} | {r['decode_ms_pytorch_crf']:.1f} | {r['decode_ms_ours']:.1f}"
            f" | {r['decode_speedup']:.2f}x | {r['decode_ms_ours_dense']:.1f} | {r['nll_fwd_bwd_ms_pytorch_crf']:.1f}"
            f" | {r['nll_fwd_bwd_ms_ours']:.1f} | {r['nll_speedup']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--entity-types", type=int, nargs="+", default=[4, 14, 29])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU visible to torch")

    import importlib.metadata

    meta = {
        "device": args.device,
        "date": datetime.date.today().isoformat(),
        "hardware": hardware(args.device),
        "command": "python benchmarks/crf.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "batch": args.batch,
        "length": args.length,
        "repeats": args.repeats,
        "pytorch_crf": importlib.metadata.version("pytorch-crf"),
    }
    rows = [bench_one(k, args.batch, args.length, args.device, args.repeats, args.seed) for k in args.entity_types]
    table = render(rows, meta)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"crf-{args.device}.md").write_text(table)
    (args.out / f"crf-{args.device}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
