"""``torchrun --nproc_per_node 2 -m clinx_hub.cli train``: data-parallel training on CPU (gloo), interrupted and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clinx_hub.synthetic import write_synthetic_corpus

TORCHRUN = Path(sys.executable).with_name("torchrun")
TINY = ["--epochs", "3", "--lr", "5e-3", "--window-length", "64", "--context", "8", "--batch-size", "8", "--patience", "5"]


def torchrun_train(data: Path, backbone: Path, out: Path, log: Path) -> subprocess.Popen:
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "clinx_hub.cli", "train", "brat",
               "--data-dir", str(data), "--backbone", str(backbone), "--out", str(out), *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with log.open("w") as file:  # a file, not a pipe: nobody reads a pipe while the run trains
        return subprocess.Popen(command, env=env, stdout=file, stderr=subprocess.STDOUT)


@pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun is not installed beside this Python")
def test_two_processes_train_one_model_and_an_interrupted_run_resumes(tiny_backbone_dir: Path, tmp_path: Path) -> None:
    data = write_synthetic_corpus(tmp_path / "notes", n_train=6, n_dev=2, n_test=2, seed=3)
    out = tmp_path / "model"
    run = torchrun_train(data, tiny_backbone_dir, out, tmp_path / "interrupted.log")
    # Killed (both processes) once the first epoch's checkpoint is written.
    first = None
    deadline = time.time() + 120
    while first is None and run.poll() is None and time.time() < deadline:
        states = sorted((out / "checkpoints").glob("checkpoint-*/trainer_state.json"))
        first = states[0] if states else None
        time.sleep(0.1)
    assert first is not None, (tmp_path / "interrupted.log").read_text()[-3000:]
    # torchrun starts its workers in sessions of their own: each is killed by its id, then torchrun.
    for worker in Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split():
        os.kill(int(worker), signal.SIGKILL)
    run.kill()
    run.wait()
    interrupted = json.loads(first.read_text())["log_history"]
    assert not (out / "training_record.json").exists()

    resumed = torchrun_train(data, tiny_backbone_dir, out, tmp_path / "resumed.log")
    resumed.wait(timeout=180)
    log = (tmp_path / "resumed.log").read_text()
    assert resumed.returncode == 0, log[-3000:]
    record = json.loads((out / "training_record.json").read_text())
    assert record["world_size"] == 2 and record["evaluation"]["documents"] == 2
    (member,) = record["members"]
    # One strict-F1 evaluation per epoch (not one per process); epoch 1's is the interrupted run's,
    # restored from its checkpoint (the same measured runtime), not run again.
    assert [e["epoch"] for e in member["evaluations"]] == [1.0, 2.0, 3.0]
    assert member["evaluations"][0] == next(e for e in interrupted if "eval_f1" in e)
    assert member["epochs_run"] == 3.0 and member["train_documents"] == 6
    # Rank 0 alone wrote the model and scored it; the checkpoints that served the resume are gone.
    assert log.count("brat test: P") == 1
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert not (out / "checkpoints").exists()
