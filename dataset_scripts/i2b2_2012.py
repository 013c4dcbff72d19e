"""i2b2 2012 temporal relations: XML ``<TEXT>`` + ``<TAGS>`` with EVENT and TIMEX3 offsets (Data Use Agreement).

Two CLIN-X tasks: 2012-C tags the EVENT spans by their 6 types (all six are kept), 2012-T tags the
TIMEX3 spans by their 4 types. SECTIME and TLINK are not used.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from clinx_hub.documents import Document
from clinx_hub.formats.i2b2 import EVENT_TYPES, TIMEX3_TYPES, read_i2b2_2012, read_xml_folder
from clinx_hub.task import SplitReader, Task

CITATION = """@article{sun2013evaluating,
  title   = {Evaluating temporal relations in clinical text: 2012 i2b2 Challenge},
  author  = {Sun, Weiyi and Rumshisky, Anna and Uzuner, {\\"O}zlem},
  journal = {Journal of the American Medical Informatics Association},
  volume  = {20},
  number  = {5},
  pages   = {806--813},
  year    = {2013},
  doi     = {10.1136/amiajnl-2013-001628}
}"""
LICENSE = "other"
LICENSE_NOTE = "n2c2 Data Use Agreement: never redistribute; push converted data only to private repositories."
HOMEPAGE = "https://portal.dbmi.hms.harvard.edu/projects/n2c2-nlp/"
CORPUS_FOLDER = "i2b2-2012"
# The release folder names are not documented in shared/corpora; these patterns follow the usual
# archive names. Any other layout reads as a plain folder (one split) with --data-dir.
SPLITS = {
    "train": ("**/*original-annotation.release*",),
    "test": ("**/*test*groundtruth*",),
}


def _reader(tags: tuple[str, ...]) -> SplitReader:
    def read_split(paths: list[Path], root: Path) -> list[Document]:
        reader = partial(read_i2b2_2012, tags=tags)
        return [document for path in paths for document in read_xml_folder(path, reader)]

    return read_split


def _task(name: str, tags: tuple[str, ...], labels: tuple[str, ...], what: str) -> Task:
    return Task(
        name=name,
        corpus=CORPUS_FOLDER,
        description=f"{what} in English discharge summaries.",
        labels=labels,
        splits=SPLITS,
        read=_reader(tags),
        homepage=HOMEPAGE,
        license=LICENSE,
        license_note=LICENSE_NOTE,
        citation=CITATION,
        language="en",
        train_splits=("train",),
        report_split="test",
    )


TASKS = {
    "i2b2-2012-c": _task("i2b2-2012-c", ("EVENT",), EVENT_TYPES, "Clinical events (EVENT, 6 types)"),
    "i2b2-2012-t": _task("i2b2-2012-t", ("TIMEX3",), TIMEX3_TYPES, "Temporal expressions (TIMEX3, 4 types)"),
}
