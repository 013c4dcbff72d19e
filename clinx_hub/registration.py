"""Registering CLIN-X with transformers: the Auto classes and the ``clinx-extraction`` pipeline task.

All of it happens in :func:`register`, once per process, however often it is called. It runs
when a model-layer name is first used through the package (``from clinx_hub import
ClinXForTokenClassification``) and in every loader that opens a saved folder with the Auto
classes (:func:`clinx_hub.ensemble.load_extractor`, training, similarity), so that a plain
``import clinx_hub`` stays cheap: it loads neither torch nor transformers' model classes.

Why the pipeline task waits for ``transformers.pipelines``: ``pipeline("clinx-extraction")``
looks the task up in ``PIPELINE_REGISTRY``, which lives in that module, and importing it costs
seconds (torch, every Auto model class). ``import clinx_hub`` therefore only asks to be told when
that module has been imported (:func:`register_when_pipelines_load`, a one-shot import hook), and
registers everything then; README's ``import clinx_hub`` + ``pipeline("clinx-extraction", ...)``
works as before, and commands that never build a pipeline never pay for one.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import threading
from types import ModuleType

PIPELINE_TASK = "clinx-extraction"
PIPELINE_CLASS = "clinx_hub.pipeline.ClinXExtractionPipeline"
"""By dotted path, as transformers 5 lists its own tasks: the registry resolves it when a pipeline is built."""
PIPELINES_MODULE = "transformers.pipelines"

_lock = threading.RLock()
_auto_classes_registered = False


def register() -> None:
    """Register ``ClinXConfig`` / ``ClinXForTokenClassification`` with the Auto classes and the pipeline task.

    Idempotent and cheap after the first call. Afterwards ``AutoConfig.for_model("clinx")``,
    ``AutoModelForTokenClassification.from_pretrained(folder)`` (no remote code needed) and
    ``pipeline("clinx-extraction", model=folder)`` all work, and ``save_pretrained`` writes
    ``auto_map`` and copies the two model files into the folder.

    >>> register()
    >>> from transformers import AutoConfig
    >>> type(AutoConfig.for_model("clinx")).__name__
    'ClinXConfig'
    """
    global _auto_classes_registered
    with _lock:
        if not _auto_classes_registered:
            _register_auto_classes()
            _auto_classes_registered = True
        registry = getattr(sys.modules.get(PIPELINES_MODULE), "PIPELINE_REGISTRY", None)
        if registry is not None:
            _register_pipeline_task(registry)
        else:
            register_when_pipelines_load()


def _register_auto_classes() -> None:
    from transformers import AutoConfig, AutoModelForTokenClassification

    from .configuration_clinx import ClinXConfig
    from .modeling_clinx import ClinXForTokenClassification

    AutoConfig.register(ClinXConfig.model_type, ClinXConfig, exist_ok=True)
    AutoModelForTokenClassification.register(ClinXConfig, ClinXForTokenClassification, exist_ok=True)
    # Saved folders carry `auto_map` and copies of the two model files, so that plain transformers
    # loads them with trust_remote_code=True where clinx_hub is not installed.
    ClinXConfig.register_for_auto_class()
    ClinXForTokenClassification.register_for_auto_class("AutoModelForTokenClassification")


def _register_pipeline_task(registry) -> None:
    if PIPELINE_TASK in registry.supported_tasks:
        return
    from transformers import AutoModelForTokenClassification

    # The dict register_pipeline would write, with the class by path: this may run while
    # clinx_hub.pipeline itself is being imported (its `from transformers import Pipeline`
    # loads transformers.pipelines), before the class exists.
    registry.supported_tasks[PIPELINE_TASK] = {"impl": PIPELINE_CLASS, "pt": (AutoModelForTokenClassification,)}


class _AfterPipelinesImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``transformers.pipelines`` as usual, then runs :func:`register` once it has executed."""

    def __init__(self) -> None:
        self._loader: importlib.abc.Loader | None = None

    def find_spec(self, name: str, path=None, target=None):
        if name != PIPELINES_MODULE:
            return None
        _remove_hook()  # one shot; the finders after this one now find the module as usual
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The module keeps transformers' own loader (for reloads, resources, inspect).
        module.__spec__.loader = module.__loader__ = self._loader
        self._loader.exec_module(module)
        register()


_hook: _AfterPipelinesImport | None = None


def register_when_pipelines_load() -> None:
    """Run :func:`register` once ``transformers.pipelines`` has been imported (at once if it has been)."""
    global _hook
    with _lock:
        if PIPELINES_MODULE in sys.modules:
            # Still executing (it imported us): the hook that saw it start registers when it ends.
            if hasattr(sys.modules[PIPELINES_MODULE], "PIPELINE_REGISTRY"):
                register()
        elif _hook is None:
            _hook = _AfterPipelinesImport()
            sys.meta_path.insert(0, _hook)


def _remove_hook() -> None:
    global _hook
    hook, _hook = _hook, None
    try:
        sys.meta_path.remove(hook)
    except ValueError:
        pass


__all__ = ["register", "register_when_pipelines_load"]
