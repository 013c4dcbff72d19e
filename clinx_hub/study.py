"""The cross-task transfer study of CLIN-X (its Table 6): low-resource training with and without transfer.

For each target task and size n the study trains a model on the first n sentences of the
target's training side (``recipe.first_n_sentences``) from the plain backbone (no transfer) and
from each source task's model (``--init-from``: the encoder comes along, the head starts fresh),
changing nothing else, and scores every run on the target's report split (PROTOCOL.md). Before
any transfer run of a target, the sources are ranked by model similarity (``similarity.py``):
each source model against the target's no-transfer model at that n, on that run's training
texts, never on the report split. The predicted source is the closest; the best source is the
one whose transfer scored highest; the Spearman correlation between similarity and transfer gain
over all cells says how well the measure predicts.

Each run is a *cell* (target, source, n, seed) in ``work/<target>/n<n>/<source>/seed<seed>``:
its model under ``model/`` and, written last, ``result.json``. A cell with a result is done and
skipped on a rerun; one without resumes from its checkpoints (``recipe.train_task``), or is only
scored when its model was trained but not scored. Follow-up sizes train no transfer, the
predicted and the best source of the first size, once that size's selection is complete.
"""

from __future__ import annotations

import datetime
import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

from .formats.base import write_text_atomic

RESULT_FILE = "result.json"
"""Written last into a cell's folder: with it, the cell is done."""
SIMILARITY_DIR = "similarity"

# The paper trained low-resource runs for 20 epochs; early stopping on the held-out fifth of the
# n sentences (patience counted from the first gain) keeps the best epoch of the 20.
STUDY_SETTINGS = dict(
    num_train_epochs=20,
    learning_rate=1e-4,
    head_learning_rate=1e-3,
    warmup_steps=0.1,
    per_device_train_batch_size=8,
    per_device_eval_batch_size=32,
    early_stopping_patience=2,
    attention_dropout=0.0,
)


class StudyError(ValueError):
    """A study that cannot run as set up: names the target, source, cell or file."""


@dataclass(frozen=True)
class Target:
    """A target task of the study: its name in the tables, its ``clinx`` task and its corpus folder."""

    name: str
    task: str
    data_dir: Path

    @classmethod
    def parse(cls, spec: str, data_dir: str | Path | None) -> Target:
        """``TASK`` (its corpus in ``data_dir``) or ``NAME=TASK:DIR``.

        >>> Target.parse("notes=brat:corpus/notes", None)
        Target(name='notes', task='brat', data_dir=PosixPath('corpus/notes'))
        """
        if "=" in spec:
            name, _, rest = spec.partition("=")
            task, colon, folder = rest.partition(":")
            if not (name and task and colon and folder):
                raise StudyError(f"target {spec!r}: expected TASK or NAME=TASK:DIR")
            return cls(name, task, Path(folder))
        if data_dir is None:
            raise StudyError(f"target {spec!r} needs --data-dir (or the form NAME=TASK:DIR)")
        return cls(spec, spec, Path(data_dir))


@dataclass(frozen=True)
class Cell:
    """One run of the study: a target trained on its first ``n`` sentences (None: all), from a source or not."""

    target: str
    source: str | None
    n: int | None
    seed: int

    @property
    def key(self) -> str:
        """The cell's folder below the study's work folder.

        >>> Cell("meddocan", None, 250, 42).key
        'meddocan/n250/none/seed42'
        """
        return f"{self.target}/n{self.n or 'all'}/{self.source or 'none'}/seed{self.seed}"


