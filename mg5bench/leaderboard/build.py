"""``mg5bench report``: the leaderboard built from stored results (never a generation): per task a table of every
stored run scored on the same samples, the ablations found under ``<runs>/ablations/``, the metric
meta-evaluation, the paper's claims beside ours, human ratings when a database is given, and a contact sheet in
every run folder. Outputs in ``--out``: ``leaderboard.md``, ``leaderboard.csv``, ``ablations.csv``,
``leaderboard.html`` (self-contained), ``figures/*.png`` and ``report.json``; the same runs give the same bytes.

The build has three steps: collect (``collect``: the run folders, each scored on the table's samples), compute
(``compute`` and ``meta``: ablations, claims, environment) and render (``render``: the documents, then ``publish``).
``--rebuild`` is the API's: it passes ``generate``, which runs the plan (``plan.yaml``: every model on every task,
then the ablation axes) before the build collects, so this package imports no runner or ablation code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mg5bench.tasks import SampleCache

TASK_ORDER = ("vist", "mmdialog", "cc3m")


@dataclass
class ReportResult:
    """A built report: its folder and files, how many tables and runs it holds, and what it left out and why."""

    out: Path
    files: list[Path]
    tables: int
    runs_used: int
    left_out: list[str] = field(default_factory=list)
    plan_errors: list[str] = field(default_factory=list)


def build_report(
    runs: Path = Path("runs"),
    out: Path | None = None,
    *,
    ratings: Path | None = None,
    limit: int | None = None,
    evaluator: str | None = None,
    resamples: int = 1000,
    device: str = "auto",
    cache_dir: Path | None = None,
    gallery: int = 5,
    contact: int = 20,
    contact_sheets: bool = True,
    plan: Path | None = None,
    generate: Callable[..., list[str]] | None = None,
    axis_problem: Callable[[str, Path | None], str | None] | None = None,
    progress: bool = True,
    command: str = "mg5bench report",
    shipped_only: bool = False,
) -> ReportResult:
    """Build the report (module docstring). ``out``: default ``<runs>/report`` (the user's own folder, never the
    repository's committed ``reports/``, which ``scripts/make_reports.sh`` rebuilds). ``limit``: samples per table
    (default: each task's most common completed --limit, or the plan's when the plan was generated). ``generate``:
    called as ``generate(plan, device=, cache_dir=, progress=, evaluator=)`` once every setting is checked, to
    generate what the plan lacks; it returns the errors of axes that cannot run. ``axis_problem(axis,
    checkpoints)``: why a plan axis with no stored ablation cannot run with the checkpoint set the stored ablations
    used, if it cannot. ``shipped_only``: only each model's shipped default checkpoint (training seeds and ablation
    checkpoints left out of the tables). Every setting, the output folder
    and the ratings database are checked before any work; the files are written into a temporary folder and moved
    into ``out`` only when all of them are built, so a failed build leaves the previous report as it was."""
    from mg5bench.core.devices import resolve_device
    from mg5bench.leaderboard import collect, compute, meta, tables
    from mg5bench.leaderboard.plan import load_plan
    from mg5bench.leaderboard.render import document, publish, report_files

    runs = Path(runs)
    out = Path(out) if out is not None else runs / "report"
    rating_store = _check_options(runs, out, ratings=ratings, limit=limit, resamples=resamples, gallery=gallery,
                                  contact=contact, generating=generate is not None)  # fmt: skip
    dev = resolve_device(device)
    plan_data = load_plan(plan)
    plan_errors: list[str] = []
    if generate is not None:
        plan_errors = generate(plan_data, device=dev, cache_dir=cache_dir, progress=progress, evaluator=evaluator)
    samples = SampleCache()  # every run of one task and protocol shares its sample set
    plan_limits = plan_data.get("tasks", {}) if generate is not None else {}
    all_tables, limits, left_out = _collect_tables(runs, limit, plan_limits, evaluator=evaluator, resamples=resamples,
                                                   device=dev, cache_dir=cache_dir, progress=progress,
                                                   shipped_only=shipped_only, samples=samples)  # fmt: skip
    used = [r for t in all_tables for r in t.rows]
    ablations = compute.find_ablations(runs, limits, left_out)
    plan_errors += compute.missing_axes(plan_data, ablations, plan_errors, axis_problem, runs)
    main_vist = next((t for t in all_tables if t.task == "vist" and not t.protocol), None)
    meta_res: dict[str, Any] = {"note": "no VIST table"}
    scored = [r.score for r in used if r.score]
    ev = scored[0]["evaluator"] if scored else {"name": "n/a", "weights_sha256": "n/a"}
    if main_vist is not None:
        meta_res = meta.meta_evaluate(main_vist.rows, main_vist.n, evaluator=compute.evaluator_spec(ev),
                                      resamples=resamples, device=dev, cache_dir=cache_dir, progress=progress,
                                      samples=samples)  # fmt: skip
    human_text = None
    if rating_store is not None:
        from mg5bench.human import analysis

        human_text = analysis.format_report(analysis.report(rating_store))
    paper_md, paper_rows = compute.paper_section(ablations, plan_errors, human_text)

    def sample_set(record: Any) -> Any:
        return collect.sample_set(record, samples, cache_dir)

    if contact_sheets:
        _contact_sheets(used, contact, progress, sample_set)
    facts = {"runs": runs, "out": out, "command": command, "tables": all_tables, "used": used,
             "frames": [tables.frame(t) for t in all_tables], "limits": limits, "evaluator": ev,
             "resamples": resamples, "gallery": gallery, "ablations": ablations, "plan_errors": plan_errors,
             "meta": meta_res, "paper_md": paper_md, "paper_rows": paper_rows, "human": human_text}  # fmt: skip
    blocks = document(facts, left_out, sample_set)
    files = publish(out, report_files(blocks, facts, left_out))
    return ReportResult(out, files, len(all_tables), len(used), left_out, plan_errors)


def _check_options(runs: Path, out: Path, *, ratings: Path | None, limit: int | None, resamples: int, gallery: int,
                   contact: int, generating: bool) -> Any:  # fmt: skip
    """Every setting, the output folder, the runs folder and the ratings database, before any work (a damaged
    database is refused now, not after the scoring); returns the opened rating store, if any."""
    from mg5bench.core.errors import ConfigError
    from mg5bench.core.files import check_output_folder
    from mg5bench.core.limits import MAX_GALLERY, MAX_SHEET_SAMPLES, check_int, check_resamples

    if limit is not None:
        check_int("--limit", limit, 1)
    check_resamples(resamples)
    check_int("--gallery", gallery, 0, MAX_GALLERY)
    check_int("--contact-samples", contact, 1, MAX_SHEET_SAMPLES)
    check_output_folder(out)
    if generating:
        check_output_folder(runs, "--runs")  # the plan's runs are generated into it
    elif not runs.is_dir():
        raise ConfigError(f"--runs {runs} is not a folder: pass the runs folder of 'mg5bench run' (default ./runs)")
    if ratings is None:
        return None
    from mg5bench.human.ratings import RatingStore

    return RatingStore(Path(ratings), create=False)


def _collect_tables(runs: Path, limit: int | None, plan_limits: Mapping[str, Any], *, evaluator: str | None,
                    resamples: int, device: str, cache_dir: Path | None, progress: bool, shipped_only: bool,
                    samples: SampleCache) -> tuple[list[Any], dict[str, int], list[str]]:  # fmt: skip
    """Every usable run folder, scored and grouped into tables per task (runs over the same samples together):
    the tables, the samples per task and what was left out, with the reasons."""
    from mg5bench.core.errors import ConfigError
    from mg5bench.leaderboard import collect

    records, left_out = collect.find_runs(runs)
    if shipped_only:
        kept = [r for r in records if r.checkpoint == collect.default_checkpoint_name(r.model, r.info)]
        left_out += [f"{r.rel}: checkpoint {r.checkpoint or '?'} is not {r.model}'s shipped default (--shipped-only)"
                     for r in records if r not in kept]  # fmt: skip
        records = kept
    if not records:
        found = f" ({len(left_out)} left out: {left_out[0]})" if left_out else ""
        raise ConfigError(f"no usable run folders under {runs}{found}: generate some first ('mg5bench run ...'), "
                          "or pass --rebuild to generate the plan's runs, or --runs pointing at your runs "
                          "folder")  # fmt: skip
    order = list(TASK_ORDER)
    tasks = sorted({r.task for r in records}, key=lambda t: (order.index(t) if t in order else len(order), t))
    limits: dict[str, int] = {}
    all_tables: list[Any] = []
    score = {"evaluator": evaluator, "resamples": resamples, "device": device, "cache_dir": cache_dir,
             "progress": progress, "samples": samples}  # fmt: skip
    for task in tasks:
        recs = [r for r in records if r.task == task]
        n = limit or (int(plan_limits[task]["limit"]) if task in plan_limits else collect.choose_limit(recs))
        limits[task] = n
        collect.score_records(recs, n, **score)
        ts = collect.group_tables(recs, n)
        # runs that completed a smaller --limit (e.g. GILL's last-step protocol, paired with the first stories):
        # their own tables at that N, runs over the same samples together
        by_n: dict[int, list[Any]] = {}
        for r in recs:
            if r.skipped and 0 < r.complete_for < n and r.stored_prefix >= r.complete_for:
                by_n.setdefault(r.complete_for, []).append(r)
        for n2, group in sorted(by_n.items(), reverse=True):
            for r in group:
                r.skipped = ""
            collect.score_records(group, n2, **score)
            ts += collect.group_tables(group, n2)
        for t in ts:
            collect.label_runs(t.rows)
            collect.mark_defaults(t.rows, runs, n, cache_dir, samples)
            t.rows.sort(key=collect.row_order)
        all_tables += ts
        left_out += [f"{r.rel}: {r.skipped}" for r in recs if r.skipped]
    return all_tables, limits, left_out


def _contact_sheets(used: Sequence[Any], n: int, progress: bool, sample_set: Callable[[Any], Any]) -> None:
    from tqdm.auto import tqdm

    from mg5bench.leaderboard.contact import write_contact_sheet

    for r in tqdm(used, desc="contact sheets", disable=not progress, leave=False):
        write_contact_sheet(r, sample_set(r), n)
