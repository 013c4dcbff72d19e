"""Registering CLIN-X with transformers: the Auto classes and the ``clinx-extraction`` pipeline task.

All of it happens in :func:`register`, once per process, however often it is called. It runs
when a model-layer name is first used through the package (``from clinx_hub import
ClinXForTokenClassification``), in every loader that opens a saved folder, and when transformers
itself loads the module that would need it, so that a plain ``import clinx_hub`` stays cheap (it
loads neither torch nor transformers' model classes) and yet plain transformers calls work after it:

- ``transformers.models.auto.configuration_auto`` (``AutoConfig``, and ``AutoTokenizer``, which
  reads a folder's config first): the config is registered, so a saved folder's tokenizer and
  config load without ``trust_remote_code`` and without transformers' interactive y/N prompt;
- ``transformers.models.auto.modeling_auto`` (``AutoModelForTokenClassification``): the model too;
- ``transformers.pipelines``: everything, the ``clinx-extraction`` task included
  (``pipeline("clinx-extraction")`` looks the task up in ``PIPELINE_REGISTRY``, which lives there).

``import clinx_hub`` only asks to be told when those modules have been imported
(:func:`register_when_pipelines_load`, one-shot import hooks); commands that never load them
never pay for them.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import threading
import warnings
from collections.abc import Callable
from types import ModuleType

PIPELINE_TASK = "clinx-extraction"
PIPELINE_CLASS = "clinx_hub.pipeline.ClinXExtractionPipeline"
"""By dotted path, as transformers 5 lists its own tasks: the registry resolves it when a pipeline is built."""
PIPELINES_MODULE = "transformers.pipelines"

CONFIG_AUTO_MODULE = "transformers.models.auto.configuration_auto"
MODELING_AUTO_MODULE = "transformers.models.auto.modeling_auto"

_lock = threading.RLock()
_config_registered = False
_model_registered = False


def register() -> None:
    """Register ``ClinXConfig`` / ``ClinXForTokenClassification`` with the Auto classes and the pipeline task.

    Idempotent and cheap after the first call. Afterwards ``AutoConfig.for_model("clinx")``,
    ``AutoModelForTokenClassification.from_pretrained(folder)`` and ``AutoTokenizer.from_pretrained(folder)``
    (no remote code needed) and ``pipeline("clinx-extraction", model=folder)`` all work, and
    ``save_pretrained`` writes ``auto_map`` and copies the model's files into the folder.

    >>> register()
    >>> from transformers import AutoConfig
    >>> type(AutoConfig.for_model("clinx")).__name__
    'ClinXConfig'
    """
    with _lock:
        register_config()
        register_model()
        registry = getattr(sys.modules.get(PIPELINES_MODULE), "PIPELINE_REGISTRY", None)
        if registry is not None:
            _register_pipeline_task(registry)
        else:
            register_when_pipelines_load()


def register_config() -> None:
    """``AutoConfig`` knows ``model_type="clinx"`` (torch-free: the config module imports only transformers)."""
    global _config_registered
    with _lock:
        if _config_registered or _being_imported("configuration_clinx", "ClinXConfig"):
            return
        from transformers import AutoConfig

        from .configuration_clinx import ClinXConfig

        AutoConfig.register(ClinXConfig.model_type, ClinXConfig, exist_ok=True)
        # Saved folders carry `auto_map` and copies of the model files, so that plain transformers
        # loads them with trust_remote_code=True where clinx_hub is not installed.
        ClinXConfig.register_for_auto_class()
        _config_registered = True


def register_model() -> None:
    """``AutoModelForTokenClassification`` builds ``ClinXForTokenClassification`` (imports torch)."""
    global _model_registered
    with _lock:
        if _model_registered or _being_imported("modeling_clinx", "ClinXForTokenClassification"):
            return
        register_config()
        from transformers import AutoModelForTokenClassification

        from .configuration_clinx import ClinXConfig
        from .modeling_clinx import ClinXForTokenClassification

        AutoModelForTokenClassification.register(ClinXConfig, ClinXForTokenClassification, exist_ok=True)
        ClinXForTokenClassification.register_for_auto_class("AutoModelForTokenClassification")
        _model_registered = True


def _being_imported(module: str, name: str) -> bool:
    """Whether our ``module`` is executing right now (its own transformers imports fired a hook):
    registering would import it half-made; whoever imports it calls :func:`register` afterwards."""
    partial = sys.modules.get(f"{__package__}.{module}")
    return partial is not None and not hasattr(partial, name)


def _register_pipeline_task(registry) -> None:
    if PIPELINE_TASK in registry.supported_tasks:
        return
    # The dict register_pipeline would write, with the classes by path: this may run while
    # clinx_hub.pipeline itself is being imported (its `from transformers import Pipeline`
    # loads transformers.pipelines), before the class exists. The model "class" is the loader that
    # opens what load_extractor opens (a model, an ensemble or an exported folder).
    from .extractor_pipeline import ExtractorLoader

    registry.supported_tasks[PIPELINE_TASK] = {"impl": PIPELINE_CLASS, "pt": (ExtractorLoader,)}


class _AfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds a module as usual, then runs a callback once it has executed (one shot per module)."""

    def __init__(self, callbacks: dict[str, Callable[[], None]]) -> None:
        self._callbacks = dict(callbacks)
        self._loaders: dict[str, importlib.abc.Loader] = {}

    def find_spec(self, name: str, path=None, target=None):
        if name not in self._callbacks or name in self._loaders:
            return None
        self._loaders[name] = None  # while we look it up ourselves, the other finders answer
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        self._loaders[name] = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._loaders[spec.name].create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        name = module.__spec__.name
        loader = self._loaders[name]
        # The module keeps transformers' own loader (for reloads, resources, inspect).
        module.__spec__.loader = module.__loader__ = loader
        loader.exec_module(module)
        callback = self._callbacks.pop(name)
        if not self._callbacks:
            _remove_hook()
        try:
            callback()
        except Exception as err:  # noqa: BLE001 - a failed registration must never break the user's import
            warnings.warn(f"clinx_hub could not register with {name}: {err}", RuntimeWarning, stacklevel=2)


_hook: _AfterImport | None = None


def register_when_pipelines_load() -> None:
    """Register what each of transformers' Auto and pipeline modules needs once it has been imported.

    A module already imported gets its registration at once; the others through a one-shot import hook.
    """
    global _hook
    with _lock:
        wanted = {CONFIG_AUTO_MODULE: register_config, MODELING_AUTO_MODULE: register_model, PIPELINES_MODULE: register}
        pending = {}
        for name, callback in wanted.items():
            module = sys.modules.get(name)
            if module is None:
                pending[name] = callback
            elif name != PIPELINES_MODULE or hasattr(module, "PIPELINE_REGISTRY"):
                callback()
            # transformers.pipelines still executing (it imported us): the hook that saw it start registers.
        if pending and _hook is None:
            _hook = _AfterImport(pending)
            sys.meta_path.insert(0, _hook)


def _remove_hook() -> None:
    global _hook
    hook, _hook = _hook, None
    try:
        sys.meta_path.remove(hook)
    except ValueError:
        pass


__all__ = ["register", "register_config", "register_model", "register_when_pipelines_load"]
