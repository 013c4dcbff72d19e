"""i2b2/UTHealth 2014 de-identification: one XML per record, ``<TEXT>`` CDATA + typed PHI tags (Data Use Agreement).

Spans are labelled with the fine ``TYPE`` (PATIENT, DOCTOR, ...), not the 7 tag categories.
"""

from __future__ import annotations

from pathlib import Path

from clinx_hub.documents import Document
from clinx_hub.formats.i2b2 import read_i2b2_2014, read_xml_folder
from clinx_hub.task import Task

CITATION = """@article{stubbs2015automated,
  title   = {Automated systems for the de-identification of longitudinal clinical narratives: Overview of 2014 i2b2/UTHealth shared task Track 1},
  author  = {Stubbs, Amber and Kotfila, Christopher and Uzuner, {\\"O}zlem},
  journal = {Journal of Biomedical Informatics},
  volume  = {58},
  pages   = {S11--S19},
  year    = {2015},
  doi     = {10.1016/j.jbi.2015.06.007}
}"""
LICENSE = "other"
LICENSE_NOTE = "n2c2 Data Use Agreement: never redistribute; push converted data only to private repositories."
HOMEPAGE = "https://portal.dbmi.hms.harvard.edu/projects/n2c2-nlp/"
CORPUS_FOLDER = "i2b2-2014"
LABELS = (
    "PATIENT", "DOCTOR", "USERNAME", "PROFESSION", "ROOM", "DEPARTMENT", "HOSPITAL", "ORGANIZATION",
    "STREET", "CITY", "STATE", "COUNTRY", "ZIP", "LOCATION-OTHER", "AGE", "DATE", "PHONE", "FAX",
    "EMAIL", "URL", "IPADDR", "SSN", "MEDICALRECORD", "HEALTHPLAN", "ACCOUNT", "LICENSE", "VEHICLE",
    "DEVICE", "BIOID", "IDNUM",
)
SPLITS = {
    "train": ("**/training-PHI-Gold-Set1", "**/training-PHI-Gold-Set2"),
    "test": ("**/testing-PHI-Gold-fixed",),
}


def read_split(paths: list[Path], root: Path) -> list[Document]:
    """Every ``*.xml`` record under the split's folders."""
    return [document for path in paths for document in read_xml_folder(path, read_i2b2_2014)]


TASKS = {
    "i2b2-2014": Task(
        name="i2b2-2014",
        corpus=CORPUS_FOLDER,
        description="De-identification of English longitudinal clinical records (fine PHI types).",
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
