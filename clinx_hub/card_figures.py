"""The pictures of a model card, as PNG bytes: held-out F1 per epoch and strict F1 per label.

matplotlib is the optional ``plots`` extra: it is imported only here and only when a picture is
drawn; :func:`plotting_available` tells the card whether it can have pictures at all. The figures
are drawn on matplotlib's ``Figure`` directly (no ``pyplot`` state, no display needed) and saved
without the software tag, so the same scores give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

PLOTS_EXTRA = "pip install 'clinx_hub[plots]'"
IMAGES = {"training_curve": "images/training_curve.png", "per_label_f1": "images/per_label_f1.png"}
"""A card's pictures, as paths relative to its ``README.md``."""


def card_pictures(
    curves: Mapping[str, Sequence[tuple[float, float]]], per_label: Mapping[str, Mapping[str, float]]
) -> tuple[dict[str, bytes], str | None]:
    """The pictures there are data for, as PNG bytes by path, and why there are none where matplotlib is missing.

    >>> card_pictures({}, {})
    ({}, None)
    """
    if not curves and not per_label:
        return {}, None
    if not plotting_available():
        return {}, (
            "This card was rendered without its pictures (training curve, per-label F1): matplotlib is not "
            f"installed where it was rendered ({PLOTS_EXTRA})."
        )
    files = {}
    if curves:
        files[IMAGES["training_curve"]] = training_curve_png(curves)
    if per_label:
        scores = {label: (float(s.get("f1", 0.0)), int(s.get("support", 0))) for label, s in per_label.items()}
        files[IMAGES["per_label_f1"]] = per_label_f1_png(scores)
    return files, None


def plotting_available() -> bool:
    """Whether matplotlib can be imported here (the ``plots`` extra).

    >>> isinstance(plotting_available(), bool)
    True
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def training_curve_png(curves: Mapping[str, Sequence[tuple[float, float]]]) -> bytes:
    """One line per model (ensemble member) of held-out strict F1 against the epoch.

    >>> training_curve_png({"0": [(1.0, 0.4), (2.0, 0.6)]})[:8]  # doctest: +SKIP
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    from matplotlib.ticker import MaxNLocator

    figure = _figure(6.0, 3.6)
    axes = figure.add_subplot()
    for name, points in curves.items():
        epochs, scores = zip(*points)
        axes.plot(epochs, scores, marker="o", label=name if len(curves) > 1 else None)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel("held-out strict micro F1")
    axes.set_ylim(0, 1)
    axes.grid(alpha=0.3)
    if len(curves) > 1:
        axes.legend(title="member", fontsize="small")
    return _png(figure)


def per_label_f1_png(scores: Mapping[str, tuple[float, int]]) -> bytes:
    """A horizontal bar of strict F1 for each label (``label -> (f1, support)``), support in the label.

    >>> per_label_f1_png({"FECHAS": (0.9, 12), "EDAD": (0.5, 3)})[:8]  # doctest: +SKIP
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    labels = sorted(scores, reverse=True)  # top to bottom in alphabetical order
    figure = _figure(6.0, 1.0 + 0.28 * len(labels))
    axes = figure.add_subplot()
    axes.barh([f"{label} ({scores[label][1]})" for label in labels], [scores[label][0] for label in labels])
    axes.set_xlim(0, 1)
    axes.set_xlabel("strict F1 (support in brackets)")
    axes.tick_params(axis="y", labelsize="small")
    axes.grid(axis="x", alpha=0.3)
    return _png(figure)


def _figure(width: float, height: float):  # noqa: ANN202 - matplotlib.figure.Figure, imported lazily
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(figure) -> bytes:  # noqa: ANN001 - matplotlib.figure.Figure, imported lazily
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