@dataclass
class TransferStudy:
    """The grid: targets, source models, sizes and seeds, the backbone and the training settings."""

    targets: list[Target]
    sources: dict[str, Path]
    sizes: list[int]
    seeds: list[int]
    backbone: str
    work: Path
    settings: dict = field(default_factory=lambda: dict(STUDY_SETTINGS))
    follow_up_sizes: list[int] = field(default_factory=list)
    follow_up_seeds: list[int] | None = None
    measure: str = "procrustes"
    max_tokens: int = 2000

    def target(self, name: str) -> Target:
        return next(t for t in self.targets if t.name == name)

    def sources_of(self, target: str) -> list[str]:
        """The grid's sources for a target: every source but the target itself."""
        return [s for s in self.sources if s != target]

    def available(self, source: str) -> bool:
        """Whether a source's model is there yet: a model folder whose training, if it ran there, is done.

        ``clinx train`` writes the model, then its record, then drops its checkpoints: a folder with
        checkpoints and no record is still training (or was stopped), and its weights may be half written.
        """
        from .folders import CHECKPOINTS_DIR, CONFIG_FILE, TRAINING_RECORD

        folder = Path(self.sources[source])
        training = (folder / CHECKPOINTS_DIR).is_dir() and not (folder / TRAINING_RECORD).is_file()
        return (folder / CONFIG_FILE).is_file() and not training

    def check(self) -> None:
        if not self.targets or not self.sizes or not self.seeds:
            raise StudyError("a study needs at least one target, one size (--n) and one seed")
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise StudyError(f"targets named twice: {names}")
        if any(n <= 0 for n in self.sizes + self.follow_up_sizes):
            raise StudyError("sizes (--n, --follow-up-n) are numbers of sentences > 0")


def cell_folder(study: TransferStudy, cell: Cell) -> Path:
    return study.work / cell.key


def cell_result(study: TransferStudy, cell: Cell) -> dict | None:
    """A finished cell's result, or None; a result trained with other settings is refused."""
    path = cell_folder(study, cell) / RESULT_FILE
    if not path.is_file():
        return None
    result = json.loads(path.read_text(encoding="utf-8"))
    if result.get("settings") != _jsonable(study.settings) or result.get("backbone") != study.backbone:
        raise StudyError(
            f"{path} was trained with other settings or another backbone: use another --work folder for these"
        )
    return result


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def run_cell(study: TransferStudy, cell: Cell) -> dict:
    """Train (or resume, or only score) one cell and write its ``result.json``; a done cell is returned as is."""
    done = cell_result(study, cell)
    if done is not None:
        return done
    from .folders import CHECKPOINTS_DIR, TRAINING_RECORD
    from .recipe import score_task_model, scoring_dtype, train_task
    from .records import TrainingRecord
    from .run_state import hardware, member_lock
    from .training_args import default_arguments

    target = study.target(cell.target)
    folder = cell_folder(study, cell)
    model_dir = folder / "model"
    resumed = model_dir.is_dir() and any(model_dir.iterdir())
    init_from = str(study.sources[cell.source]) if cell.source else None
    args = default_arguments(
        model_dir / CHECKPOINTS_DIR, disable_tqdm=True, **study.settings,
        first_n=cell.n, init_from=init_from, seed=cell.seed,
    )
    started = time.time()
    # Two study runs on one --work folder never train a cell at once (the second is refused).
    with member_lock(folder / ".cell.lock"):
        if (model_dir / TRAINING_RECORD).is_file():
            # Trained already (the record is written last); scored too, unless that was cut short.
            record = TrainingRecord.read(model_dir)
            if not record.evaluation:
                scored = score_task_model(
                    target.task, target.data_dir, model_dir, args.device, dtype=scoring_dtype(args)
                )
                record = TrainingRecord.from_json(scored)
        else:
            record = TrainingRecord.from_json(train_task(target.task, target.data_dir, study.backbone, model_dir, args))
    evaluation = record.evaluation or {}
    micro = evaluation.get("micro") or {}
    member = record.members[0] if record.members else None
    # Optimizer steps; a record written before members kept them has the last evaluation's step.
    steps = (member.steps or max((e.get("step", 0) for e in member.evaluations), default=None)) if member else None
    result = {
        "target": cell.target,
        "task": target.task,
        "source": cell.source,
        "source_model": init_from,
        "n": cell.n,
        "seed": cell.seed,
        "report_split": evaluation.get("split"),
        "precision": round(100 * micro.get("precision", 0.0), 2),
        "recall": round(100 * micro.get("recall", 0.0), 2),
        "f1": round(100 * micro.get("f1", 0.0), 2),
        "tp": micro.get("tp"),
        "fp": micro.get("fp"),
        "fn": micro.get("fn"),
        "train_documents": member.train_documents if member else None,
        "budget": budget(study.settings),
        "epochs_run": member.epochs_run if member else None,
        "steps": steps,
        "best_eval_f1": member.best_eval_f1 if member else None,
        "train_seconds": record.train_seconds,
        "wall_seconds": round(time.time() - started, 1),
        "resumed": resumed,
        "hardware": hardware(args.device.type),
        "backbone": study.backbone,
        "settings": _jsonable(study.settings),
        "date": datetime.date.today().isoformat(),
    }
    write_text_atomic(folder / RESULT_FILE, json.dumps(result, indent=2) + "\n")
    return result


