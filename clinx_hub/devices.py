"""Where a model runs and in which precision: the one place ``--device``/``--dtype`` are resolved.

``auto`` takes CUDA, then Apple's MPS, then the CPU. fp16 is refused on the CPU (PyTorch's CPU
kernels for half precision are slow or missing); bf16 runs there. An exported ONNX model runs in
the precision it was exported in (fp32 or int8): on it ``--dtype`` other than fp32 is refused, and
the device picks onnxruntime's execution provider. torch and onnxruntime are imported only when a
choice needs them, so the CLI's parser stays light.

>>> resolve_device("cpu")
'cpu'
>>> resolve_dtype("bf16", "cpu")
'bf16'
"""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda", "mps")
"""What ``--device`` takes (``cuda:N`` too)."""
DTYPES = ("fp32", "fp16", "bf16")
"""What ``--dtype`` takes."""
TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class DeviceError(ValueError):
    """A device or dtype that cannot be used here; the message says what can."""


def resolve_device(requested: str | None = "auto") -> str:
    """The torch device for ``requested`` (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``); checked that it exists.

    >>> resolve_device("CPU")
    'cpu'
    """
    import torch

    name = (requested or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available(torch) else "cpu"
    kind, _, index = name.partition(":")
    if kind == "cpu" and not index:
        return "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {requested}: no CUDA device is visible here (use --device cpu or auto)")
        if index:
            if not index.isdigit():
                raise DeviceError(f"--device {requested}: a CUDA device is cuda or cuda:N (N a number)")
            if int(index) >= torch.cuda.device_count():
                raise DeviceError(
                    f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) are visible (cuda:0 ...)"
                )
        return name
    if kind == "mps" and not index:
        if not _mps_available(torch):
            raise DeviceError(f"--device {requested}: Apple's MPS is not available here (use --device cpu or auto)")
        return "mps"
    raise DeviceError(f"--device {requested!r}: expected one of {', '.join(DEVICES)} or cuda:N")


def _mps_available(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_dtype(requested: str | None, device: str) -> str:
    """``requested`` (``fp32``/``fp16``/``bf16``, default fp32) if ``device`` runs it; fp16 on the CPU is refused.

    >>> resolve_dtype(None, "cuda")
    'fp32'
    >>> resolve_dtype("fp16", "cpu")
    Traceback (most recent call last):
    ...
    clinx_hub.devices.DeviceError: --dtype fp16 needs a GPU: on the CPU use --dtype bf16 or fp32
    """
    name = (requested or "fp32").strip().lower()
    name = {"float32": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16"}.get(name, name)
    if name not in DTYPES:
        raise DeviceError(f"--dtype {requested!r}: expected one of {', '.join(DTYPES)}")
    if name == "fp16" and device.split(":")[0] == "cpu":
        raise DeviceError("--dtype fp16 needs a GPU: on the CPU use --dtype bf16 or fp32")
    return name


def torch_dtype(name: str):
    """The ``torch.dtype`` of ``fp32``/``fp16``/``bf16``."""
    import torch

    return getattr(torch, TORCH_DTYPES[name])


def onnx_providers(requested: str | None = "auto", available: list[str] | None = None) -> list:
    """onnxruntime execution providers for ``requested``: CUDA (with the CPU behind it) where present, else the CPU.

    ``available`` defaults to ``onnxruntime.get_available_providers()``.

    >>> onnx_providers("auto", ["CPUExecutionProvider"])
    ['CPUExecutionProvider']
    >>> onnx_providers("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    ['CUDAExecutionProvider', 'CPUExecutionProvider']
    """
    if available is None:
        import onnxruntime

        available = onnxruntime.get_available_providers()
    name = (requested or "auto").strip().lower()
    kind, _, index = name.partition(":")
    has_cuda = "CUDAExecutionProvider" in available
    if kind == "auto" and not index:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"] if has_cuda else ["CPUExecutionProvider"]
    if kind == "cpu" and not index:
        return ["CPUExecutionProvider"]
    if kind == "cuda":
        if not has_cuda:
            raise DeviceError(
                f"--device {requested}: onnxruntime has no CUDA execution provider here (install onnxruntime-gpu, "
                "or use --device cpu)"
            )
        if index and not index.isdigit():
            raise DeviceError(f"--device {requested}: a CUDA device is cuda or cuda:N (N a number)")
        cuda = ("CUDAExecutionProvider", {"device_id": int(index)}) if index else "CUDAExecutionProvider"
        return [cuda, "CPUExecutionProvider"]
    if kind == "mps":
        raise DeviceError(f"--device {requested}: an exported ONNX model runs on the CPU or CUDA, not MPS")
    raise DeviceError(f"--device {requested!r}: expected one of {', '.join(DEVICES)} or cuda:N")


def add_device_flags(parser) -> None:
    """``--device`` and ``--dtype`` on a command that runs a model (``predict``, ``evaluate``, ``demo``)."""
    parser.add_argument(
        "--device", default="auto", metavar="DEVICE",
        help="auto (CUDA, then MPS, then the CPU; the default), cpu, cuda, cuda:N or mps",
    )
    parser.add_argument(
        "--dtype", default="fp32", choices=DTYPES,
        help="precision of a PyTorch model (default fp32; fp16 needs a GPU, bf16 runs on the CPU too); "
        "an exported ONNX model runs as exported",
    )


__all__ = [
    "DEVICES",
    "DTYPES",
    "DeviceError",
    "add_device_flags",
    "onnx_providers",
    "resolve_device",
    "resolve_dtype",
    "torch_dtype",
]
