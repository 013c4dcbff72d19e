"""The strict span metric as an ``evaluate`` module (spaces/clinx-span-metric): it counts as ``clinx score`` does.

Every test loads the module the way its users do, ``evaluate.load(folder)``, offline; the counts it
returns are checked against ``clinx_hub.evaluation.score_documents`` (what ``clinx score`` runs) on
invented documents built to hit the edge cases, and on the four real Spanish corpora.
"""

from __future__ import annotations

import ast
import contextlib
import io
import random
import re
import runpy
import sys
from pathlib import Path

import pytest

evaluate = pytest.importorskip("evaluate", reason="the metric module needs the evaluate extra: pip install -e '.[evaluate]'")
from test_evaluation import perturb  # noqa: E402  (the same perturbation as clinx score's corpus test)

from clinx_hub.documents import Document, Span  # noqa: E402
from clinx_hub.evaluation import EvaluationResult, score_documents  # noqa: E402
from clinx_hub.formats.brat import read_brat_folder  # noqa: E402

METRIC_DIR = Path(__file__).resolve().parents[1] / "spaces" / "clinx-span-metric"
MODULE_FILE = METRIC_DIR / f"{METRIC_DIR.name}.py"  # evaluate.load(folder) reads <folder name>.py


@pytest.fixture(scope="module")
def metric():
    return evaluate.load(str(METRIC_DIR))


def as_records(spans) -> list[dict]:
    return [{"label": s.label, "start": s.start, "end": s.end} for s in spans]


def assert_counts_equal(result: dict, expected: EvaluationResult) -> None:
    """The module's micro and per-label figures are evaluation.py's, field for field."""
    micro = expected.micro.to_dict()
    assert {key: result[key] for key in ("tp", "fp", "fn")} == {key: micro[key] for key in ("tp", "fp", "fn")}
    assert [result[key] for key in ("precision", "recall", "f1")] == pytest.approx(
        [micro[key] for key in ("precision", "recall", "f1")], abs=1e-12
    )
    assert list(result["per_label"]) == list(expected.per_label)
    for label, scores in expected.per_label.items():
        assert result["per_label"][label] == pytest.approx(scores.to_dict(), abs=1e-12), label
    assert all(isinstance(result[key], int) for key in ("tp", "fp", "fn"))
    assert all(isinstance(result[key], float) and 0 <= result[key] <= 1 for key in ("precision", "recall", "f1"))


def compare(metric, gold: list[Document], pred: list[Document]) -> dict:
    result = metric.compute(
        predictions=[as_records(d.spans) for d in pred], references=[as_records(d.spans) for d in gold]
    )
    assert_counts_equal(result, score_documents(gold, pred))
    return result


def test_edge_cases_count_as_clinx_score(metric) -> None:
    text = "Fiebre alta y tos seca desde el 3 de mayo."
    fever, cough, date = Span(0, 11, "SINTOMA"), Span(14, 22, "SINTOMA"), Span(32, 41, "FECHA")
    gold = [
        Document("empty-both", text, []),
        Document("gold-only", text, [fever, cough]),
        Document("duplicates", text, [fever, fever, date]),  # a gold line repeated: counted once
        Document("pred-only", text, []),
        Document("relabelled", text, [cough]),
    ]
    pred = [
        Document("empty-both", text, []),
        Document("gold-only", text, []),
        Document("duplicates", text, [fever, fever, fever, Span(32, 41, "FECHA")]),
        Document("pred-only", text, [Span(0, 6, "SINTOMA"), Span(0, 6, "SINTOMA"), Span(7, 11, "GRADO")]),
        Document("relabelled", text, [Span(14, 22, "DIAGNOSTICO")]),  # a label only the predictions use
    ]
    result = compare(metric, gold, pred)
    assert (result["tp"], result["fp"], result["fn"]) == (2, 3, 3)
    assert result["per_label"]["GRADO"]["support"] == 0 and result["per_label"]["DIAGNOSTICO"]["fp"] == 1