def record_baseline(study: TransferStudy, cell: Cell) -> bool:
    """Write the no-transfer F1 of the same target, n and seed into a finished transfer cell's training record.

    As ``baseline_f1`` (0-1, exact): ``clinx push`` of the cell's model then gives its card both F1s without
    ``--baseline-f1``. True when the record was written; False for a no-transfer cell, where either cell is not
    done yet, or where the record has that value already.
    """
    from .records import TrainingRecord

    baseline = Cell(cell.target, None, cell.n, cell.seed)
    if cell.source is None or cell_result(study, cell) is None or cell_result(study, baseline) is None:
        return False
    model_dir = cell_folder(study, cell) / "model"
    record = TrainingRecord.read(model_dir)
    f1 = ((TrainingRecord.read(cell_folder(study, baseline) / "model").evaluation or {}).get("micro") or {}).get("f1")
    if f1 is None or record.extra.get("baseline_f1") == f1:
        return False
    record.extra["baseline_f1"] = f1
    record.write(model_dir)
    return True


def budget(settings: dict) -> str:
    """A cell's training budget in words, for the table."""
    epochs = settings.get("num_train_epochs")
    if settings.get("holdout", True) is False:
        return f"{epochs} epochs on all n sentences (no held-out documents), the last epoch kept"
    return (
        f"at most {epochs} epochs, early stopping on held-out documents (the validation split, else a fifth of"
        f" the n sentences' documents; patience {settings.get('early_stopping_patience')} from the first gain),"
        " best epoch kept"
    )


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def run_cells(
    study: TransferStudy,
    cells: Sequence[Cell],
    *,
    processes: int = 1,
    threads: int | None = None,
    on_done: Callable[[Cell], None] | None = None,
) -> list[str]:
    """Run the cells that are not done: here one after another, or each in a process of its own.

    Returns the keys of the cells run now. With ``processes`` > 1 each cell gets a fresh process
    (``threads`` torch threads), at most ``processes`` at a time. ``on_done`` is called after each.
    """
    todo = [c for c in dict.fromkeys(cells) if cell_result(study, c) is None]
    if processes <= 1:
        _set_threads(threads)
        for i, cell in enumerate(todo, 1):
            print(f"[study] cell {i}/{len(todo)}: {cell.key}", flush=True)
            run_cell(study, cell)
            if on_done:
                on_done(cell)
        return [c.key for c in todo]
    with ProcessPoolExecutor(
        max_workers=processes, mp_context=get_context("spawn"), initializer=_set_threads, initargs=(threads,),
        max_tasks_per_child=1,
    ) as pool:
        futures = {pool.submit(run_cell, study, cell): cell for cell in todo}
        failed = []
        for future, cell in futures.items():
            try:
                future.result()
                print(f"[study] {cell.key} done", flush=True)
                if on_done:
                    on_done(cell)
            except Exception as err:  # noqa: BLE001 - the other cells go on; the failure is named below
                failed.append(f"{cell.key} ({type(err).__name__}: {err})")
    if failed:
        raise StudyError(f"cells failed (rerun to retry them; finished cells are kept): {'; '.join(failed)}")
    return [c.key for c in todo]


