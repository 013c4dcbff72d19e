"""i2b2 2006 de-identification: one XML per split with inline ``<PHI TYPE>`` tags (Data Use Agreement)."""

from __future__ import annotations

from pathlib import Path

from clinx_hub.documents import Document
from clinx_hub.formats.i2b2 import read_i2b2_2006
from clinx_hub.task import Task

CITATION = """@article{uzuner2007evaluating,
  title   = {Evaluating the State-of-the-Art in Automatic De-identification},
  author  = {Uzuner, {\\"O}zlem and Luo, Yuan and Szolovits, Peter},
  journal = {Journal of the American Medical Informatics Association},
  volume  = {14},
  number  = {5},
  pages   = {550--563},
  year    = {2007},
  doi     = {10.1197/jamia.M2444}
}"""
LICENSE = "other"
LICENSE_NOTE = "n2c2 Data Use Agreement: never redistribute; push converted data only to private repositories."
HOMEPAGE = "https://portal.dbmi.hms.harvard.edu/projects/n2c2-nlp/"
CORPUS_FOLDER = "i2b2-2006"
LABELS = ("PATIENT", "DOCTOR", "HOSPITAL", "ID", "DATE", "LOCATION", "PHONE", "AGE")
# Each release zip holds one XML of the same base name with all records of the split.
SPLITS = {
    "train": ("**/deid_surrogate_train_all_version2.xml",),
    "test": ("**/deid_surrogate_test_all_groundtruth_version2.xml",),
}


def read_split(paths: list[Path], root: Path) -> list[Document]:
    """Every record of the split's XML file(s); a folder contributes each ``*.xml`` inside it."""
    files = [found for path in paths for found in (sorted(path.rglob("*.xml")) if path.is_dir() else [path])]
    return [document for path in files for document in read_i2b2_2006(path)]


TASKS = {
    "i2b2-2006": Task(
        name="i2b2-2006",
        corpus=CORPUS_FOLDER,
        description="De-identification of English discharge summaries (8 PHI types).",
        labels=LABELS,
        splits=SPLITS,
        read=read_split,
        homepage=HOMEPAGE,
        license=LICENSE,
        license_note=LICENSE_NOTE,
        citation=CITATION,
        language="en",
        train_splits=("train",),
        report_split="test",
    )
}
