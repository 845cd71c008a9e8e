"""What every command of the CLI shares: the parser class (an argument error is one line and exit 2), the flags
several commands take, the quieting of library output, and how an error becomes one line. Standard library only
(and ``mg5bench.core``): ``mg5bench --help`` imports no torch, numpy, yaml or PIL."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import NoReturn

EXAMPLES = """\
examples:
  mg5bench ls tasks
  mg5bench data synth --out world/ --size small --level 1
  mg5bench data validate official_samples/VIST --task vist
  mg5bench data export --task vist --split val --out vist_val.jsonl
  mg5bench data export --task vist --task-args round_range=last,context=text --out gill_vist.jsonl
  mg5bench data convert vist-sis val.story-in-sequence.json images/ vist_data/
  mg5bench data overlap --source cc3m:train --target vist:test --data synth:level=3 --out overlap.json
  mg5bench score --task vist --split val --predictions preds.jsonl --out scores/
  mg5bench run --task vist --model minigpt5
  torchrun --nproc-per-node 2 -m mg5bench run --task vist --model sd2 --limit 0
"""

DEFAULT_LIMIT = 200


class Parser(argparse.ArgumentParser):
    """An argument error is one line on stderr and exit status 2, like every other error (argparse's default
    prints the usage block first); subcommand parsers inherit this class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_task_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--task-args",
        metavar="K=V,...",
        help="protocol overrides, e.g. round_range=last,context=text (vist) or first_media_only=false (default: "
        "the task's protocol)",
    )


def add_output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars (default: shown)")
    p.add_argument("--verbose", action="store_true", help="also show the libraries' warnings and their nested "
                   "'Loading weights' / 'Writing model shards' bars (default: silenced)")  # fmt: skip


EVALUATOR_HELP = ("embedded | open_clip:<model>:<weights> | open_clip:local-dir:<folder> | hf-clip:<folder> (default: "
                  "embedded on the synthetic world; required on other data, where 'embedded' must be named and is "
                  "flagged); see 'mg5bench ls evaluators'")  # fmt: skip


QUIET_ENV = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
             "TRANSFORMERS_VERBOSITY": "error", "DIFFUSERS_VERBOSITY": "error"}  # fmt: skip


@contextlib.contextmanager
def quiet_libraries(enabled: bool) -> Iterator[None]:
    """Normal runs print mg5bench's own progress and results only: no library warnings, no nested 'Loading weights'
    or 'Loading pipeline components' bars (``--verbose`` keeps them). Set before any library is imported; bars that
    mg5bench draws pass ``disable=`` explicitly, which tqdm's TQDM_DISABLE default does not override. The
    environment and warning filters are restored afterwards, so ``main()`` called in-process leaves no trace."""
    import os
    import warnings

    if not enabled:
        yield
        return
    saved = {k: os.environ.get(k) for k in QUIET_ENV}
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"^(?!mg5bench|reference_model)")
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


MAX_ERROR_CHARS = 1000
MAX_LISTED = 20  # lines of a list a command prints before pointing at the file that holds all of them


def one_line(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """An error message as one line of at most ``limit`` characters: a message built from a file's content can
    neither spread over many lines nor print the whole file."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 5] + " ..."


def os_error_fix(e: OSError) -> str:
    """The fix for an OSError that reached the command line, by its kind (only a full disk is about space)."""
    import errno

    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "free space, then rerun the same command: finished work is kept"
    if isinstance(e, IsADirectoryError):
        return "that path is a folder: pass a file there"
    if isinstance(e, NotADirectoryError):
        return "a part of that path is a file, not a folder: pass another path"
    if isinstance(e, FileNotFoundError):
        return "check the path"
    if isinstance(e, PermissionError) or e.errno == errno.EROFS:
        return "choose a folder you can write to (or a file you can read)"
    return "check the path and the disk, then rerun the same command: finished work is kept"


def metric_list(text: str | None) -> list[str] | None:
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


def default_split(task: str, task_args: str | None) -> str:
    from mg5bench import api

    return api.default_split(task, None, api.parse_kv(task_args, "--task-args"))
