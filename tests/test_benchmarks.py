"""The accuracy benchmark's bookkeeping: what its table says about each result file."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str, monkeypatch):
    """A benchmark script as a module, importable as the scripts import each other (benchmarks/ on sys.path)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def accuracy(tmp_path, monkeypatch):
    module = _script("accuracy", monkeypatch)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    module.RESULTS.mkdir()
    return module


def _result(name: str, **extra) -> dict:
    return {
        "experiment": name, "task": "pharmaconer", "report_split": "validation",
        "micro": {"precision": 0.8, "recall": 0.7, "f1": 0.75}, "member_median_f1": None,
        "members": [{"fold": None, "best_eval_f1": None, "epochs_run": 3.0}],
        "settings": {"learning_rate": 1e-4}, "wall_seconds": 600.0, "hardware": "cpu", "date": "2026-11-26",
        **extra,
    }


def _row(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {name} |"))


def test_a_resumed_run_says_its_wall_time_is_partial(accuracy):
    fresh, resumed = list(accuracy.EXPERIMENTS)[:2]
    (accuracy.RESULTS / f"{fresh}.json").write_text(json.dumps(_result(fresh)))
    (accuracy.RESULTS / f"{resumed}.json").write_text(json.dumps(_result(resumed, resumed=True)))
    text = accuracy.table()
    assert "| 10 min | cpu |" in _row(text, fresh)
    assert "| 10 min (resumed) | cpu |" in _row(text, resumed)
    assert "| 75.0 |" in _row(text, fresh)
    assert "not run" in _row(text, list(accuracy.EXPERIMENTS)[2])


def test_compare_scores_both_models_and_writes_the_bootstrap(tmp_path, monkeypatch):
    from clinx_hub.documents import Document, Span

    compare = _script("compare", monkeypatch)
    gold = [Document(f"d{i}", "Toma AAS", [Span(5, 8, "NORMALIZABLES")]) for i in range(12)]
    # Model "good" finds every span; model "poor" misses the span in every third note.
    outputs = {"good": gold, "poor": [d.with_spans([]) if i % 3 == 0 else d for i, d in enumerate(gold)]}
    monkeypatch.setattr(compare, "load_task", lambda task, data_dir: {"validation": gold})
    monkeypatch.setattr(compare, "predict", lambda model, documents, device: (outputs[model], 2.0))
    monkeypatch.setattr(compare, "RESULTS", tmp_path)
    assert compare.main(["good", "poor", "pharmaconer", "--samples", "300", "--name", "x", "--device", "cpu"]) == 0
    result = json.loads((tmp_path / "x.json").read_text())
    assert result["split"] == "validation"  # PharmaCoNER's report split
    assert result["a"]["micro"]["f1"] == 1.0
    assert result["b"]["micro"]["f1"] == pytest.approx(2 * 8 / (2 * 8 + 4))
    assert result["bootstrap"]["samples"] == 300 and result["bootstrap"]["a_better_share"] > 0.9
    assert "ahead in" in (tmp_path / "x.md").read_text()
    assert result["command"].endswith("python benchmarks/compare.py good poor pharmaconer --samples 300 --name x --device cpu")


def test_startup_benchmark_scores_its_invented_notes_and_times_both_trees(tmp_path, monkeypatch):
    startup = _script("startup", monkeypatch)
    gold, pred = startup.invented_brat(tmp_path / "brat")
    from clinx_hub.evaluation import score_folders

    # Offsets match the invented text (the scorer reads them), and the prediction misses one span.
    assert (score_folders(gold, pred).micro.tp, score_folders(gold, pred).micro.fn) == (2, 1)
    runs = startup.commands(gold, pred, collect=False)
    assert list(runs) == [
        "clinx --help", "clinx score --gold G --pred P", "clinx data stats brat --data-dir G",
        "import clinx_hub", "import clinx_hub.documents",
    ]
    calls = []
    monkeypatch.setattr(startup, "timed", lambda argv, tree, scratch: calls.append(tree.name) or len(calls))
    rows = startup.bench({"before": tmp_path / "before", "after": tmp_path / "after"}, {"x": []}, 3, tmp_path)
    assert calls == ["before", "after", "after", "before", "before", "after"]  # interleaved
    assert (rows[0]["before_seconds"], rows[0]["after_seconds"]) == (4, 3)