def similarity_documents(target: Target, n: int) -> list:
    """The texts a target's no-transfer run at n trains on: its training side's first n sentences.

    The same documents ``recipe.train_task`` trains on: the training splits without the report
    split (and without a separate validation split, which it early-stops on instead).
    """
    from .corpora import get_task, load_task
    from .recipe import first_n_sentences

    task = get_task(target.task)
    training = [s for s in task.train_splits if s != task.report_split]
    splits = load_task(target.task, target.data_dir, splits=None)
    training = [s for s in training if s in splits]
    if "validation" in training and len(training) > 1:
        training.remove("validation")
    return first_n_sentences([d for s in training for d in splits[s]], n)


def source_similarity(study: TransferStudy, target: str, n: int, *, compute: bool = True) -> dict:
    """Each available source model's similarity to the target's no-transfer model at n (cached on disk).

    A source's score depends on it and the reference only, so a source whose model appears later
    is scored then and the others are kept. Computed before that source's transfer runs; with
    ``compute`` False only what is cached is read.
    """
    from .similarity import rank_sources

    reference_cell = Cell(target, None, n, study.seeds[0])
    reference = cell_folder(study, reference_cell) / "model"
    path = study.work / SIMILARITY_DIR / f"{target}-n{n}-{study.measure}.json"
    cached = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"scores": {}}
    missing = {
        s: str(study.sources[s]) for s in study.sources_of(target) if study.available(s) and s not in cached["scores"]
    }
    if missing and compute:
        if cell_result(study, reference_cell) is None:
            raise StudyError(f"the similarity reference {reference_cell.key} is not trained yet")
        documents = similarity_documents(study.target(target), n)
        ranking = rank_sources(documents, missing, str(reference), measure=study.measure, max_tokens=study.max_tokens)
        cached = {
            "target": target, "n": n, "measure": study.measure, "reference": reference_cell.key,
            "documents": len(documents), "max_tokens": study.max_tokens,
            "scores": {**cached["scores"], **dict(ranking)},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(cached, indent=2) + "\n")
    return cached


def closeness(score: float, measure: str) -> float:
    """A similarity score oriented so that higher is closer (CKA as is, Procrustes disparity negated).

    >>> closeness(0.2, "procrustes") > closeness(0.3, "procrustes")
    True
    """
    return -score if measure == "procrustes" else score


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None under 3 pairs or without variation.

    >>> spearman([1, 2, 3, 4], [10, 20, 30, 25])
    0.8
    """
    if len(x) != len(y):
        raise ValueError("spearman needs pairs")
    if len(x) < 3:
        return None

    def ranks(values: Sequence[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        result = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                result[order[k]] = (i + j) / 2 + 1
            i = j + 1
        return result

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    var = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return round(cov / var, 4) if var else None


def _mean_f1(runs: list[dict], target: str, source: str | None, n: int, seeds: Sequence[int]) -> float | None:
    """Mean F1 over the seeds, only once every seed's run is there."""
    f1s = [r["f1"] for r in runs if (r["target"], r["source"], r["n"]) == (target, source, n) and r["seed"] in seeds]
    return round(sum(f1s) / len(f1s), 2) if len(f1s) == len(seeds) else None


