"""i2b2/VA 2010 concepts: ``.txt`` (a sentence per line) + ``.con`` line:token references (Data Use Agreement)."""

from __future__ import annotations

from pathlib import Path

from clinx_hub.documents import Document
from clinx_hub.formats.i2b2 import read_i2b2_2010_folders
from clinx_hub.task import Task

CITATION = """@article{uzuner20112010,
  title   = {2010 i2b2/VA challenge on concepts, assertions, and relations in clinical text},
  author  = {Uzuner, {\\"O}zlem and South, Brett R and Shen, Shuying and DuVall, Scott L},
  journal = {Journal of the American Medical Informatics Association},
  volume  = {18},
  number  = {5},
  pages   = {552--556},
  year    = {2011},
  doi     = {10.1136/amiajnl-2011-000203}
}"""
LICENSE = "other"
LICENSE_NOTE = "n2c2 Data Use Agreement: never redistribute; push converted data only to private repositories."
HOMEPAGE = "https://portal.dbmi.hms.harvard.edu/projects/n2c2-nlp/"
CORPUS_FOLDER = "i2b2-2010"
LABELS = ("problem", "test", "treatment")
# The training archive has beth/ and partners/ sub-folders (txt/, concept/, ...); the test texts
# and their reference standard come in two separate archives.
SPLITS = {
    "train": ("**/concept_assertion_relation_training_data",),
    "test": ("**/test_data", "**/reference_standard_for_test_data"),
}


def read_split(paths: list[Path], root: Path) -> list[Document]:
    """Pair each ``.con`` with its ``.txt`` across all of the split's folders."""
    return read_i2b2_2010_folders(*paths)


TASKS = {
    "i2b2-2010": Task(
        name="i2b2-2010",
        corpus=CORPUS_FOLDER,
        description="Medical problems, tests and treatments in English discharge summaries.",
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
