"""What the fault-injection tests (test_faults.py, test_untrusted.py) share with the processes they kill: a slow pure
model (the real ``blank`` adapter, sleeping per sample so that a kill lands inside the generation), the run they make,
and the child processes themselves.

Children are forked from a ``multiprocessing`` forkserver that has imported torch, open_clip, torchmetrics and the
suite once (a fresh interpreter per child would spend seconds on imports, most of each test's time). The server
never runs a torch operation, so no thread pool exists when it forks. A child sends its output to files in its
folder, touches ``started`` once it is past set-up (kill times are measured from there) and writes ``result.json``
when it finishes."""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import signal
import time
from pathlib import Path
from typing import Any

SLOW = 0.04  # seconds per sample
PRELOAD = [
    "faultlib",
    "torch",
    "open_clip",
    "torchmetrics.image.fid",
    "mg5bench.runs.runner",
    "mg5bench.scoring.scorer",
]


def register() -> None:
    """Register ``slow-blank``: the blank adapter (white images, outputs depend on the sample alone), slowed."""
    from mg5bench.adapters.bounds import Blank
    from mg5bench.catalog import MODELS

    class SlowBlank(Blank):
        def generate(self, samples, config, generators):  # type: ignore[no-untyped-def]
            time.sleep(SLOW * len(samples))
            return super().generate(samples, config, generators)

    MODELS.register("slow-blank", lambda: SlowBlank, "test: the blank model, slowed", overwrite=True)


def spec(world: Path, limit: int, model: str = "slow-blank") -> Any:
    from mg5bench.runs.spec import RunSpec

    return RunSpec(task="vist", model=model, split="val", data=str(world), limit=limit)


RUN_OPTIONS: dict[str, Any] = {"metrics": ["clip_i", "fid", "scene_accuracy"], "resamples": 200, "progress": False}


def run(world: Path, out: Path, limit: int, cache: Path, **kw: Any) -> Any:
    """The run every fault test makes (in the test process or in a child)."""
    from mg5bench.runs.runner import run as _run

    register()
    return _run(spec(world, limit), out, cache_dir=cache, **{**RUN_OPTIONS, **kw})


class Child:
    """A forked child process with the ``Popen`` methods the tests use (poll, send_signal, wait, kill)."""

    def __init__(self, target: Any, *args: Any) -> None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)  # takes effect when the server starts (once per test session)
        self.proc = ctx.Process(target=target, args=args)
        self.proc.start()

    def poll(self) -> int | None:
        return self.proc.exitcode

    def send_signal(self, sig: int) -> None:
        if self.proc.pid is not None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float | None = None) -> int | None:
        self.proc.join(timeout)
        return self.proc.exitcode

    def kill(self) -> None:
        self.proc.kill()


def _to_files(folder: Path, tag: str) -> None:
    """The child's stdout and stderr go to ``<folder>/<tag>.out`` and ``.err`` (file descriptors 1 and 2)."""
    import sys

    folder.mkdir(parents=True, exist_ok=True)
    for fd, name in ((1, "out"), (2, "err")):
        f = os.open(folder / f"{tag}.{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(f, fd)
        os.close(f)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - the process's own streams
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115


def child_run(world: Path, out: Path, limit: int, cache: Path, tag: str = "child") -> None:
    """In a child: the fault tests' run; ``<out>/<tag>.json`` gets what it generated and its metrics."""
    _to_files(out, tag)
    register()
    (out / "started").touch()
    t0 = time.monotonic()
    res = run(world, out, limit, cache)
    result = {"generated": res.generated, "metrics": res.report["metrics"], "seconds": round(time.monotonic() - t0, 2)}
    (out / f"{tag}.json").write_text(json.dumps(result))


def child_score(folder: Path, resamples: int, cache: Path) -> None:
    """In a child: score a finished run folder (``scoring.score_run``)."""
    from mg5bench.scoring.scorer import score_run

    _to_files(folder.parent, "child")
    (folder.parent / "started").touch()
    t0 = time.monotonic()
    res = score_run(folder, resamples=resamples, metrics=RUN_OPTIONS["metrics"], cache_dir=cache, progress=False)
    result = {"metrics": res.report["metrics"], "seconds": round(time.monotonic() - t0, 2)}
    (folder.parent / "child.json").write_text(json.dumps(result))


def one_line(stderr: str) -> str:
    """The one line a failing command printed on stderr (asserting there is exactly one, and no traceback)."""
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def child_env() -> dict[str, str]:
    """The environment of a child command: one CPU thread, no bytecode written."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def fsize_limit(limit: int) -> Any:
    """A ``preexec_fn``: in the child, writes past ``limit`` bytes fail with EFBIG instead of killing it (a full disk
    that binds root too)."""

    def limit_writes() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_writes
