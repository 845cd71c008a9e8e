"""What the fault-injection tests (test_faults.py) share with the subprocesses they kill: a slow pure model (the real
``blank`` adapter, sleeping per sample so that a kill lands inside the generation), the run they make, and a
command line for the child (``python faultlib.py run|score ...``), which touches ``<out>/started`` once it is past
its imports, so that kill times are measured from the start of the real work."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SLOW = 0.04  # seconds per sample


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
    from mg5bench.spec import RunSpec

    return RunSpec(task="vist", model=model, split="val", data=str(world), limit=limit)


RUN_OPTIONS: dict[str, Any] = {"metrics": ["clip_i", "fid", "scene_accuracy"], "resamples": 200, "progress": False}


def run(world: Path, out: Path, limit: int, cache: Path, **kw: Any) -> Any:
    """The run every fault test makes (in the test process or in a child)."""
    from mg5bench.runner import run as _run

    register()
    return _run(spec(world, limit), out, cache_dir=cache, **{**RUN_OPTIONS, **kw})


def child(argv: Sequence[str]) -> list[str]:
    """The command line of a child process doing ``argv`` (see ``main``)."""
    return [sys.executable, str(HERE / "faultlib.py"), *argv]


def _heavy_imports() -> None:
    """Import what takes seconds before saying 'started': kill times then fall in the work itself."""
    import open_clip  # noqa: F401
    import torch  # noqa: F401
    import torchmetrics.image.fid  # noqa: F401

    import mg5bench.runner
    import mg5bench.scoring  # noqa: F401


def main(argv: Sequence[str]) -> int:
    what, *rest = argv
    if what == "run":  # run WORLD OUT LIMIT CACHE
        world, out, limit, cache = Path(rest[0]), Path(rest[1]), int(rest[2]), Path(rest[3])
        _heavy_imports()

        out.mkdir(parents=True, exist_ok=True)
        (out / "started").touch()
        t0 = time.monotonic()
        res = run(world, out, limit, cache)
        print(json.dumps({"generated": res.generated, "metrics": res.report["metrics"],
                          "seconds": round(time.monotonic() - t0, 2)}))  # fmt: skip
        return 0
    if what == "score":  # score RUN_FOLDER RESAMPLES CACHE
        _heavy_imports()
        from mg5bench.scoring import score_run

        folder, resamples, cache = Path(rest[0]), int(rest[1]), Path(rest[2])
        (folder.parent / "started").touch()
        t0 = time.monotonic()
        res = score_run(folder, resamples=resamples, metrics=RUN_OPTIONS["metrics"], cache_dir=cache, progress=False)
        print(json.dumps({"metrics": res.report["metrics"], "seconds": round(time.monotonic() - t0, 2)}))
        return 0
    raise SystemExit(f"unknown command {what!r}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    raise SystemExit(main(sys.argv[1:]))
