"""MEDDOCAN: de-identification of Spanish clinical case reports (BRAT; the same spans also ship as XML)."""

from __future__ import annotations

from clinx_hub.task import Task, read_brat_split

CITATION = """@inproceedings{marimon2019automatic,
  title     = {Automatic De-identification of Medical Texts in Spanish: the MEDDOCAN Track, Corpus, Guidelines, Methods and Evaluation of Results},
  author    = {Marimon, Montserrat and Gonzalez-Agirre, Aitor and Intxaurrondo, Ander and Rodriguez, Heidy and Lopez Martin, Jose Antonio and Villegas, Marta and Krallinger, Martin},
  booktitle = {Proceedings of the Iberian Languages Evaluation Forum (IberLEF 2019)},
  series    = {CEUR Workshop Proceedings},
  volume    = {2421},
  pages     = {618--638},
  year      = {2019}
}"""
LICENSE = "cc-by-4.0"
HOMEPAGE = "https://github.com/PlanTL-GOB-ES/SPACCC_MEDDOCAN"
CORPUS_FOLDER = "meddocan"
# The 29 types of the annotation scheme; 22 occur in the data.
LABELS = (
    "NOMBRE_SUJETO_ASISTENCIA", "NOMBRE_PERSONAL_SANITARIO", "PROFESION", "HOSPITAL", "INSTITUCION",
    "CALLE", "TERRITORIO", "PAIS", "CENTRO_SALUD", "EDAD_SUJETO_ASISTENCIA", "FECHAS", "NUMERO_TELEFONO",
    "NUMERO_FAX", "CORREO_ELECTRONICO", "URL_WEB", "ID_ASEGURAMIENTO", "ID_CONTACTO_ASISTENCIAL",
    "NUMERO_BENEF_PLAN_SALUD", "IDENTIF_VEHICULOS_NRSERIE_PLACAS", "IDENTIF_DISPOSITIVOS_NRSERIE",
    "IDENTIF_BIOMETRICOS", "ID_SUJETO_ASISTENCIA", "ID_TITULACION_PERSONAL_SANITARIO",
    "ID_EMPLEO_PERSONAL_SANITARIO", "OTRO_NUMERO_IDENTIF", "SEXO_SUJETO_ASISTENCIA",
    "FAMILIARES_SUJETO_ASISTENCIA", "OTROS_SUJETO_ASISTENCIA", "DIREC_PROT_INTERNET",
)
SPLITS = {
    "train": ("corpus/train/brat",),
    "validation": ("corpus/dev/brat",),
    "test": ("corpus/test/brat",),
}

TASKS = {
    "meddocan": Task(
        name="meddocan",
        corpus=CORPUS_FOLDER,
        description="Detection of protected health information (29 types) in Spanish clinical case reports.",
        labels=LABELS,
        splits=SPLITS,
        read=read_brat_split,
        homepage=HOMEPAGE,
        license=LICENSE,
        citation=CITATION,
        language="es",
        train_splits=("train", "validation"),
        report_split="test",
    )
}
