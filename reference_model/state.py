"""Training-resume files (``<out>/*_state.pt``): written atomically (``save_state``), read with
``torch.load(weights_only=True)`` (``load_state``), and restored into a training's parts (``resume``).

A resume file lies in an output folder the user names; whoever could write there could leave a pickle that runs
code when loaded with full unpickling. The states the trainers save hold only tensors, numbers, strings and
lists/dicts of them, which ``weights_only`` loading reads, so nothing else is needed. Imports nothing from mg5bench.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


class StateFileError(ValueError):
    """A resume file that cannot be read safely (not one this code wrote, or damaged): the file, the problem and the
    fix, as one line."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path, self.problem = path, problem
        self.fix = f"delete {path} (training then starts from step 0) or pass a new --out"
        super().__init__(f"{path}: {problem}; {self.fix}")


def load_state(path: str | Path, map_location: Any = None) -> dict[str, Any]:
    """A resume state written by ``torch.save`` in this package's trainers, loaded without running any code from the
    file; anything else (a pickle with objects, a damaged file) is a StateFileError."""
    import torch

    path = Path(path)
    try:
        st = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        named = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f" (it names {named.group(1)})" if named else ""
        raise StateFileError(path, f"refused to load: it holds objects other than tensors and numbers{what}, so this "
                             "training did not write it and loading it could run code") from None  # fmt: skip
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise StateFileError(path, f"not a readable training state ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(st, dict) or not isinstance(st.get("step"), int):
        raise StateFileError(path, "not a training state (no step count in it)")
    return st


def resume(path: str | Path, parts: Mapping[str, Any], map_location: Any = None,
           check: Callable[[dict[str, Any]], None] | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    """Resume a training from its state file, if there is one: the file read safely (``load_state``), ``check(state)``
    (e.g. that it was written by the same training config), then each of ``parts`` restored from the state's entry of
    the same name, in order (an object with ``load_state_dict``, or a function taking the entry). Returns the step to
    start from and the state ({} and 0 when there is no file, so training starts fresh)."""
    path = Path(path)
    if not path.exists():
        return 0, {}
    st = load_state(path, map_location=map_location)
    if check is not None:
        check(st)
    for key, part in parts.items():
        load = getattr(part, "load_state_dict", part)
        load(st[key])
    return int(st["step"]), st


def save_state(state: Mapping[str, Any], path: str | Path) -> None:
    """Write a training state with ``torch.save``, atomically (a temporary file beside it, then a rename): an
    interrupted save leaves the previous state."""
    import os

    import torch

    path = Path(path)
    tmp = path.with_suffix(".tmp")
    torch.save(dict(state), tmp)
    os.replace(tmp, path)
