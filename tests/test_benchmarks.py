"""The accuracy benchmark's bookkeeping: what its table says about each result file."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def accuracy(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("accuracy_benchmark", ROOT / "benchmarks" / "accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
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
