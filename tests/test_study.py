"""The transfer study on tiny models and synthetic BRAT corpora: cells, resume, selection, table, plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from clinx_hub.formats.brat import write_brat
from clinx_hub.recipe import train_task
from clinx_hub.study import (
    RESULT_FILE,
    Cell,
    StudyError,
    Target,
    TransferStudy,
    cell_folder,
    parse_sources,
    run_study,
    similarity_documents,
    source_similarity,
    spearman,
)
from clinx_hub.synthetic import synthetic_documents, write_synthetic_corpus
from clinx_hub.training_args import default_arguments

TINY = dict(
    num_train_epochs=1, learning_rate=5e-3, head_learning_rate=None, warmup_steps=0, per_device_train_batch_size=8,
    per_device_eval_batch_size=8, early_stopping_patience=2, attention_dropout=0.0, window_length=64, context_size=8,
)
RUN_FIELDS = {"target", "source", "n", "seed", "precision", "recall", "f1", "wall_seconds", "hardware", "settings",
              "budget", "epochs_run", "fp", "report_split"}


@pytest.fixture(scope="module")
def study_setup(tmp_path_factory, tiny_backbone_dir: Path):
    root = tmp_path_factory.mktemp("study")
    alpha, beta = (
        Target(name, "brat", write_synthetic_corpus(root / name, n_train=5, n_dev=2, n_test=2, seed=seed))
        for name, seed in (("alpha", 1), ("beta", 2))
    )
    # beta's source model: all its training sentences, one epoch; alpha is the target (and, as a
    # source, named like the target, so never used for it).
    sources = {"alpha": root / "sources" / "alpha", "beta": root / "sources" / "beta"}
    args = default_arguments(sources["beta"] / "checkpoints", disable_tqdm=True, **TINY, seed=0)
    train_task("brat", beta.data_dir, str(tiny_backbone_dir), sources["beta"], args)
    study = TransferStudy(
        targets=[alpha], sources=sources, sizes=[6], seeds=[0], backbone=str(tiny_backbone_dir),
        work=root / "work", settings=dict(TINY), follow_up_sizes=[12],
    )
    table = run_study(study, root / "out" / "transfer.json")
    return study, table, root / "out"


def results(study: TransferStudy) -> dict[str, float]:
    return {str(p.relative_to(study.work)): p.stat().st_mtime_ns for p in sorted(study.work.rglob(RESULT_FILE))}


def test_the_table_holds_every_run_and_the_selection(study_setup) -> None:
    study, table, out = study_setup
    runs = table["runs"]
    cells = {(r["target"], r["source"], r["n"]) for r in runs}
    # No transfer at both sizes, the source at 6, and (predicted = best) at 12.
    assert cells == {("alpha", None, 6), ("alpha", None, 12), ("alpha", "beta", 6), ("alpha", "beta", 12)}
    assert set(table["meta"]["trained_now"]) == {
        Cell(t, s, n, 0).key for t, s, n in cells
    }
    for run in runs:
        assert RUN_FIELDS <= set(run) and run["seed"] == 0 and run["report_split"] == "test"
        assert 0 <= run["precision"] <= 100 and 0 <= run["f1"] <= 100 and run["settings"]["num_train_epochs"] == 1
    assert {(r["target"], r["n"]) for r in table["selection"]} == {("alpha", 6)}
    for row in table["selection"]:
        other = "beta"
        assert set(row["similarity"]) == {other} and 0 <= row["similarity"][other] <= 1
        assert row["predicted_source"] == row["best_source"] == other and row["gap"] == 0
        assert row["missing_sources"] == [] and row["complete"]
        no_transfer = next(r["f1"] for r in runs if (r["target"], r["source"], r["n"]) == (row["target"], None, 6))
        assert row["gain"][other] == pytest.approx(row["f1"][other] - no_transfer, abs=0.011)
    assert table["spearman"]["pairs"] == 1 and table["spearman"]["rho"] is None  # under 3 pairs
    assert json.loads((out / "transfer.json").read_text()) == table
    markdown = (out / "transfer.md").read_text()
    assert "| alpha | 6 |" in markdown and "Spearman" in markdown
    # One seed per cell: a spread entry each, no spread table.
    assert sorted((g["target"], g["source"] or "", g["n"], tuple(g["seeds"])) for g in table["spread"]) == sorted(
        (t, s or "", n, (0,)) for t, s, n in cells
    )
    assert "F1 over the seeds" not in markdown
    for picture in ("transfer-f1-by-n.png", "transfer-similarity.png"):
        assert (out / picture).read_bytes()[:4] == b"\x89PNG"


def test_a_rerun_trains_nothing_and_a_removed_cell_is_redone_alone(study_setup) -> None:
    study, first, out = study_setup
    before = results(study)
    again = run_study(study, out / "transfer.json", plots=False)
    assert again["meta"]["trained_now"] == [] and results(study) == before
    assert again["runs"] == first["runs"]

    removed = Cell("alpha", "beta", 6, 0)
    shutil.rmtree(cell_folder(study, removed))
    redone = run_study(study, out / "transfer.json", plots=False)
    assert redone["meta"]["trained_now"] == [removed.key]
    after = results(study)
    assert {k: v for k, v in after.items() if not k.startswith(removed.key)} == {
        k: v for k, v in before.items() if not k.startswith(removed.key)
    }
    # Deterministic for a seed: the cell trained again scores as before.
    old = next(r for r in first["runs"] if (r["target"], r["source"], r["n"]) == ("alpha", "beta", 6))
    new = next(r for r in redone["runs"] if (r["target"], r["source"], r["n"]) == ("alpha", "beta", 6))
    assert (new["f1"], new["fp"]) == (old["f1"], old["fp"])

    # A cell whose training was cut off (its model folder without result) is never counted as done.
    (cell_folder(study, removed) / RESULT_FILE).unlink()
    assert run_study(study, out / "transfer.json", plots=False)["meta"]["trained_now"] == [removed.key]


def test_a_source_not_trained_yet_waits_and_is_named(study_setup) -> None:
    study, first, out = study_setup
    later = TransferStudy(**{**study.__dict__, "sources": {**study.sources, "gamma": out / "no-such-model"}})
    table = run_study(later, out / "later.json", plots=False)
    assert table["meta"]["trained_now"] == []
    assert [(r["target"], r["source"], r["n"]) for r in table["runs"]] == [
        (r["target"], r["source"], r["n"]) for r in first["runs"]
    ]
    assert all(row["missing_sources"] == ["gamma"] and not row["complete"] for row in table["selection"])
    assert "missing sources: gamma" in (out / "later.md").read_text()
    # A source still training (its checkpoints there, no record yet) waits too: its weights may be half written.
    busy = out / "busy-model"
    (busy / "checkpoints").mkdir(parents=True)
    shutil.copy(study.sources["beta"] / "config.json", busy)
    still = TransferStudy(**{**study.__dict__, "sources": {**study.sources, "gamma": busy}})
    assert still.available("beta") and not still.available("gamma")
    shutil.copy(study.sources["beta"] / "training_record.json", busy)
    assert still.available("gamma")


def test_the_selection_never_reads_the_report_split(study_setup) -> None:
    study, table, _ = study_setup
    alpha = study.target("alpha")
    documents = similarity_documents(alpha, 6)
    assert documents and all(d.id.startswith("synthetic-es-1-train") for d in documents)
    cached = study.work / "similarity" / "alpha-n6-procrustes.json"
    scores = json.loads(cached.read_text())["scores"]
    # Other report-split notes, and the cache gone: the similarity is computed again, and the same.
    shutil.rmtree(alpha.data_dir / "test")
    write_brat(synthetic_documents(3, seed=99), alpha.data_dir / "test")
    cached.unlink()
    assert source_similarity(study, "alpha", 6)["scores"] == pytest.approx(scores)


def test_another_measure_chooses_from_the_same_models_after_the_fact(study_setup) -> None:
    from clinx_hub.study import compare_measures

    study, table, _ = study_setup
    cached = study.work / "similarity" / "alpha-n6-procrustes.json"
    before = cached.read_text()
    compared = compare_measures(study, ["procrustes", "cka"])
    # The study's own measure reads its cache and gives the table's selection and correlation back.
    assert cached.read_text() == before
    assert compared["procrustes"]["selection"] == table["selection"]
    assert compared["procrustes"]["spearman"] == table["spearman"]
    # The other is computed from the same reference model and training texts, cached under its own name.
    cka = compared["cka"]
    assert json.loads((study.work / "similarity" / "alpha-n6-cka.json").read_text())["measure"] == "cka"
    (row,) = cka["selection"]
    assert row["measure"] == "cka" and 0 < row["similarity"]["beta"] <= 1 + 1e-6
    assert row["predicted_source"] == row["best_source"] == "beta" and row["f1"] == table["selection"][0]["f1"]
    assert cka["hits"] == ["alpha"] and cka["targets"] == 1 and cka["spearman"]["pairs"] == 1


def test_a_transfer_cell_records_its_baseline_for_the_card(study_setup) -> None:
    from clinx_hub.model_card import render_model_card
    from clinx_hub.records import TrainingRecord
    from clinx_hub.study import record_baseline

    study, table, _ = study_setup
    cell, baseline = Cell("alpha", "beta", 6, 0), Cell("alpha", None, 6, 0)
    model = cell_folder(study, cell) / "model"
    expected = TrainingRecord.read(cell_folder(study, baseline) / "model").evaluation["micro"]["f1"]
    assert TrainingRecord.read(model).extra["baseline_f1"] == expected  # written by run_study
    assert not record_baseline(study, cell) and not record_baseline(study, baseline)  # there already; no source
    card = render_model_card(model, model_id="clinx/alpha-from-beta")
    assert f"| Strict micro F1 without transfer (same recipe, no --init-from) | {expected:.4f} |" in card
    assert "| Training data (n) | first 6 sentences |" in card


def test_a_result_of_other_settings_is_refused(study_setup) -> None:
    study, _, out = study_setup
    other = TransferStudy(**{**study.__dict__, "settings": {**study.settings, "num_train_epochs": 3}})
    with pytest.raises(StudyError, match="other settings"):
        run_study(other, out / "other.json", plots=False)


def test_spearman_with_ties_and_the_specs() -> None:
    assert spearman([1, 2, 3], [3, 2, 1]) == -1.0
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9487, abs=1e-4)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None
    scipy_stats = pytest.importorskip("scipy.stats")
    x, y = [0.3, 0.1, 0.4, 0.1, 0.5, 0.9], [2.0, 7.1, 1.8, 2.8, 1.8, 0.0]
    assert spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x, y).statistic, abs=1e-4)
    with pytest.raises(StudyError, match="TASK=MODEL_DIR"):
        parse_sources(["meddocan"])
    with pytest.raises(StudyError, match="needs --data-dir"):
        Target.parse("meddocan", None)


def test_cli_study_transfer_reads_the_grid_and_names_what_it_refuses(study_setup, capsys) -> None:
    from clinx_hub.cli import main

    study, _, out = study_setup
    argv = ["study", "transfer", "--backbone", study.backbone, "--n", "6", "--seeds", "0", "--work", str(study.work),
            "--out", str(out / "cli.json"), "--no-plots"]
    targets = [arg for t in study.targets for arg in ("--target", f"{t.name}=brat:{t.data_dir}")]
    sources = [arg for name, folder in study.sources.items() for arg in ("--source", f"{name}={folder}")]
    assert main([*argv, *targets, "--source", "alpha"]) == 2
    assert "--source 'alpha': expected TASK=MODEL_DIR" in capsys.readouterr().err
    assert main([*argv, "--target", "meddocan"]) == 2
    assert "needs --data-dir" in capsys.readouterr().err
    # The CLI's settings (20 epochs...) are not those the cells in --work were trained with: refused, naming the cell.
    assert main([*argv, *targets, *sources]) == 2
    assert f"{RESULT_FILE} was trained with other settings" in capsys.readouterr().err
    assert not (out / "cli.json").exists()


def test_a_cell_another_live_run_is_training_is_refused(study_setup) -> None:
    import os
    import socket

    from clinx_hub.study import run_cells
    from clinx_hub.training_args import TrainingSetupError

    study, _, _ = study_setup
    cell = Cell("alpha", "beta", 6, 0)
    result = cell_folder(study, cell) / RESULT_FILE
    kept = result.read_text()
    result.unlink()
    lock = cell_folder(study, cell) / ".cell.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))  # a live holder: this test
    try:
        with pytest.raises(TrainingSetupError, match="another run"):
            run_cells(study, [cell])
        assert not result.exists()
    finally:
        lock.unlink()
        result.write_text(kept)


@pytest.mark.slow  # each spawned process imports torch and transformers afresh
def test_cells_side_by_side_train_in_their_own_processes_as_they_would_here(study_setup, tmp_path: Path) -> None:
    study, _, _ = study_setup
    # Sizes 6 and 8 without sources: two no-transfer cells, each in a spawned process of its own.
    side = TransferStudy(**{**study.__dict__, "work": tmp_path / "work", "sources": {}, "sizes": [6, 8],
                            "follow_up_sizes": []})
    table = run_study(side, tmp_path / "side.json", processes=2, threads=1, plots=False)
    assert sorted(table["meta"]["trained_now"]) == ["alpha/n6/none/seed0", "alpha/n8/none/seed0"]
    assert all("1 torch threads" in r["hardware"] for r in table["runs"])
    # Deterministic for a seed: the same cell trained here (in the fixture) has the same weights, up to
    # float rounding (the fixture ran with this process's torch threads, the spawned cell with 1).
    from safetensors.torch import load_file

    here = load_file(cell_folder(study, Cell("alpha", None, 6, 0)) / "model" / "model.safetensors")
    there = load_file(cell_folder(side, Cell("alpha", None, 6, 0)) / "model" / "model.safetensors")
    assert here.keys() == there.keys()
    for name, tensor in here.items():
        torch.testing.assert_close(there[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_bf16_cells_train_and_score_in_bf16_and_the_cli_sets_it(study_setup, tmp_path) -> None:
    from clinx_hub.cli import build_parser
    from clinx_hub.cli.studies import study_settings
    from clinx_hub.records import TrainingRecord
    from clinx_hub.study import run_cell, study_from_arguments

    study, _, _ = study_setup
    settings = {**TINY, "bf16": True, "holdout": False}
    bf16 = TransferStudy(**{**study.__dict__, "work": tmp_path / "work", "settings": settings})
    cell = Cell("alpha", "beta", 6, 0)
    result = run_cell(bf16, cell)
    assert result["settings"]["bf16"] is True and 0 <= result["f1"] <= 100
    record = TrainingRecord.read(cell_folder(bf16, cell) / "model")
    assert record.to_json()["bf16"] is True and record.evaluation["dtype"] == "bf16"
    # A fixed budget: every epoch, nothing held out, the budget named in words.
    (member,) = record.members
    assert member.eval_documents == 0 and member.epochs_run == TINY["num_train_epochs"]
    assert result["steps"] == member.steps == -(-member.train_windows // TINY["per_device_train_batch_size"])
    assert result["budget"] == "1 epochs on all n sentences (no held-out documents), the last epoch kept"
    argv = ["study", "transfer", "--target", "meddocan", "--data-dir", "corpora", "--backbone", "m", "--n", "250",
            "--work", "w", "--out", "o"]
    # Without the flags the settings stay those of the cells trained before the flags existed.
    assert not {"bf16", "holdout"} & set(study_from_arguments(build_parser().parse_args(argv), study_settings).settings)
    flagged = study_from_arguments(build_parser().parse_args([*argv, "--bf16", "--no-holdout"]), study_settings)
    assert flagged.settings["bf16"] is True and flagged.settings["holdout"] is False


def test_the_spread_over_seeds_is_shown_where_a_cell_has_two(study_setup) -> None:
    from clinx_hub.study import markdown, seed_spread

    _, table, _ = study_setup
    runs = [r for r in table["runs"] if r["n"] == 6]
    second = [{**r, "seed": 1, "f1": r["f1"] + 4.0} for r in runs]
    spread = seed_spread(runs + second)
    assert {(g["source"], tuple(g["seeds"])) for g in spread} == {(None, (0, 1)), ("beta", (0, 1))}
    for g in spread:
        first = next(r["f1"] for r in runs if r["source"] == g["source"])
        assert (g["f1_min"], g["f1_max"], g["f1_mean"]) == (first, first + 4.0, round(first + 2.0, 2))
    text = markdown({**table, "spread": spread})
    assert "F1 over the seeds" in text and "| alpha | 6 | beta | 0, 1 |" in text and " 4.00 |" in text


def test_a_source_keeps_its_colour_in_every_panel_of_the_f1_picture(tmp_path: Path, monkeypatch) -> None:
    import clinx_hub.similarity as similarity
    from clinx_hub.study import plot_results

    figures = []
    monkeypatch.setattr(similarity, "save_figure", lambda figure, path: figures.append(figure) or Path(path))
    spread = [
        {"target": t, "source": s, "n": n, "f1_mean": 10.0 + n / 100, "f1_min": 9.0, "f1_max": 12.0 + n / 100}
        for t, sources in (("a", (None, "b", "c")), ("b", (None, "c", "a")))
        for s in sources for n in (250, 1000)
    ]
    table = {
        "grid": {"targets": [{"name": "a"}, {"name": "b"}], "sources": {"a": "x", "b": "y", "c": "z"}, "sizes": [250]},
        "spread": spread, "selection": [], "meta": {"measure": "procrustes"},
    }
    plot_results(table, tmp_path / "t.json")
    colours = []
    for ax in figures[0].axes:
        handles, labels = ax.get_legend_handles_labels()
        colours.append({label: handle.lines[0].get_color() for handle, label in zip(handles, labels)})
    # Drawn in a different order in each panel, yet each source has one colour, and no two share one.
    assert colours[0]["c"] == colours[1]["c"] and colours[0]["no transfer"] == colours[1]["no transfer"]
    assert len({*colours[0].values(), *colours[1].values()}) == 4
