"""Resource limits and range checks shared by every command (run, score, ablate, report, annotate, human, data).

One place decides what a count, a number of resamples or a port may be, so the commands agree and refuse a bad
value before any work or any write: the argparse types below give argparse's one-line error (exit status 2), and
the ``check_*`` functions give a one-line ``ConfigError`` to the Python API. The limits bound the memory and time
one input can cost (docs/architecture.md, "Resource limits"). Standard library only: the CLI imports this module
before anything heavy.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Collection

from mg5bench.core.errors import ConfigError

# --- the limits ---------------------------------------------------------------------------------------------------

MAX_IMAGE_PIXELS = 4096 * 4096  # pixels of one image, read from its header before decoding (a 12 MP photo passes)
MAX_TEXT_CHARS = 10_000  # characters of one text (a data record's sentence or turn, a model output's text)
MAX_ROUGE_SENTENCE_WORDS = 1_000  # words of one '.'-sentence for rouge_l_minigpt5 (the rouge package recurses)
MAX_VARIANTS = 100  # variants of one ablation axis
MAX_CONFIG_BYTES = 1_000_000  # an axis or plan YAML file
MAX_RESAMPLES = 100_000  # bootstrap resamples of any CI
MIN_PERMUTATIONS = 100  # random arrangements of a permutation test: fewer cannot give p below 0.01
MAX_PERMUTATIONS = 100_000
MAX_INFERENCE_STEPS = 1_000  # diffusion sampling steps (the schedulers are trained on 1000 timesteps)
MAX_NEW_TOKENS = 4_096  # generated text tokens per output
MAX_GALLERY = 100  # samples in a report's HTML gallery (their images are embedded in the page)
MAX_SHEET_SAMPLES = 500  # samples on one contact sheet
MAX_PORT = 65_535
EXCERPT_CHARS = 40  # the most of a user's value an error message quotes


# --- checks -------------------------------------------------------------------------------------------------------


def excerpt(value: object, width: int = EXCERPT_CHARS) -> str:
    """``repr(value)`` cut to ``width`` characters: error messages name a bad value without echoing a whole file
    (a value may be a line of a file that holds secrets, or a megabyte long)."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def keys_excerpt(keys: Collection[object]) -> str:
    """Unknown keys as an error quotes them: '[...]' of at most three plain names (letters, digits, '_', '-');
    any other key is only counted. The file may not be what it was passed as, and its lines may hold secrets."""
    plain = sorted(k for k in keys if isinstance(k, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,31}", k))
    other = len(keys) - len(plain)
    shown = [repr(k) for k in plain[:3]] + (["..."] if len(plain) > 3 else [])
    if other:
        shown.append(f"{other} key(s) that are not plain names")
    return "[" + ", ".join(shown) + "]"


def _where(low: float | None, high: float | None, strict: bool = False, integer: bool = True) -> str:
    if integer and low == 1 and high is None:
        return "a positive integer"
    lo = None if low is None else f"{'>' if strict else '>='} {low:g}"
    hi = None if high is None else f"<= {high:g}"
    return " and ".join(x for x in (lo, hi) if x)


def int_problem(value: object, low: int | None = 0, high: int | None = None) -> str | None:
    """Why ``value`` is not an integer in [low, high] (None: it is). A bool is not a count."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"expected an integer, got {excerpt(value)}"
    if (low is not None and value < low) or (high is not None and value > high):
        return f"must be {_where(low, high)}, got {value}"
    return None


def number_problem(value: object, low: float | None = None, high: float | None = None, *,
                   strict: bool = False) -> str | None:  # fmt: skip
    """Why ``value`` is not a finite number >= ``low`` (> with ``strict``) and <= ``high`` (None: it is)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a number, got {excerpt(value)}"
    if not math.isfinite(value):
        return f"must be a finite number, got {value}"
    if (low is not None and (value < low or (strict and value == low))) or (high is not None and value > high):
        return f"must be {_where(low, high, strict, integer=False)}, got {value:g}"
    return None


def check_int(name: str, value: object, low: int | None = 0, high: int | None = None) -> int:
    """``value`` as an integer in [low, high], else a one-line ConfigError naming ``name`` (a flag or a field)."""
    problem = int_problem(value, low, high)
    if problem:
        raise ConfigError(f"{name}: {problem}")
    return value  # type: ignore[return-value]


def check_number(name: str, value: object, low: float | None = None, high: float | None = None, *,
                 strict: bool = False) -> float:  # fmt: skip
    problem = number_problem(value, low, high, strict=strict)
    if problem:
        raise ConfigError(f"{name}: {problem}")
    return float(value)  # type: ignore[arg-type]


def check_resamples(value: object, name: str = "--resamples") -> int:
    """Bootstrap resamples: 0 (no intervals) up to MAX_RESAMPLES."""
    return check_int(name, value, 0, MAX_RESAMPLES)


def check_permutations(value: object, name: str = "--permutations") -> int:
    """Random arrangements of a permutation test: MIN_PERMUTATIONS up to MAX_PERMUTATIONS."""
    return check_int(name, value, MIN_PERMUTATIONS, MAX_PERMUTATIONS)


# --- argparse types -----------------------------------------------------------------------------------------------


def int_type(low: int | None = 0, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high] (a count, a size, a number of steps)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {excerpt(text)}") from None
        problem = int_problem(value, low, high)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = "integer"
    return parse


def number_type(low: float | None = None, high: float | None = None, *, strict: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number >= ``low`` (> with ``strict``; <= ``high`` if given); NaN and inf refused."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {excerpt(text)}") from None
        problem = number_problem(value, low, high, strict=strict)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = "number"
    return parse


COUNT = int_type(0)  # 0 allowed (often "all" or "none")
POSITIVE = int_type(1)
SEED = int_type(0)
RESAMPLES = int_type(0, MAX_RESAMPLES)
PERMUTATIONS = int_type(MIN_PERMUTATIONS, MAX_PERMUTATIONS)
INFERENCE_STEPS = int_type(1, MAX_INFERENCE_STEPS)
NEW_TOKENS = int_type(1, MAX_NEW_TOKENS)
GALLERY = int_type(0, MAX_GALLERY)
SHEET_SAMPLES = int_type(1, MAX_SHEET_SAMPLES)
PORT = int_type(1, MAX_PORT)
NONNEGATIVE_REAL = number_type(0)
POSITIVE_REAL = number_type(0, strict=True)
UNIT = number_type(0, 1, strict=True)
