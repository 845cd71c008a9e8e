"""Training-resume files (``<out>/*_state.pt``): read with ``torch.load(weights_only=True)``.

A resume file lies in an output folder the user names; whoever could write there could leave a pickle that runs
code when loaded with full unpickling. The states the trainers save hold only tensors, numbers, strings and
lists/dicts of them, which ``weights_only`` loading reads, so nothing else is needed. Imports nothing from mg5bench.
"""

from __future__ import annotations

import pickle
import re
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
