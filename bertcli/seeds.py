"""`finetune --seeds N`: one recipe, N seeds, each a full run in its own sub-folder.

Fine-tuning results move by several points between seeds (MRPC: +-6 over 100 seeds, Dodge et
al. 2020), so one seed is an anecdote. The run folder becomes the seed that did best on
*validation* (never chosen on test), and the summary gives mean +- std of every test metric.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bertcli.config import RunConfig
from bertcli.console import info
from bertcli.errors import ConfigError
from bertcli.finetune import METRICS_FILE, FinetuneResult, finetune
from bertcli.last_run import remember_last_run
from bertcli.modeling.model import publish, write_json_atomic
from bertcli.run_dir import MARKER_FILE, is_run_dir
from bertcli.tasks import get_task

SEEDS_FILE = "seeds.json"
# What the run folder takes from the best seed: its model and what describes it, not its
# checkpoints (those stay in the seed's own folder, where a resumed run finds them).
_SKIPPED = {"checkpoints", ".bertcli.lock", MARKER_FILE}


@dataclass
class SeedsResult:
    output_dir: Path
    runs: dict[int, FinetuneResult]
    best_seed: int
    metric: str
    split: str  # whose metrics are summarised: "test", or "validation" without a test split
    summary: dict[str, dict[str, Any]]  # metric -> {"mean", "std", "values"}


def seed_dir(out_dir: Path, seed: int) -> Path:
    return out_dir / f"seed-{seed}"


def finetune_seeds(
    config: RunConfig, seeds: int, *, resume: bool | None = None, overwrite: bool = False
) -> SeedsResult:
    """Fine-tune `config` with seeds train.seed, train.seed + 1, ... into `seed-<n>/`
    sub-folders; the best on validation becomes the run folder's model."""
    if seeds < 2:
        raise ConfigError(f"--seeds: {seeds} runs one seed; use 2 or more, or leave it out")
    out_dir = config.output_dir
    _check_folder(out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER_FILE).touch()
    runs: dict[int, FinetuneResult] = {}
    for i in range(seeds):
        seed = config.train.seed + i
        info(f"[bold]seed {seed}[/] ({i + 1} of {seeds})")
        sub = replace(
            config, train=replace(config.train, seed=seed, output_dir=str(seed_dir(out_dir, seed)))
        )
        runs[seed] = finetune(sub, resume=resume, overwrite=overwrite)
    metric = config.train.metric or get_task(config.task).main_metric
    best = max(runs, key=lambda s: float(runs[s].metrics["validation"][metric]))
    split = "test" if all(r.metrics.get("test") for r in runs.values()) else "validation"
    summary = spread({s: r.metrics[split] for s, r in runs.items()})
    _promote(seed_dir(out_dir, best), out_dir)
    record = {"seeds": list(runs), "best_seed": best, "picked_by": f"validation {metric}"}
    record |= {"split": split, "summary": summary}
    write_json_atomic(out_dir / SEEDS_FILE, record)
    metrics = dict(runs[best].metrics) | {"seeds": record}
    write_json_atomic(out_dir / METRICS_FILE, metrics)
    remember_last_run(out_dir)
    return SeedsResult(out_dir, runs, best, metric, split, summary)


def spread(per_seed: dict[int, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean and sample standard deviation (n - 1) of every score all seeds report."""
    runs = list(per_seed.values())
    keys = [
        k
        for k, v in runs[0].items()
        if isinstance(v, int | float)
        and not isinstance(v, bool)
        and not k.startswith("num_")  # how many examples were scored: the same every seed
        and all(isinstance(r.get(k), int | float) for r in runs)
    ]
    out = {}
    for key in keys:
        values = [float(r[key]) for r in runs]
        out[key] = {
            "mean": round(statistics.fmean(values), 4),
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
            "values": dict(zip(map(str, per_seed), values, strict=True)),
        }
    return out


def seeds_table(result: SeedsResult) -> Any:
    """A rich table: metric, mean +- std, and each seed's value (the best seed marked)."""
    from rich.table import Table

    seeds = list(result.runs)
    table = Table(
        title=f"{len(seeds)} seeds, {result.split} split (best on validation "
        f"{result.metric}: seed {result.best_seed}, now the model in {result.output_dir})",
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("mean ± std", justify="right")
    for seed in seeds:
        table.add_column(
            f"seed {seed}" + (" *" if seed == result.best_seed else ""), justify="right"
        )
    for key, stats in result.summary.items():
        values = [f"{stats['values'][str(s)]:.4g}" for s in seeds]
        table.add_row(key, f"{stats['mean']:.4f} ± {stats['std']:.4f}", *values)
    return table


def _check_folder(out_dir: Path, overwrite: bool) -> None:
    """Seed folders are only ever made inside a new, empty or bertcli run folder; one that
    holds a single-seed run is replaced only with --overwrite (its checkpoints would otherwise
    sit beside a model they did not make)."""
    if out_dir.exists() and any(out_dir.iterdir()) and not is_run_dir(out_dir):
        raise ConfigError(
            f"{out_dir}: exists and is not a bertcli run folder; --seeds would write into it",
            "choose another --output-dir",
        )
    single = out_dir / "checkpoints"
    if single.is_dir():
        if not overwrite:
            raise ConfigError(
                f"{out_dir}: holds a single-seed run",
                "pass --overwrite to replace it with the seeds' runs, or choose another "
                "--output-dir",
            )
        shutil.rmtree(single)


def _promote(best: Path, out_dir: Path) -> None:
    """Copy the best seed's model into the run folder: staged, then renamed file by file, with
    bertcli.json last, so the folder never holds half a model."""
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".saving-"))
    try:
        for item in best.iterdir():
            if item.name in _SKIPPED or item.name.startswith("."):
                continue
            target = staging / item.name
            if item.is_dir():
                shutil.copytree(item, target)
            else:
                shutil.copy2(item, target)
        publish(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
