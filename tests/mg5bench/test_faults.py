"""Fault injection: processes killed with SIGKILL at random points of a run and of a scoring, torn and
corrupt shard lines, a deleted image, damaged caches and worlds, two runs on one folder, output folders that cannot
be written or fill up (a file-size limit, RLIMIT_FSIZE, works for root too). After each, re-running the same command
gives the metrics of an uninterrupted run, or a one-line error naming the fix; nothing finished is lost.

The model is ``blank`` (pure: its outputs depend on the sample alone, so the run key is the same in every process),
slowed down in the killed children (``faultlib.py``) so that kills land inside the generation as well as in the
scoring. The kill times come from a seeded generator; how many cases ran and where the kills landed is printed."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faultlib
import pytest
from conftest import REPO

from mg5bench.core.errors import ConfigError, DataError
from mg5bench.runs.store import RunLock, RunStore

LIMIT = 40  # samples per run: 4 groups of blank's batch of 10


def _stored(folder: Path) -> dict[str, tuple[str, bytes, int]]:
    """Every finished sample of a run folder as it is on disk now: id -> (record output, image bytes, image mtime)."""
    out = {}
    for sid, rec in RunStore(folder).done().items():
        images = [folder / seg["image"] for seg in rec["output"] if "image" in seg]
        img = images[0] if images else folder / "none"
        if img.is_file():  # a record whose image is gone (or that has none: not a blank output) is not finished
            out[sid] = (json.dumps(rec["output"]), img.read_bytes(), img.stat().st_mtime_ns)
    return out


def _kept(before: dict[str, tuple[str, bytes, int]], folder: Path) -> None:
    """Nothing finished is lost: every sample stored before is stored still, its image never rewritten."""
    after = _stored(folder)
    lost = sorted(set(before) - set(after))
    assert not lost, f"lost {len(lost)} finished samples: {lost[:3]}"
    assert {sid: after[sid] for sid in before} == before


def _kill_at(procs: Sequence[Any], started: list[Path], delays: list[float], budget: float = 120) -> list[str]:
    """SIGKILL each child ``delays[i]`` seconds after its ``started`` file appears; returns per child 'killed' or
    'finished' (it was done before its kill time)."""
    t_started: list[float | None] = [None] * len(procs)
    fate = [""] * len(procs)
    end = time.monotonic() + budget
    while not all(fate) and time.monotonic() < end:
        for i, p in enumerate(procs):
            if fate[i]:
                continue
            if p.poll() is not None:
                fate[i] = "finished"
            elif t_started[i] is None:
                if started[i].exists():
                    t_started[i] = time.monotonic()
            elif time.monotonic() - t_started[i] >= delays[i]:
                p.send_signal(signal.SIGKILL)
                p.wait()
                fate[i] = "killed"
        time.sleep(0.005)
    for p in procs:
        if p.poll() is None:  # pragma: no cover - a hung child
            p.kill()
    assert all(fate), "a child never started"
    return fate


def _phase(out: Path) -> str:
    """Where a run was when it was killed, from what it left on disk."""
    folders = list((out / "vist" / "slow-blank").glob("*")) if (out / "vist").exists() else []
    if not folders:
        return "before generating"
    f = folders[0]
    if any(f.glob("scores/*/metrics.json")):
        return "after scoring"
    if (f / "samples.jsonl").exists():
        return "scoring"
    return "generating"


@pytest.fixture(scope="module")
def reference(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The uninterrupted run every faulted one is compared with (and the evaluator loaded once)."""
    out = tmp_path_factory.mktemp("reference")
    res = faultlib.run(small_world, out, LIMIT, out / "cache")
    assert res.generated == LIMIT
    return res.report["metrics"]


