"""Per-sample randomness: every sample draws from its own ``torch.Generator``, seeded from (run seed, sample id),
so a sample's random draws do not depend on which other samples were generated with it, in which order, or by
which process. The runner seeds generation with it; card evaluations and probe scripts that call a model
directly use the same function to get the same draws."""

from __future__ import annotations

from typing import Any

from mg5bench.core.hashing import sha256_bytes


def sample_seed(seed: int, sample_id: str) -> int:
    """The seed of one sample's torch.Generator: a hash of (run seed, sample id), 63 bits."""
    return int.from_bytes(bytes.fromhex(sha256_bytes(f"{seed}:{sample_id}"))[:8], "little") & (2**63 - 1)


def sample_generator(seed: int, sample_id: str, device: str = "cpu") -> Any:
    """One sample's torch.Generator on ``device`` (its random stream is device-specific)."""
    import torch

    return torch.Generator(device).manual_seed(sample_seed(seed, sample_id))