def selection(
    study: TransferStudy, runs: list[dict], target: str, n: int, seeds: Sequence[int], *, compute: bool = True
) -> dict:
    """Predicted and best source of a target at n, with every source's similarity, F1 and gain."""
    similarity = source_similarity(study, target, n, compute=compute)
    scores = similarity["scores"]
    baseline = _mean_f1(runs, target, None, n, seeds)
    f1 = {s: _mean_f1(runs, target, s, n, seeds) for s in study.sources_of(target)}
    predicted = max(scores, key=lambda s: closeness(scores[s], study.measure)) if scores else None
    scored = {s: v for s, v in f1.items() if v is not None}
    best = max(scored, key=scored.get) if scored else None
    complete = bool(scored) and len(scored) == len(study.sources_of(target)) and len(scores) == len(scored)
    return {
        "target": target,
        "n": n,
        "seeds": list(seeds),
        "measure": study.measure,
        "similarity_reference": similarity.get("reference"),
        "similarity_documents": similarity.get("documents"),
        "similarity": scores,
        "no_transfer_f1": baseline,
        "f1": f1,
        "gain": {s: round(v - baseline, 2) for s, v in scored.items()} if baseline is not None else {},
        "predicted_source": predicted,
        "best_source": best,
        "gap": round(scored[best] - scored[predicted], 2) if best and predicted in scored else None,
        "complete": complete,
        "missing_sources": [s for s in study.sources_of(target) if not study.available(s)],
    }


def study_cells(study: TransferStudy, runs: list[dict] | None = None) -> dict[str, list[Cell]]:
    """The cells by phase: ``baseline`` (no transfer), ``transfer`` (every available source) and
    ``follow_up`` (no transfer at the follow-up sizes, then the predicted and best source of the first
    size, once its selection is complete). The small runs come first: the follow-up sizes cost most."""
    follow_seeds = study.follow_up_seeds or study.seeds[:1]
    # Seed by seed: a whole grid with the first seed comes before any run with the second.
    baseline = [Cell(t.name, None, n, s) for s in study.seeds for t in study.targets for n in study.sizes]
    transfer = [
        Cell(t.name, source, n, s)
        for s in study.seeds for t in study.targets for n in study.sizes
        for source in study.sources_of(t.name) if study.available(source)
    ]
    follow_up = [Cell(t.name, None, n, s) for t in study.targets for n in study.follow_up_sizes for s in follow_seeds]
    if runs is not None and study.follow_up_sizes:
        for t in study.targets:
            chosen = selection(study, runs, t.name, study.sizes[0], study.seeds, compute=False)
            if not chosen["complete"]:
                continue
            for source in dict.fromkeys([chosen["predicted_source"], chosen["best_source"]]):
                follow_up += [Cell(t.name, source, n, s) for n in study.follow_up_sizes for s in follow_seeds]
    return {"baseline": baseline, "transfer": transfer, "follow_up": follow_up}


def finished_runs(study: TransferStudy) -> list[dict]:
    """Every done cell's result, in grid order."""
    cells = [c for cells in study_cells(study).values() for c in cells]
    follow_seeds = study.follow_up_seeds or study.seeds[:1]
    cells += [
        Cell(t.name, source, n, s)
        for t in study.targets for n in study.follow_up_sizes for source in study.sources_of(t.name)
        for s in follow_seeds
    ]
    return [r for c in dict.fromkeys(cells) if (r := cell_result(study, c)) is not None]


def run_study(
    study: TransferStudy,
    out: str | Path,
    *,
    processes: int = 1,
    threads: int | None = None,
    plots: bool = True,
    reference_runs: Sequence[dict] = (),
    meta: dict | None = None,
    notes: Sequence[str] = (),
    only_targets: Sequence[str] | None = None,
) -> dict:
    """Run every cell that is not done, then write the results table (``out`` JSON + markdown, plots).

    The table is rewritten after every cell, so that a run stopped part way leaves it up to date.
    ``reference_runs`` are results trained elsewhere (the all-sentences rows) shown beside the
    study's; ``only_targets`` trains those targets' cells only (the table still covers the grid).

    >>> run_study(study, "results/transfer.json")  # doctest: +SKIP
    """
    study.check()
    out = Path(out)
    if plots:
        from .similarity import pyplot

        pyplot()  # now, not after hours of training
    unknown = set(only_targets or ()) - {t.name for t in study.targets}
    if unknown:
        raise StudyError(f"targets not in the grid: {sorted(unknown)}")
    chosen = [t for t in study.targets if only_targets is None or t.name in only_targets]
    trained: list[str] = []

    def write(_cell: Cell | None = None) -> dict:
        table = results_table(study, list(reference_runs), meta or {}, trained)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out.with_suffix(".json"), json.dumps(table, indent=2) + "\n")
        write_text_atomic(out.with_suffix(".md"), markdown(table, notes))
        return table

    def run(cells: list[Cell]) -> None:
        cells = [c for c in cells if any(c.target == t.name for t in chosen)]
        trained.extend(run_cells(study, cells, processes=processes, threads=threads, on_done=write))

    run(study_cells(study)["baseline"])
    # The selection comes before any transfer run: from the baseline models and the training texts.
    for target in chosen:
        for n in study.sizes:
            source_similarity(study, target.name, n)
    run(study_cells(study)["transfer"])
    run(study_cells(study, finished_runs(study))["follow_up"])
    # Each transfer model's record names its baseline F1 (the follow-up size's baselines train beside its transfer runs).
    for result in finished_runs(study):
        record_baseline(study, Cell(result["target"], result["source"], result["n"], result["seed"]))
    table = write()
    if plots:
        plot_results(table, out)
    return table


