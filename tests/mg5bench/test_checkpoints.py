"""Checkpoint files checked before loading: a safetensors file's header, dtypes, shapes and byte ranges
against its size, and the tensors a loader expects, each failure one line naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from mg5bench.core.checkpoints import check_safetensors, safetensors_header
from mg5bench.core.errors import DataError


@pytest.fixture()
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "w.safetensors"
    save_file({"mapper.w": np.ones((4, 3), np.float32), "tokens.embed": np.zeros(5, np.float16)}, str(path))
    return path


def test_a_whole_file_passes(weights: Path) -> None:
    tensors = check_safetensors(weights, required=("tokens.embed",), prefixes=("mapper.",), count=2)
    assert set(tensors) == {"mapper.w", "tokens.embed"}


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda b: b[: len(b) - 7], "cut short: tensor"),
        (lambda b: b[:5], "shorter than its 8-byte header length"),
        (lambda b: b[:20], "damaged or cut short: its header claims"),
        (lambda b: b + b"\0" * 16, "16 bytes after the last tensor"),
        (lambda b: b[:8] + b"#" * 16 + b[24:], "header is not valid JSON"),
        (lambda b: b[:8] + b[8:].replace(b'"F32"', b'"F64"', 1), "needs 96 bytes, its header gives 48"),
    ],
)
def test_damage_is_one_line_naming_the_file(weights: Path, damage, problem: str) -> None:  # type: ignore[no-untyped-def]
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(DataError) as info:
        safetensors_header(weights, fix="copy it again")
    line = str(info.value)
    assert str(weights) in line and problem in line and "(fix: copy it again)" in line and "\n" not in line


def test_the_tensors_a_loader_expects(weights: Path) -> None:
    with pytest.raises(DataError, match=r"no tensor tokens.head, lora.\*"):
        check_safetensors(weights, required=("tokens.head",), prefixes=("lora.",))
    with pytest.raises(DataError, match="holds 2 tensors, its config says 56"):
        check_safetensors(weights, count=56)
