"""``--device auto|cpu|cuda[:N]``: where models, evaluators, per-sample generators and noise live.

``auto`` is CUDA when torch sees a GPU, else the CPU. Under ``torchrun`` every process takes one GPU, its
``LOCAL_RANK`` (so ``cuda`` or ``auto``, never a fixed ``cuda:N``). The device *type* is part of a run's key:
a CUDA generator draws a different random stream than a CPU generator with the same seed and GPU kernels round
differently, so a CPU run and a GPU run are different generations; the device index is not (same GPU model, same
numbers; run.json records the GPU's name). On the CPU the thread count per process is keyed too (see
``runner.generation_key``).
"""

from __future__ import annotations

import re
from typing import Any

from mg5bench.errors import ConfigError

DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"
_VALID = re.compile(r"auto|cpu|cuda(:\d+)?")


def resolve_device(requested: str | None = "auto", *, local_rank: int | None = None) -> str:
    """``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` -> a concrete torch device string (``cpu`` or ``cuda:N``).
    ``local_rank`` (under torchrun) picks one GPU per process."""
    req = (requested or "auto").strip().lower()
    if not _VALID.fullmatch(req):
        raise ConfigError(f"--device {requested!r}: use {DEVICE_HELP}")
    if req == "cpu":
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        if req == "auto":
            return "cpu"
        raise ConfigError(f"--device {req}: CUDA is not available here (torch {torch.__version__}, CUDA build "
                          f"{torch.version.cuda}); use --device cpu or auto")  # fmt: skip
    n = torch.cuda.device_count()
    if local_rank is not None:
        if ":" in req:
            raise ConfigError(f"--device {req}: under torchrun each process uses cuda:<LOCAL_RANK>; pass --device cuda")
        index = local_rank
    else:
        index = int(req.split(":")[1]) if ":" in req else 0
    if index >= n:
        raise ConfigError(f"--device cuda:{index}: this machine has {n} CUDA device(s) (cuda:0 .. cuda:{n - 1})")
    return f"cuda:{index}"


def device_type(device: str) -> str:
    """``cuda:1`` -> ``cuda``; ``cpu`` -> ``cpu``."""
    return device.split(":", 1)[0]


def device_info(device: str) -> dict[str, Any]:
    """What run.json records about the device (the GPU's name: numbers can differ between GPU models)."""
    import platform

    import torch

    info: dict[str, Any] = {"device": device, "type": device_type(device), "torch": torch.__version__}
    if device_type(device) == "cuda":
        idx = int(device.split(":")[1]) if ":" in device else 0
        info["name"] = torch.cuda.get_device_name(idx)
        info["cuda"] = torch.version.cuda
    else:
        info["name"] = platform.processor() or platform.machine()
        info["threads"] = torch.get_num_threads()
    return info