def results_table(study: TransferStudy, reference_runs: list[dict], meta: dict, trained: list[str]) -> dict:
    """The JSON: every run, the selection per target and n, the Spearman correlation, the grid."""
    runs = finished_runs(study)
    rows = [
        selection(study, runs, t.name, n, study.seeds, compute=False) for t in study.targets for n in study.sizes
    ]
    follow_seeds = study.follow_up_seeds or study.seeds[:1]
    spread = seed_spread(runs)
    follow_ups = [
        {
            "target": t.name, "n": n,
            "no_transfer_f1": _mean_f1(runs, t.name, None, n, follow_seeds),
            "f1": {
                s: f for s in study.sources_of(t.name) if (f := _mean_f1(runs, t.name, s, n, follow_seeds)) is not None
            },
        }
        for t in study.targets for n in study.follow_up_sizes
    ]
    return {
        "meta": {
            **meta,
            "backbone": study.backbone,
            "settings": _jsonable(study.settings),
            "measure": study.measure,
            "max_tokens": study.max_tokens,
            "trained_now": trained,
        },
        "grid": {
            "targets": [{"name": t.name, "task": t.task} for t in study.targets],
            "sources": {s: str(p) for s, p in study.sources.items()},
            "available_sources": [s for s in study.sources if study.available(s)],
            "sizes": study.sizes,
            "seeds": study.seeds,
            "follow_up_sizes": study.follow_up_sizes,
            "follow_up_seeds": follow_seeds,
        },
        "runs": runs + list(reference_runs),
        "spread": spread,
        "selection": rows,
        "follow_up": follow_ups,
        "spearman": selection_spearman(rows, study.measure),
    }


def selection_spearman(rows: Sequence[dict], measure: str) -> dict:
    """Spearman's rho between a measure's closeness and the transfer gain over every (target, n, source) cell."""
    pairs = [
        (closeness(row["similarity"][s], measure), gain)
        for row in rows for s, gain in row["gain"].items() if s in row["similarity"]
    ]
    return {
        "rho": spearman([p[0] for p in pairs], [p[1] for p in pairs]),
        "pairs": len(pairs),
        "between": "closeness (CKA, or minus the Procrustes disparity) and F1 gain over no transfer, per"
        " target, n and source (F1 averaged over the seeds)",
    }


def compare_measures(study: TransferStudy, measures: Sequence[str], within: float = 1.0) -> dict:
    """Each similarity measure's source selection over the study's finished cells, side by side.

    The selection is made once, with ``study.measure``, before any transfer run; this asks afterwards how
    another measure would have chosen from the same reference models and training texts (computed here where
    not cached). Per measure: the selection rows, the targets whose predicted source is the best or within
    ``within`` F1 of it, and the Spearman correlation.
    """
    runs = finished_runs(study)
    compared = {}
    for measure in measures:
        other = replace(study, measure=measure)
        rows = [selection(other, runs, t.name, n, study.seeds) for t in study.targets for n in study.sizes]
        hits = [r["target"] for r in rows if r["gap"] is not None and r["gap"] <= within]
        compared[measure] = {
            "selection": rows, "within": within, "hits": hits, "targets": len(rows),
            "spearman": selection_spearman(rows, measure),
        }
    return compared


