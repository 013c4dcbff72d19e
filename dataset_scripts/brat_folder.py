"""A user's own BRAT folder: any labels, split into ``train/``, ``dev/`` and ``test/`` or one plain folder."""

from __future__ import annotations

from clinx_hub.task import Task, read_brat_split

LABELS: tuple[str, ...] = ()
"""Empty: the label set is read from the training documents."""
SPLITS = {
    "train": ("train",),
    "validation": ("dev",),
    "test": ("test",),
}

TASKS = {
    "brat": Task(
        name="brat",
        corpus="brat",
        description="Your own BRAT standoff annotations (.txt + .ann), with train/dev/test sub-folders or as one folder.",
        labels=LABELS,
        splits=SPLITS,
        read=read_brat_split,
        homepage="",
        license="other",
        citation="",
        language="multilingual",
        train_splits=("train", "validation"),
        report_split="test",
        notes=("Labels are those found in the training documents.",),
    )
}