def test_kill_9_at_random_points_of_runs(small_world: Path, reference: dict[str, Any], tmp_path: Path) -> None:
    """Four runs killed at seeded random times (generating, merging or scoring); each rerun gives the reference
    metrics and keeps every sample stored before the kill."""
    # a forked child's run takes about 2.4 s here after 'started' (set-up, 1.6 s generating, merging, scoring): one
    # kill time drawn in each quarter of that (under load everything comes later: the phases reached are printed)
    rng = random.Random(1600)
    delays = [rng.uniform(0.575 * k, 0.575 * (k + 1)) for k in range(4)]
    outs = [tmp_path / f"k{i}" for i in range(len(delays))]
    procs = [faultlib.Child(faultlib.child_run, small_world, o, LIMIT, o / "cache") for o in outs]
    fate = _kill_at(procs, [o / "started" for o in outs], delays)
    phases = []
    for out, f in zip(outs, fate, strict=True):
        phases.append(f"{f} {_phase(out)}")
        folders = list((out / "vist" / "slow-blank").glob("*")) if (out / "vist").exists() else []
        before = _stored(folders[0]) if folders else {}
        res = faultlib.run(small_world, out, LIMIT, out / "cache")
        assert res.report["metrics"] == reference
        _kept(before, res.folder)
        assert len(RunStore(res.folder).done()) == LIMIT
    print(f"\nkill -9 during runs: {len(fate)} cases: {', '.join(phases)}; samples lost: 0")


