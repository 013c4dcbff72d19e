"""The package face: lazy names, one registration, a document layer and a CLI start-up without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import clinx_hub
from clinx_hub.corpora import TASK_MODULES, get_task, task_names

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers")

ENTRY_POINTS = {
    "load_extractor", "Extractor", "ClinXEnsemble", "ClinXForTokenClassification", "ClinXConfig", "ClinXTrainer",
    "ClinXTrainingArguments", "train_task", "extraction_pipeline", "ClinXCardData", "push_model",
    "score_documents", "Document", "Span",
}


def run_python(code: str, timeout: int = 300) -> str:
    """Run ``code`` in a fresh interpreter (nothing imported yet) and return its stdout."""
    env_code = "import os; os.environ.setdefault('HF_HUB_OFFLINE', '1')\n" + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def heavy_modules_after(code: str) -> list[str]:
    loaded = f"\nimport json, sys; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = run_python(textwrap.dedent(code) + loaded)
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "module",
    ["clinx_hub", "clinx_hub.documents", "clinx_hub.formats", "clinx_hub.sentences", "clinx_hub.tagging",
     "clinx_hub.evaluation", "clinx_hub.corpora", "clinx_hub.task", "clinx_hub.cli"],
)
def test_the_document_layer_loads_no_torch(module: str) -> None:
    assert heavy_modules_after(f"import {module}") == []


@pytest.fixture(scope="module")
def brat_pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny invented BRAT folder (gold) and a prediction folder beside it."""
    root = tmp_path_factory.mktemp("brat")
    for folder in ("gold", "pred"):
        (root / folder).mkdir()
        (root / folder / "a.txt").write_text("Paciente de 45 años.\n", encoding="utf-8")
        (root / folder / "a.ann").write_text("T1\tEDAD 12 19\t45 años\n", encoding="utf-8")
    return root


def test_clinx_help_score_and_stats_load_no_torch(brat_pair: Path) -> None:
    commands = {
        "help": ["--help"],
        "score": ["score", "--gold", str(brat_pair / "gold"), "--pred", str(brat_pair / "pred")],
        "stats": ["data", "stats", "brat", "--data-dir", str(brat_pair / "gold")],
    }
    for name, argv in commands.items():
        code = f"""
        from clinx_hub.cli import main
        try:
            main({argv!r})
        except SystemExit:
            pass
        """
        assert heavy_modules_after(code) == [], name


def test_the_face_exports_the_entry_points_and_no_internals() -> None:
    assert ENTRY_POINTS <= set(clinx_hub.__all__)
    assert not {"LinearChainCRF", "scheme_constraints", "SpanTags", "scheme_labels"} & set(clinx_hub.__all__)
    assert set(clinx_hub.__all__) <= set(dir(clinx_hub))
    for name in clinx_hub.__all__:
        assert getattr(clinx_hub, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'LinearChainCRF'"):
        clinx_hub.LinearChainCRF  # noqa: B018


def test_a_model_layer_name_registers_the_auto_classes_once() -> None:
    code = """
    import sys
    import clinx_hub
    assert "transformers.models.auto.configuration_auto" not in sys.modules
    from transformers import AutoConfig  # loading the Auto config module registers the config, not the model
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    assert "clinx" in CONFIG_MAPPING and "clinx_hub.modeling_clinx" not in sys.modules
    assert type(AutoConfig.for_model("clinx")).__name__ == "ClinXConfig"
    from transformers import AutoModelForTokenClassification  # ... and the Auto model module, the model
    assert "clinx_hub.modeling_clinx" in sys.modules
    from clinx_hub.configuration_clinx import ClinXConfig
    from clinx_hub.modeling_clinx import ClinXForTokenClassification
    assert AutoModelForTokenClassification._model_mapping[ClinXConfig] is ClinXForTokenClassification
    assert clinx_hub.ClinXConfig._auto_class == "AutoConfig"
    clinx_hub.register(); clinx_hub.register()  # idempotent
    print("OK")
    """
    assert run_python(code).strip().endswith("OK")


def test_clinx_extraction_is_found_after_import_clinx_hub(tmp_path: Path, tiny_backbone_dir: Path) -> None:
    """README's form: ``import clinx_hub``, then transformers' pipeline finds the task (both import orders)."""
    from transformers import AutoTokenizer

    from clinx_hub.modeling_clinx import ClinXForTokenClassification
    from clinx_hub.tagging import scheme_labels

    clinx_hub.register()  # the folder gets auto_map, as training writes it
    model = ClinXForTokenClassification.from_backbone(
        str(tiny_backbone_dir), scheme_labels(["EDAD"], "bioes"), context_size=16, window_length=64
    )
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_backbone_dir).save_pretrained(tmp_path)
    readme = f"""
    import clinx_hub
    from transformers import pipeline
    extract = pipeline("clinx-extraction", model={str(tmp_path)!r}, device="cpu")
    print(type(extract).__name__, type(extract("Paciente de 45 años.")).__name__)
    """
    assert run_python(readme).split() == ["ClinXExtractionPipeline", "list"]
    # clinx_hub.pipeline's own `from transformers import Pipeline` is what loads transformers.pipelines here.
    module_first = """
    import clinx_hub.pipeline
    from transformers.pipelines import PIPELINE_REGISTRY
    print(PIPELINE_REGISTRY.check_task("clinx-extraction")[1]["impl"])
    """
    assert run_python(module_first).strip() == "clinx_hub.pipeline.ClinXExtractionPipeline"


def test_corpus_modules_live_under_the_package_namespace() -> None:
    assert all(module.startswith("clinx_hub.dataset_scripts.") for module in TASK_MODULES.values())
    assert (ROOT / "clinx_hub" / "dataset_scripts").resolve() == (ROOT / "dataset_scripts").resolve()
    tasks = {name: get_task(name) for name in task_names()}
    assert {type(task).__module__ for task in tasks.values()} == {"clinx_hub.task"}
    # The registry lists the corpus modules; they import clinx_hub.task, never clinx_hub.corpora.
    for path in (ROOT / "dataset_scripts").glob("*.py"):
        assert "import clinx_hub.corpora" not in path.read_text(encoding="utf-8"), path.name
        assert "from clinx_hub.corpora" not in path.read_text(encoding="utf-8"), path.name