def seed_spread(runs: Sequence[dict]) -> list[dict]:
    """F1 over the seeds of each (target, source, n): the seeds run, mean, lowest and highest."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["target"], r["source"], r["n"]), []).append(r)
    return [
        {
            "target": target, "source": source, "n": n, "seeds": sorted(r["seed"] for r in group),
            "f1_mean": round(sum(r["f1"] for r in group) / len(group), 2),
            "f1_min": min(r["f1"] for r in group), "f1_max": max(r["f1"] for r in group),
        }
        for (target, source, n), group in groups.items()
    ]


def _number(value, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def markdown(table: dict, notes: Sequence[str] = ()) -> str:
    """The results table as markdown: selection per target and n, the correlation, then every run."""
    meta = table["meta"]
    lines = [
        "# Cross-task transfer (CLIN-X Table 6), strict micro F1 on each target's report split",
        "",
        f"Backbone {meta['backbone']}; similarity {meta['measure']} on at most {meta['max_tokens']} subwords of the"
        " target's training texts; settings in the JSON. " + (f"Command: `{meta['command']}`." if meta.get("command") else ""),
        "",
        "| target | n | no transfer F1 | predicted source | its F1 | best source | its F1 | gap | similarity per source |",
        "|---|---:|---:|---|---:|---|---:|---:|---|",
    ]
    for row in table["selection"]:
        similarity = ", ".join(f"{s} {v:.3f}" for s, v in sorted(row["similarity"].items()))
        predicted, best = row["predicted_source"], row["best_source"]
        status = "" if row["complete"] else " (incomplete" + (
            f"; missing sources: {', '.join(row['missing_sources'])})" if row["missing_sources"] else ")"
        )
        lines.append(
            f"| {row['target']} | {row['n']} | {_number(row['no_transfer_f1'])} | {predicted or ''} |"
            f" {_number(row['f1'].get(predicted))} | {best or ''}{status} | {_number(row['f1'].get(best))} |"
            f" {_number(row['gap'])} | {similarity} |"
        )
    rho = table["spearman"]
    lines += [
        "",
        f"Spearman rank correlation between similarity and transfer gain: {_number(rho['rho'], 3) or 'n/a'}"
        f" over {rho['pairs']} (target, n, source) cells.",
        "",
    ]
    several = [g for g in table.get("spread", []) if len(g["seeds"]) > 1]
    if several:
        lines += [
            "F1 over the seeds where a cell ran with more than one (low-resource F1 moves with the seed):",
            "",
            "| target | n | source | seeds | mean F1 | lowest | highest | spread |",
            "|---|---:|---|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {g['target']} | {g['n']} | {g['source'] or 'none'} | {', '.join(map(str, g['seeds']))} |"
            f" {g['f1_mean']:.2f} | {g['f1_min']:.2f} | {g['f1_max']:.2f} | {g['f1_max'] - g['f1_min']:.2f} |"
            for g in several
        ]
        lines.append("")
    lines += [
        "| target | n | source | seed | P | R | F1 | FP | epochs run | steps | train s | wall s | hardware |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in table["runs"]:
        lines.append(
            f"| {r['target']} | {r['n'] or 'all'} | {r['source'] or 'none'} | {r['seed']} | {r['precision']:.2f}"
            f" | {r['recall']:.2f} | {r['f1']:.2f} | {r.get('fp', '')} | {_number(r.get('epochs_run'), 0)}"
            f" | {r.get('steps') or ''} | {_number(r.get('train_seconds'), 0)} | {_number(r.get('wall_seconds'), 0)}"
            f" | {r.get('hardware', '')} |"
        )
    lines += ["", *notes] if notes else []
    return "\n".join(lines) + "\n"


def plot_results(table: dict, out: Path) -> list[Path]:
    """``OUT-f1-by-n.png`` (F1 against n per target, a line per source) and ``OUT-similarity.png``."""
    from .similarity import plot_similarity_heatmap, pyplot, save_figure

    plt = pyplot()
    targets = [t["name"] for t in table["grid"]["targets"]]
    # One colour per source across all panels (a target is never its own source, so panels differ in their lines).
    colours = {name: f"C{i % 10}" for i, name in enumerate([None, *table["grid"]["sources"]])}
    figure, axes = plt.subplots(1, len(targets), figsize=(3.6 * len(targets), 3.2), squeeze=False)
    for ax, target in zip(axes[0], targets):
        # The study's own cells (the all-sentence reference runs are not in the spread).
        runs = [g for g in table["spread"] if g["target"] == target]
        for source in dict.fromkeys(g["source"] for g in runs):
            points = sorted((g for g in runs if g["source"] == source), key=lambda g: g["n"])
            # The mean over the seeds, with a bar from the lowest to the highest seed's F1.
            ax.errorbar(
                [g["n"] for g in points], [g["f1_mean"] for g in points],
                yerr=[[g["f1_mean"] - g["f1_min"] for g in points], [g["f1_max"] - g["f1_mean"] for g in points]],
                marker="o", capsize=3, label=source or "no transfer", color=colours.get(source),
            )
        ax.set_xscale("log")
        sizes = sorted({g["n"] for g in runs})
        ax.set_xticks(sizes, [str(n) for n in sizes])  # the grid's sizes, not powers of ten
        ax.minorticks_off()
        ax.set_title(target)
        ax.set_xlabel("training sentences (n)")
        ax.set_ylabel("F1 (%)")
        if runs:
            ax.legend(fontsize=7)
    figure.tight_layout()
    curves = out.with_name(f"{out.stem}-f1-by-n.png")
    save_figure(figure, curves)
    heatmap = out.with_name(f"{out.stem}-similarity.png")
    # One column per target and n when there are several sizes.
    scores = {
        (row["target"] if len(table["grid"]["sizes"]) == 1 else f"{row['target']} n={row['n']}"): row["similarity"]
        for row in table["selection"]
    }
    written = [curves]
    if any(scores.values()):
        written.append(plot_similarity_heatmap(scores, heatmap, measure=table["meta"]["measure"]))
    return written


def parse_sources(specs: Sequence[str]) -> dict[str, Path]:
    """``TASK=MODEL_DIR`` specs as a mapping; a repeated name or a malformed spec is refused.

    >>> parse_sources(["meddocan=runs/meddocan"])
    {'meddocan': PosixPath('runs/meddocan')}
    """
    sources: dict[str, Path] = {}
    for spec in specs:
        name, eq, folder = spec.partition("=")
        if not (name and eq and folder):
            raise StudyError(f"--source {spec!r}: expected TASK=MODEL_DIR")
        if name in sources:
            raise StudyError(f"--source {name} given twice")
        sources[name] = Path(folder)
    return sources


def study_from_arguments(args, settings_from: Callable[[object], dict] | None = None) -> TransferStudy:
    """A study from ``clinx study transfer``'s parsed arguments."""
    settings = dict(STUDY_SETTINGS)
    if settings_from is not None:
        settings.update(settings_from(args))
    return TransferStudy(
        targets=[Target.parse(spec, args.data_dir) for spec in args.target],
        sources=parse_sources(args.source or []),
        sizes=args.n,
        seeds=args.seeds,
        backbone=args.backbone,
        work=Path(args.work),
        settings=settings,
        follow_up_sizes=args.follow_up_n or [],
        follow_up_seeds=args.follow_up_seeds,
        measure=args.measure,
        max_tokens=args.max_tokens,
    )


__all__ = [
    "Cell", "STUDY_SETTINGS", "StudyError", "Target", "TransferStudy", "closeness", "compare_measures", "run_cell",
    "run_cells",
    "run_study", "selection", "source_similarity", "spearman", "study_cells",
]
