"""The cost of content hashing on the default world: the data fingerprint of the default run (VIST test,
1,000 images) and of every split of every task (27,000 images), and the world's verification against its manifest,
cold (an empty hash cache: every file read) and warm (the cache of a previous call: one stat per file), next to a
fingerprint of image names and sizes (one stat per file, blind to replaced images). Median of --runs repetitions;
ratios to the names-and-sizes one.

.venv/bin/python bench/hashing.py [--runs 5]

"Cold" empties mg5bench's hash cache, not the operating system's page cache; with --drop-caches (root, a writable
/proc/sys/vm/drop_caches) the page cache is dropped too before each cold run, so the files come from the disk.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def legacy_fingerprint(files: Sequence[Path], images: Sequence[str | Path]) -> str:
    """A names-and-sizes fingerprint: annotation files' bytes, and each image's name and size (not its bytes)."""
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).name.encode() + b"\0" + hashlib.sha256(Path(f).read_bytes()).digest())
    for img in sorted({str(p) for p in images}):
        p = Path(img)
        h.update(p.name.encode() + b"\0" + str(p.stat().st_size).encode())
    return h.hexdigest()[:16]


def drop_page_cache() -> bool:
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def median(fn: Callable[[], object], runs: int, before: Callable[[], object] | None = None) -> float:
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--drop-caches", action="store_true", help="also drop the OS page cache before cold runs")
    args = ap.parse_args()

    from mg5bench.core.hashing import data_fingerprint
    from mg5bench.data.io import Problems
    from mg5bench.data.world import WorldConfig, ensure_world, verify_world
    from mg5bench.tasks import _build_cc3m, _build_mmdialog, _build_vist, get_task, resolve_data

    root = ensure_world(WorldConfig())
    builders = {"cc3m": _build_cc3m, "vist": _build_vist, "mmdialog": _build_mmdialog}
    sets: dict[str, tuple[list[Path], list[str]]] = {"default run (vist test)": ([], []), "whole world": ([], [])}
    for task in ("cc3m", "vist", "mmdialog"):
        cfg = get_task(task)
        source = resolve_data(cfg, None, progress=False)
        for split in ("train", "val", "test"):
            _, files, images, _ = builders[task](cfg, source, split, Problems(), False)
            sets["whole world"][0].extend(files)
            sets["whole world"][1].extend(str(p) for p in images)
            if (task, split) == ("vist", "test"):
                sets["default run (vist test)"] = (list(files), [str(p) for p in images])
    scratch = Path(tempfile.mkdtemp(prefix="mg5bench-hashbench-"))
    dropped = False

    def cold() -> None:
        nonlocal dropped
        shutil.rmtree(scratch / "hashes", ignore_errors=True)
        if args.drop_caches:
            dropped = drop_page_cache()

    print(f"world: {root} ({sum(1 for p in root.rglob('*') if p.is_file())} files)")
    print(f"{'what':<44}{'images':>8}{'old':>10}{'cold':>10}{'warm':>10}{'cold/old':>10}{'warm/old':>10}")
    for name, (files, images) in sets.items():
        old = median(lambda f=files, i=images: legacy_fingerprint(f, i), args.runs)
        c = median(lambda f=files, i=images: data_fingerprint(f, i, scratch), args.runs, before=cold)
        data_fingerprint(files, images, scratch)
        w = median(lambda f=files, i=images: data_fingerprint(f, i, scratch), args.runs)
        n = len(set(images))
        print(f"{'fingerprint, ' + name:<44}{n:>8}{old:>9.3f}s{c:>9.3f}s{w:>9.3f}s{c / old:>9.1f}x{w / old:>9.1f}x")
    vc = median(lambda: verify_world(root, scratch), args.runs, before=cold)
    verify_world(root, scratch)
    vw = median(lambda: verify_world(root, scratch), args.runs)
    old_all = median(lambda: legacy_fingerprint(*sets["whole world"]), args.runs)
    print(f"{'verify the world against files.sha256':<44}{'':>8}{'':>10}{vc:>9.3f}s{vw:>9.3f}s"
          f"{vc / old_all:>9.1f}x{vw / old_all:>9.1f}x  (ratios to the old whole-world fingerprint)")  # fmt: skip
    page = "dropped before each cold run" if dropped else "warm (not dropped; pass --drop-caches as root to drop it)"
    print(f"OS page cache: {page}; median of {args.runs} runs")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
