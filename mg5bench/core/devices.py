"""``--device auto|cpu|cuda[:N]``: where models, evaluators, per-sample generators and noise live.

``auto`` is CUDA when torch sees a GPU, else the CPU. Under ``torchrun`` every process takes one GPU, its
``LOCAL_RANK`` (so ``cuda`` or ``auto``, never a fixed ``cuda:N``). The device *type* is part of a run's key:
a CUDA generator draws a different random stream than a CPU generator with the same seed and GPU kernels round
differently, so a CPU run and a GPU run are different generations; the device index is not (same GPU model, same
numbers; run.json records the GPU's name). On the CPU the thread count per process is keyed too (see
``runs.keys.generation_key``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from typing import Any

from mg5bench.core.errors import ConfigError

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
    facts = machine_facts()
    if not facts["cuda_devices"]:
        if req == "auto":
            return "cpu"
        raise ConfigError(f"--device {req}: CUDA is not available here (torch {facts['torch']}, CUDA build "
                          f"{facts['cuda_build']}); use --device cpu or auto")  # fmt: skip
    n = int(facts["cuda_devices"])
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

    facts = machine_facts()
    info: dict[str, Any] = {"device": device, "type": device_type(device), "torch": facts["torch"]}
    if device_type(device) == "cuda":
        import torch

        idx = int(device.split(":")[1]) if ":" in device else 0
        info["name"] = torch.cuda.get_device_name(idx)
        info["cuda"] = torch.version.cuda
    else:
        info["name"] = platform.processor() or platform.machine()
        info["threads"] = cpu_threads()
    return info


def cpu_threads() -> int:
    """The intra-op thread count torch uses in this process: torch's own answer once torch is imported (a
    process may have set it), else its default for this machine and environment (``machine_facts``)."""
    if "torch" in sys.modules:
        return int(sys.modules["torch"].get_num_threads())
    return int(machine_facts()["threads"])


_FACTS: dict[str, dict[str, Any]] = {}


def _facts_key() -> str:
    """What torch's device and thread defaults depend on: its version, the thread and GPU environment variables,
    the CPUs this process may use and the NVIDIA driver."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        tv = version("torch")
    except PackageNotFoundError:
        tv = "none"
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
                                            "NVIDIA_VISIBLE_DEVICES")}  # fmt: skip
    try:
        driver = open("/proc/driver/nvidia/version", encoding="utf-8").read()  # noqa: SIM115
    except OSError:
        driver = ""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return json.dumps([tv, env, os.cpu_count(), cpus, driver, sys.version], sort_keys=True)


def machine_facts() -> dict[str, Any]:
    """torch's version, CUDA device count and default CPU thread count, without importing torch when an earlier
    process of this machine and environment already asked (a small file in the user cache, keyed by everything
    they depend on): a finished run is then answered without loading torch."""
    key = _facts_key()
    if key in _FACTS:
        return _FACTS[key]
    from mg5bench.core.hashing import sha256_bytes, user_cache_dir

    path = user_cache_dir() / "machine" / f"{sha256_bytes(key)[:24]}.json"
    facts: dict[str, Any] | None = None
    fresh = "torch" not in sys.modules  # torch's thread count is still its default for this environment
    if fresh:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("key") == key and isinstance(data.get("facts"), dict):
                facts = data["facts"]
        except (OSError, ValueError):
            facts = None
    if facts is None:
        import torch

        facts = {"torch": torch.__version__, "cuda_build": torch.version.cuda,
                 "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
                 "threads": int(torch.get_num_threads())}  # fmt: skip
        if fresh:  # only a default, never a count this process set, is remembered for other processes
            from mg5bench.core.files import atomic_write_json

            with contextlib.suppress(OSError):  # a read-only cache only costs the torch import next time
                atomic_write_json(path, {"key": key, "facts": facts})
    _FACTS[key] = facts
    return facts