def test_kill_9_at_random_points_of_scorings(small_world: Path, reference: dict[str, Any], tmp_path: Path) -> None:
    """Three scorings of a finished run killed at seeded random times; each rescore gives the uninterrupted
    scoring's metrics and the generations are untouched."""
    from mg5bench.scoring.scorer import score_run

    base = faultlib.run(small_world, tmp_path / "base", LIMIT, tmp_path / "cache").folder
    want = score_run(base, resamples=300, metrics=faultlib.RUN_OPTIONS["metrics"], cache_dir=tmp_path / "cache",
                     progress=False).report["metrics"]  # fmt: skip
    rng = random.Random(1601)  # a forked child's scoring takes about a second here: one kill time in each third
    delays = [rng.uniform(0.3 * k, 0.3 * (k + 1)) for k in range(3)]
    runs = []
    for i in range(len(delays)):
        dst = tmp_path / f"s{i}" / base.name
        shutil.copytree(base, dst, ignore=shutil.ignore_patterns("scores"))
        runs.append(dst)
    generations = {r: {p: p.read_bytes() for p in r.rglob("*") if p.is_file()} for r in runs}
    procs = [faultlib.Child(faultlib.child_score, r, 300, r.parent / "cache") for r in runs]
    fate = _kill_at(procs, [r.parent / "started" for r in runs], delays)
    left = [("features cached" if any((r.parent / "cache" / "features").glob("*")) else "nothing written")
            + (", per_sample written" if any(r.glob("scores/*/per_sample.jsonl")) else "") for r in runs]  # fmt: skip
    for r in runs:
        again = score_run(r, resamples=300, metrics=faultlib.RUN_OPTIONS["metrics"], cache_dir=r.parent / "cache",
                          progress=False)  # fmt: skip
        assert again.report["metrics"] == want
        assert {p: p.read_bytes() for p in generations[r]} == generations[r]  # generations never touched
    cases = ", ".join(f"{f} ({what})" for f, what in zip(fate, left, strict=True))
    print(f"\nkill -9 during scorings: {len(fate)} cases: {cases}; samples lost: 0")


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_corrupt_and_torn_shard_lines_and_a_deleted_image(
    small_world: Path, reference: dict[str, Any], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A crashed run's shard with a torn line, a complete malformed line, a bad byte, a line without an id, a line
    of a sample not in the split, and a stored sample whose image was deleted: the rerun (no --force) quarantines
    the bad lines in a file named by one note, regenerates those samples and keeps the others untouched."""

    class Crash(Exception):
        pass

    def crash(n: int) -> None:
        if n == 25:
            raise Crash

    with pytest.raises(Crash):
        faultlib.run(small_world, tmp_path, LIMIT, tmp_path / "cache", after_sample=crash)
    folder = next((tmp_path / "vist" / "slow-blank").iterdir())
    shard = folder / "samples.rank0.jsonl"
    lines = _lines(shard)
    assert len(lines) == 25
    ids = [json.loads(x)["id"] for x in lines]
    (folder / json.loads(lines[6])["output"][0]["image"]).unlink()  # a stored sample's image deleted
    lines[2] = b'{"id": "' + ids[2].encode() + b'", "output": [oops\n'  # a complete line that is not JSON
    lines[4] = lines[4].replace(b'"output"', b'"outp\xfft"')  # a bad byte
    lines.append(b'{"output": []}\n')  # no id
    lines.append(b'{"id": "not-a-sample", "output": []}\n')  # not in the split
    lines.append(b'{"id": "val0000')  # torn by the crash
    shard.write_bytes(b"".join(lines))
    bad = {ids[2], ids[4], ids[6]}
    before = {k: v for k, v in _stored(folder).items() if k not in bad}
    assert len(before) == 22
    capfd.readouterr()
    res = faultlib.run(small_world, tmp_path, LIMIT, tmp_path / "cache")
    err = capfd.readouterr().err
    notes = [x for x in err.splitlines() if "quarantine.jsonl" in x]
    assert len(notes) == 1 and "6 stored line(s) failed validation" in notes[0], err
    quarantined = [json.loads(x) for x in (folder / "quarantine.jsonl").read_text().splitlines()]
    assert len(quarantined) == 6
    assert {q["problem"].split(" ")[0] for q in quarantined} >= {"malformed", "not", "no", "its", "id", "torn"}
    assert res.report["metrics"] == reference
    assert res.generated == LIMIT - 22  # the 15 never generated and the 3 quarantined
    _kept(before, folder)
    # a finished run: a damaged line of samples.jsonl and a deleted run.json; the rerun repairs both
    merged = _lines(folder / "samples.jsonl")
    victim = json.loads(merged[10])["id"]
    merged[10] = b"\x00garbage\n"
    (folder / "samples.jsonl").write_bytes(b"".join(merged))
    from mg5bench.scoring.scorer import score_run

    with pytest.raises(DataError, match=r"samples.jsonl line 11: 1 stored line\(s\) failed validation .*rerun its"):
        score_run(folder, resamples=20, metrics=["clip_i"], cache_dir=tmp_path / "cache", progress=False, force=True)
    (folder / "run.json").write_text("{")
    before = {k: v for k, v in _stored(folder).items() if k != victim}
    again = faultlib.run(small_world, tmp_path, LIMIT, tmp_path / "cache")
    assert again.generated == 1 and again.report["metrics"] == reference
    _kept(before, folder)
    assert len(RunStore(folder).done()) == LIMIT


def test_two_concurrent_identical_runs_do_the_work_once(small_world: Path, reference: dict[str, Any],
                                                        tmp_path: Path) -> None:  # fmt: skip
    """Started together on one folder: one generates, the other waits on the lock (one note) and then finds every
    sample stored; both print the reference metrics."""
    procs = [faultlib.Child(faultlib.child_run, small_world, tmp_path, LIMIT, tmp_path / "cache", f"c{i}")
             for i in range(2)]  # fmt: skip
    errs = [(tmp_path / f"c{i}.err") for i in range(2)]
    assert [p.wait(300) for p in procs] == [0, 0], [e.read_text() for e in errs if e.exists()]
    results = [json.loads((tmp_path / f"c{i}.json").read_text()) for i in range(2)]
    assert sorted(r["generated"] for r in results) == [0, LIMIT]
    assert all(r["metrics"] == reference for r in results)
    waited = [e.read_text() for e in errs if "is generating this run" in e.read_text()]
    assert len(waited) == 1 and "waiting for it to finish" in waited[0]


def test_a_held_lock_no_wait_and_a_stale_lock(small_world: Path, reference: dict[str, Any], tmp_path: Path,
                                              capfd: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """--no-wait while another process holds the folder: one line naming its pid, host and the lock file. A lock
    left by a process that is gone (its flock died with it) is taken over with a note."""
    import socket

    from mg5bench.cli import main
    from mg5bench.runs.keys import prepare

    faultlib.register()
    folder = prepare(faultlib.spec(small_world, LIMIT), tmp_path, cache_dir=tmp_path / "cache", progress=False).folder
    blank = prepare(faultlib.spec(small_world, 10, "blank"), tmp_path, progress=False).folder
    argv = ["run", "--task", "vist", "--model", "blank", "--data", str(small_world), "--split", "val", "--limit", "10",
            "--out", str(tmp_path), "--metrics", "clip_i", "--resamples", "20", "--quiet", "--no-wait"]  # fmt: skip
    with RunLock(blank):  # held by this process (another open file: the run's own flock conflicts with it)
        capfd.readouterr()
        assert main(argv) == 2
        line = faultlib.one_line(capfd.readouterr().err)
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in line and str(blank / ".lock") in line
        assert "wait for it to finish and rerun the same command" in line
    # a stale lock: the file names a process that no longer runs, nobody holds the flock
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".lock").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(),
                                              "started": "2026-01-01T00:00:00"}))  # fmt: skip
    capfd.readouterr()
    res = faultlib.run(small_world, tmp_path, LIMIT, tmp_path / "cache")
    assert res.report["metrics"] == reference
    assert f"took over a stale lock left by pid {int(dead.stdout)}" in capfd.readouterr().err
    assert (folder / ".lock").read_text() == ""  # released: no holder named


def test_a_full_disk_mid_run_and_an_unwritable_out(small_world: Path, tmp_path: Path) -> None:
    """A file-size limit (RLIMIT_FSIZE, root-proof) fills the 'disk' in the middle of a run: one line naming the
    file and the fix, and the rerun without the limit gives the metrics of an uninterrupted run with every sample
    stored before kept. --out in a folder nobody can write to (sysfs refuses root too) and --out a file: one line,
    before any work."""
    from mg5bench.runs.runner import run

    args = ["run", "--task", "vist", "--model", "blank", "--data", str(small_world), "--split", "val", "--limit",
            str(LIMIT), "--metrics", "clip_i,fid,scene_accuracy", "--resamples", "200", "--quiet"]  # fmt: skip
    full = subprocess.run([sys.executable, "-m", "mg5bench", *args, "--out", str(tmp_path / "full")], text=True,
                          capture_output=True, env=faultlib.child_env(), cwd=REPO,
                          preexec_fn=faultlib.fsize_limit(5000))  # fmt: skip
    assert full.returncode == 2, full.stderr
    line = faultlib.one_line(full.stderr)
    assert "samples.rank0.jsonl: cannot write: File too large" in line and "rerun the same command" in line
    folder = next((tmp_path / "full" / "vist" / "blank").iterdir())
    before = _stored(folder)
    assert 0 < len(before) < LIMIT
    kw: dict[str, Any] = {**faultlib.RUN_OPTIONS, "cache_dir": tmp_path / "cache"}
    res = run(faultlib.spec(small_world, LIMIT, "blank"), tmp_path / "full", **kw)
    clean = run(faultlib.spec(small_world, LIMIT, "blank"), tmp_path / "clean", **kw)
    assert res.folder.name == clean.folder.name and res.report["metrics"] == clean.report["metrics"]
    _kept(before, folder)
    # nobody can write here (sysfs: EACCES for root too), or it is a file: one line, nothing done
    for out, needle in (("/sys/mg5bench-fault-test", "cannot write in /sys"), ("/etc/hostname", "is a file")):
        if not Path(out).parent.exists() and needle.startswith("cannot"):
            continue
        proc = subprocess.run([sys.executable, "-m", "mg5bench", *args, "--out", out], capture_output=True, text=True,
                              env=faultlib.child_env(), cwd=REPO)  # fmt: skip
        assert proc.returncode == 2 and needle in faultlib.one_line(proc.stderr), proc.stderr
    from mg5bench.scoring.scorer import score

    preds = tmp_path / "preds.jsonl"
    preds.write_text("")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        score("vist", preds, Path("/etc/hostname"), data=str(small_world), split="val", cache_dir=tmp_path / "c2")
    assert not (tmp_path / "c2").exists()  # refused before the data was even read


def test_interrupted_synth_is_marked_then_finished(small_world: Path, tmp_path: Path) -> None:
    """'data synth --out' killed mid-way leaves INCOMPLETE (with the fix); the folder is refused as --data; the same
    command again clears it and builds the world, byte-identical to an uninterrupted build."""
    from mg5bench import api
    from mg5bench.tasks import build_samples, get_task

    out = tmp_path / "w"
    proc = subprocess.Popen([sys.executable, "-m", "mg5bench", "data", "synth", "--out", str(out), "--size", "small",
                             "--level", "1", "--quiet"], env=faultlib.child_env(), cwd=REPO)  # fmt: skip
    # killed at a random moment after the VIST training images begin (the val and test splits are still to come)
    fate = _kill_at([proc], [out / "VIST" / "train_images"], [random.Random(1602).uniform(0.0, 0.1)])
    assert fate == ["killed"] and (out / "INCOMPLETE").is_file() and not (out / "world.json").exists()
    with pytest.raises(DataError, match=r"interrupted 'mg5bench data synth' left this world incomplete .*rerun"):
        build_samples(get_task("vist"), str(out / "VIST"), "val", progress=False)
    _, manifest = api.synth(out, size="small", level=1, progress=False)  # small_world is level 1
    assert manifest["fingerprint"] == json.loads((small_world / "world.json").read_text())["fingerprint"]
    assert not (out / "INCOMPLETE").exists()
    _, again = api.synth(out, size="small", level=1, progress=False)  # the same command on a finished world
    assert again == manifest


def test_damaged_worlds_are_rebuilt_or_refused(small_world: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
                                               ) -> None:  # fmt: skip
    """The cached world with an image replaced is rebuilt (one note) on its next use; scenes.jsonl cut at a line
    boundary is detected; a world folder given as --data that differs from its manifest is refused, naming the file
    and the command that builds it again."""
    from mg5bench.data.world import WorldConfig, ensure_world, verify_world
    from mg5bench.tasks import build_samples, get_task

    cache = tmp_path / "cache"
    root = ensure_world(WorldConfig(size="small"), cache, progress=False)
    a, b = root / "VIST" / "val_images" / "val000000.png", root / "VIST" / "val_images" / "val000011.png"
    original = a.read_bytes()
    a.write_bytes(b.read_bytes())
    capfd.readouterr()
    sset = build_samples(get_task("vist"), "synth:size=small", "val", cache_dir=cache, progress=False)
    assert (
        "the cached world is damaged (VIST/val_images/val000000.png changed); rebuilding it" in capfd.readouterr().err
    )
    assert a.read_bytes() == original and verify_world(root, cache) == [] and sset.samples
    scenes = root / "scenes.jsonl"
    text = scenes.read_bytes()
    scenes.write_bytes(text[: text.rfind(b"\n", 0, len(text) - 1) + 1])  # the last record gone, cut at a line end
    assert verify_world(root, cache) == ["scenes.jsonl changed"]
    # a user's world folder (from 'data synth --out'): refused, not rebuilt
    mine = tmp_path / "mine"
    shutil.copytree(small_world, mine)
    (mine / "CC3M" / "val" / "0000003.png").write_bytes((mine / "CC3M" / "val" / "0000004.png").read_bytes())
    with pytest.raises(DataError, match=r"differs from its manifest files.sha256: CC3M/val/0000003.png changed "
                       r".*mg5bench data synth --out NEW_FOLDER --size small --level 1 --seed 0"):  # fmt: skip
        build_samples(get_task("cc3m"), str(mine), "val", cache_dir=cache, progress=False)


def test_swapped_images_change_the_fingerprint_and_the_scores(small_world: Path, tmp_path: Path,
                                                              capfd: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """A silent wrong number: two same-size ground-truth images swapped. The fingerprint and the
    feature-cache key follow the contents, so the swapped samples no longer score 1.0 against copies of the old
    ground truth, exactly as with a fresh cache; a truncated feature cache is deleted and recomputed (one note)."""
    from mg5bench.scoring.scorer import score
    from mg5bench.tasks import build_samples, get_task

    data = tmp_path / "VIST"
    shutil.copytree(small_world / "VIST", data)  # real-format data (no world manifest)
    sset = build_samples(get_task("vist"), str(data), "val", cache_dir=tmp_path / "cache", progress=False)
    by_size: dict[int, list[Path]] = {}
    for s in sset.samples:
        p = Path(s.target[0].value)
        by_size.setdefault(p.stat().st_size, []).append(p)
    x, y = next((a, b) for v in by_size.values() for a in v for b in v if a.read_bytes() != b.read_bytes())
    preds = tmp_path / "preds"
    preds.mkdir()
    lines = []
    for s in sset.samples:  # the "model" outputs copies of today's ground truth
        shutil.copy(s.target[0].value, preds / Path(s.target[0].value).name)
        lines.append(json.dumps({"id": s.id, "output": [{"image": Path(s.target[0].value).name}]}))
    (preds / "p.jsonl").write_text("\n".join(lines) + "\n")
    kw: dict[str, Any] = {"data": str(data), "split": "val", "metrics": ["clip_i"], "evaluator": "embedded",
                          "resamples": 0, "progress": False, "cache_dir": tmp_path / "cache"}  # fmt: skip
    first = score("vist", preds / "p.jsonl", tmp_path / "s1", **kw)
    assert first["metrics"]["clip_i"]["value"] == pytest.approx(1.0)
    tmp = x.with_suffix(".tmp")
    os.rename(x, tmp)  # swapped: names, sizes and mtimes as before
    os.rename(y, x)
    os.rename(tmp, y)
    second = score("vist", preds / "p.jsonl", tmp_path / "s2", **kw)
    assert second["data"]["fingerprint"] != first["data"]["fingerprint"]
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "s2" / "per_sample.jsonl").read_text().splitlines())}
    swapped = [sid for sid, r in rows.items() if r["clip_i"] < 0.999]
    assert len(swapped) == 2 and {Path(s.target[0].value) for s in sset.samples if s.id in swapped} == {x, y}
    fresh = score("vist", preds / "p.jsonl", tmp_path / "s3", **{**kw, "cache_dir": tmp_path / "fresh"})
    assert fresh["metrics"] == second["metrics"]
    cache_file = next((tmp_path / "cache" / "features").glob("*.safetensors"))
    cache_file.write_bytes(cache_file.read_bytes()[:100])  # truncated
    capfd.readouterr()
    third = score("vist", preds / "p.jsonl", tmp_path / "s4", **kw)
    assert third["metrics"] == second["metrics"] and third["encoding"]["gt_images_from_cache"] == 0
    note = faultlib.one_line(capfd.readouterr().err)
    assert f"{cache_file}: feature cache unreadable" in note and "computed again" in note
    fourth = score("vist", preds / "p.jsonl", tmp_path / "s5", **kw)
    assert fourth["encoding"]["gt_images_from_cache"] == len(sset.samples)  # the recomputed cache was written back


def test_finalize_never_deletes_a_shard_that_grew_while_merging(tmp_path: Path) -> None:
    """A line appended to a shard while the merged file is being written (another writer) is not lost: that shard
    is kept for the next merge; an unchanged one is removed."""

    class Racing(RunStore):
        def _write_merged(self, text: str) -> None:
            self.append(1, {"id": "b", "output": []})  # lands after the shards were read
            super()._write_merged(text)

    store = Racing(tmp_path)
    store.append(0, {"id": "a", "output": []})
    store.append(1, {"id": "c", "output": []})
    assert set(store.finalize(["a", "b", "c"])) == {"a", "c"}
    assert not store.shard_path(0).exists() and store.shard_path(1).exists()
    later = RunStore(tmp_path)
    assert set(later.finalize(["a", "b", "c"])) == {"a", "b", "c"} and not store.shard_path(1).exists()
    assert [json.loads(x)["id"] for x in (tmp_path / "samples.jsonl").read_text().splitlines()] == ["a", "b", "c"]


# --- the later commands: report, ablate, train resume ------------------------------------------------------------
