"""Print the rating store under concurrent writers: W processes each record N votes (one transaction each) at the
same moment, on a folder on disk (every commit fsynced: synchronous=FULL) and, where it exists, on tmpfs
(/dev/shm: no fsync cost, so the locking alone). Checks that nothing was lost or stored twice.

.venv/bin/python bench/human_store.py [--writers 8] [--votes 200] [--dir /path/on/disk]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(db: str, rater: str, w: int, n: int, go: str) -> None:
    from mg5bench.human.assignment import ASPECTS, LABELS
    from mg5bench.human.ratings import RatingStore

    store = RatingStore(db)
    queue = store.queue(1, rater)
    while not Path(go).exists():
        time.sleep(0.002)
    t0 = time.perf_counter()
    lat = []
    done = 0
    for q in queue:
        for k, aspect in enumerate(ASPECTS):
            if done == n:
                break
            t = time.perf_counter()
            label = LABELS[(q["position"] + k + w) % len(LABELS)]
            store.record_vote(rater, q["item_id"], aspect, label, q["left_model"], q["right_model"], 1.0)
            lat.append(time.perf_counter() - t)
            done += 1
    print(json.dumps({"seconds": time.perf_counter() - t0, "latency": sorted(lat)}))


def trial(folder: Path, writers: int, votes: int) -> dict[str, float]:
    from mg5bench.human.assignment import PlanItem, StudyPlan
    from mg5bench.human.ratings import RatingStore

    db = folder / "bench.sqlite"
    n_items = -(-votes // 3) + 1
    items = [PlanItem(f"s{i}", "pair", "X", "Y", {"context": [], "outputs": {"x": [], "y": []}})
             for i in range(n_items)]  # fmt: skip
    plan = StudyPlan("vist", "val", "X", "Y", {"x": str(folder)}, {"x": "a", "y": "b"}, items)
    store = RatingStore(db)
    store.create_study(plan, raters=writers, overlap=writers, check_every=0)
    for i in range(writers):
        store.invite(f"w{i}")
        store.slot_of(1, f"w{i}")
    go = folder / "go"
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(db), f"w{i}", str(i), str(votes), str(go)],
                              stdout=subprocess.PIPE, text=True) for i in range(writers)]  # fmt: skip
    time.sleep(1.0)
    t0 = time.perf_counter()
    go.touch()
    outs = [json.loads(p.communicate()[0]) for p in procs]
    wall = time.perf_counter() - t0
    df = store.votes()
    assert len(df) == writers * votes, len(df)
    assert not df.duplicated(["rater", "item_id", "aspect"]).any()
    lat = sorted(x for o in outs for x in o["latency"])
    return {"wall": wall, "rate": len(df) / wall, "p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * 0.99)]}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--votes", type=int, default=200, help="votes per writer")
    ap.add_argument("--dir", type=Path, help="a folder on the disk to test (default: a temp folder)")
    args = ap.parse_args()
    places = [("disk", args.dir or Path(tempfile.gettempdir()))]
    if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK):
        places.append(("tmpfs", Path("/dev/shm")))
    print(f"{args.writers} writer processes x {args.votes} votes, one transaction per vote, on {os.cpu_count()} CPUs")
    for name, base in places:
        folder = Path(tempfile.mkdtemp(prefix="mg5bench-bench-", dir=base))
        try:
            r = trial(folder, args.writers, args.votes)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(f"  {name:<5} {r['wall']:6.2f} s wall  {r['rate']:7.0f} votes/s  per vote p50 {1000 * r['p50']:6.1f} ms "
              f"p99 {1000 * r['p99']:7.1f} ms  (none lost, none duplicated)")  # fmt: skip


if __name__ == "__main__":
    main()