def test_random_documents_count_as_clinx_score(metric) -> None:
    rng = random.Random(7)

    def spans() -> list[Span]:
        # A small grid of offsets and labels, so that matches, near misses and repeats are all common.
        return [
            Span(start, start + rng.randint(0, 3), rng.choice(["NOMBRE", "FECHA", "LUGAR"]))
            for start in (rng.randint(0, 12) for _ in range(rng.randint(0, 6)))
        ]

    gold = [Document(f"d{i}", "", spans()) for i in range(60)]
    pred = [d.with_spans(rng.sample(d.spans, k=len(d.spans) // 2) + spans()) for d in gold]
    result = compare(metric, gold, pred)
    assert result["tp"] and result["fp"] and result["fn"]


def test_batches_added_one_by_one_give_the_same_result(metric) -> None:
    gold = [[{"label": "FECHA", "start": 0, "end": 4}], [], [{"label": "NOMBRE", "start": 2, "end": 9}]]
    pred = [[{"label": "FECHA", "start": 0, "end": 4}], [{"label": "FECHA", "start": 1, "end": 4}], []]
    for prediction, reference in zip(pred, gold):
        metric.add(prediction=prediction, reference=reference)
    assert metric.compute() == metric.compute(predictions=pred, references=gold)


def test_no_documents_and_no_spans_score_zero(metric) -> None:
    assert metric.compute(predictions=[], references=[]) == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 0, "fn": 0, "per_label": {}
    }
    assert metric.compute(predictions=[[], []], references=[[], []])["per_label"] == {}


def test_bad_input_is_refused_naming_the_span_or_the_counts(metric) -> None:
    gold = [[], [{"label": "FECHA", "start": 0, "end": 4}]]
    with pytest.raises(ValueError, match=re.escape("predictions[1][1]: start 9 and end 3 are not a span")):
        metric.compute(predictions=[[], [{"label": "FECHA", "start": 0, "end": 4}, {"label": "X", "start": 9, "end": 3}]],
                       references=gold)
    with pytest.raises(ValueError, match=r"Mismatch in the number of predictions \(1\) and references \(2\)"):
        metric.compute(predictions=[[]], references=gold)
    with pytest.raises(ValueError, match=re.escape("predictions[1][0]: the span has no end")):
        metric.compute(predictions=[[], [{"label": "FECHA", "start": 0}]], references=gold)


def test_the_module_imports_only_evaluate_datasets_and_the_standard_library() -> None:
    # On the Hub the module runs where clinx_hub is not installed; evaluate reads its import lines
    # one by one to check dependencies, so each import stands on its own line.
    tree = ast.parse(MODULE_FILE.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert len(node.names) == 1, f"line {node.lineno}: one import per line"
            imported.add(node.names[0].name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"line {node.lineno}: no relative import"
            imported.add(node.module.split(".")[0])
    outside = {name for name in imported if name not in sys.stdlib_module_names}
    assert outside == {"evaluate", "datasets"}


def test_the_space_app_serves_this_module(monkeypatch) -> None:
    served = []
    monkeypatch.setattr(evaluate.utils, "launch_gradio_widget", served.append)
    runpy.run_path(str(METRIC_DIR / "app.py"), run_name="__main__")
    (module,) = served
    gold = [[{"label": "FECHA", "start": 0, "end": 4}]]
    assert module.compute(predictions=gold, references=gold)["f1"] == 1.0
    assert type(module).__name__ == "ClinxSpanMetric"


def test_the_card_is_a_hub_metric_card_and_its_example_runs(monkeypatch) -> None:
    from huggingface_hub import metadata_load

    card = metadata_load(METRIC_DIR / "README.md")
    assert {"evaluate", "metric"} <= set(card["tags"])
    assert (card["sdk"], card["app_file"]) == ("gradio", "app.py") and card["title"]
    # The widget of evaluate 0.4.6 (gr.inputs.Dataframe) exists only in gradio 3.
    assert card["sdk_version"].startswith("3.")
    (example,) = re.findall(r"```python\n(.*?)```", (METRIC_DIR / "README.md").read_text(encoding="utf-8"), re.S)
    monkeypatch.chdir(METRIC_DIR.parents[1])  # the example loads "spaces/clinx-span-metric" from a checkout
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, "README.md", "exec"), {})
    first, second = printed.getvalue().splitlines()
    assert first == "0.5 0.5 0.5"
    assert second.startswith("{'precision': 0.5, 'recall': 1.0, 'f1': 0.666") and "'support': 1}" in second


CORPUS_FOLDERS = {
    "meddocan": "meddocan/corpus/test/brat",
    "pharmaconer": "pharmaconer/dev/subtrack1",
    "cantemist": "cantemist/dev-set1/cantemist-ner",
    "meddoprof": "meddoprof/meddoprof-training-set/task1",
}


@pytest.mark.corpus
@pytest.mark.parametrize("corpus", sorted(CORPUS_FOLDERS))
def test_real_corpora_count_as_clinx_score(metric, corpora_dir: Path, corpus: str) -> None:
    gold = read_brat_folder(corpora_dir / CORPUS_FOLDERS[corpus])  # the reader `clinx score` uses
    perturbed = perturb({d.id: {s.key for s in d.spans} for d in gold})
    pred = [d.with_spans([Span(start, end, label) for label, start, end in sorted(perturbed[d.id])]) for d in gold]
    pred[1] = pred[1].with_spans([])  # a document with nothing predicted: all its gold spans are misses
    result = compare(metric, gold, pred)
    assert len(gold) >= 250 and result["tp"] > 1000 and result["fp"] and result["fn"]
    assert result["per_label"]["RELABELLED"]["support"] == 0
