"""The one training loop, in accelerate's order: prepare -> epochs -> evaluate -> checkpoint."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.progress import TextColumn

from bertcli.config import TrainConfig
from bertcli.console import info, notice, progress
from bertcli.data.batching import WindowOutputs
from bertcli.data.collate import Collator, EpochBatches, WindowDataset
from bertcli.data.load import Example
from bertcli.data.windows import Windows
from bertcli.errors import BertcliError
from bertcli.tasks import Task
from bertcli.trackers import values as tracker_values

STATE_FILE = "trainer_state.json"
LOG_FILE = "train_log.jsonl"
BEST_DIR = "best"


class Interrupted(BertcliError):
    """Ctrl-C during training; a checkpoint was saved first."""

    exit_code = 130


@dataclass
class TrainState:
    """Everything beyond model/optimizer/scheduler/RNG that a resumed run needs."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batches_in_epoch: int = 0  # micro-batches of `epoch` consumed up to the last optimizer step
    samples: int = 0
    train_seconds: float = 0.0  # time in forward/backward/step only, not evaluation or saving
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    finished: bool = False
    evals: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Plan:
    steps_per_epoch: int
    total_steps: int
    epochs: int


def plan_steps(batches_per_epoch: int, cfg: TrainConfig) -> Plan:
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / cfg.grad_accum))
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    return Plan(steps_per_epoch, total, math.ceil(total / steps_per_epoch))


def make_optimizer(
    model: torch.nn.Module, cfg: TrainConfig, head_lr: float | None = None
) -> torch.optim.Optimizer:
    """AdamW; biases and LayerNorm weights (all 1-d parameters) get no weight decay, and the task
    head (and CRF) may learn at its own rate. Encoder groups come first: the progress bar shows
    the first group's learning rate."""
    head_ids = {id(p) for p in getattr(model, "head_parameters", lambda: [])()}
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {
        (h, d): [] for h in (False, True) for d in (True, False)
    }
    for param in model.parameters():
        if param.requires_grad:
            groups[(id(param) in head_ids, param.ndim >= 2)].append(param)
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "weight_decay": cfg.weight_decay if decay else 0.0,
                "lr": (head_lr or cfg.lr) if head else cfg.lr,
            }
            for (head, decay), params in groups.items()
            if params
        ],
        lr=cfg.lr,
    )


def make_schedule(optimizer: torch.optim.Optimizer, total: int, warmup_ratio: float) -> Any:
    """Linear warm-up to the peak learning rate, then linear decay to zero."""
    warmup = int(total * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def rng_snapshot() -> dict[str, Any]:
    import random

    import numpy as np

    snap = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        snap["cuda"] = torch.cuda.get_rng_state_all()
    return snap


def rng_restore(snap: dict[str, Any]) -> None:
    import random

    import numpy as np

    random.setstate(snap["python"])
    np.random.set_state(snap["numpy"])
    torch.set_rng_state(snap["torch"])
    if "cuda" in snap:
        torch.cuda.set_rng_state_all(snap["cuda"])


def checkpoint_dirs(out_dir: Path) -> list[Path]:
    root = out_dir / "checkpoints"
    found = [p for p in root.glob("step-*") if (p / STATE_FILE).is_file()] if root.is_dir() else []
    return sorted(found, key=lambda p: int(re.sub(r"\D", "", p.name) or 0))


class Trainer:
    """Runs one fine-tuning job; kept as an object only to share the prepared pieces."""

    def __init__(
        self,
        *,
        accelerator: Any,
        task: Task,
        model: torch.nn.Module,
        pad_id: int,
        train_windows: Windows,
        eval_windows: Windows,
        eval_examples: Sequence[Example],
        cfg: TrainConfig,
        out_dir: Path,
        save_best: Callable[[torch.nn.Module, Path, dict[str, Any]], None],
        head_lr: float | None = None,
    ) -> None:
        self.acc = accelerator
        self.task = task
        self.cfg = cfg
        self.out_dir = out_dir
        self.save_best = save_best
        self.eval_windows = eval_windows
        self.eval_examples = eval_examples
        self.batches = EpochBatches(
            train_windows.lengths(),
            cfg.batch_size,
            shuffle=True,
            group_by_length=cfg.group_by_length,
            seed=cfg.seed,
        )
        train_dl = torch.utils.data.DataLoader(
            WindowDataset(train_windows),
            batch_sampler=self.batches,
            collate_fn=Collator(train_windows, pad_id),
            # A private generator: iterating must not draw from the global RNG (dropout's), or a
            # resumed run, which iterates differently, would get different dropout masks.
            generator=torch.Generator(),
        )
        eval_sampler = EpochBatches(
            eval_windows.lengths(), cfg.eval_batch_size, shuffle=False, group_by_length=True, seed=0
        )
        eval_dl = torch.utils.data.DataLoader(
            WindowDataset(eval_windows),
            batch_sampler=eval_sampler,
            collate_fn=Collator(eval_windows, pad_id),
            generator=torch.Generator(),
        )
        optimizer = make_optimizer(model, cfg, head_lr)
        self.model, self.optimizer, self.train_dl, self.eval_dl = accelerator.prepare(
            model, optimizer, train_dl, eval_dl
        )
        self.plan = plan_steps(len(self.train_dl), cfg)
        # Not prepared: accelerate would step it once per process; we step it per optimizer step.
        self.scheduler = make_schedule(self.optimizer, self.plan.total_steps, cfg.warmup_ratio)
        accelerator.register_for_checkpointing(self.scheduler)
        self.state = TrainState()

    # ------------------------------------------------------------------ checkpoints

    def resume_from(self, checkpoint: Path) -> None:
        self.acc.load_state(str(checkpoint))
        data = json.loads((checkpoint / STATE_FILE).read_text())
        self.state = TrainState(**data)
        notice(f"resuming from {checkpoint} (step {self.state.step} of {self.plan.total_steps})")
        if self.acc.is_main_process:
            self._trim_log(self.state.step)

    def save_checkpoint(self) -> Path:
        root = self.out_dir / "checkpoints"
        final = root / f"step-{self.state.step:06d}"
        tmp = root / f".tmp-step-{self.state.step:06d}"
        if self.acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            root.mkdir(parents=True, exist_ok=True)
        self.acc.wait_for_everyone()
        self.acc.save_state(str(tmp))
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            (tmp / STATE_FILE).write_text(json.dumps(asdict(self.state), indent=1))
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            for old in checkpoint_dirs(self.out_dir)[: -self.cfg.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        self.acc.wait_for_everyone()
        return final

    # ------------------------------------------------------------------------- log

    def _log(self, record: dict[str, Any]) -> None:
        if self.acc.is_main_process:
            with open(self.out_dir / LOG_FILE, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        if self.acc.trackers:  # --report-to: the same record, as tracker scalars
            self.acc.log(tracker_values(record), step=record["step"])

    def _trim_log(self, step: int) -> None:
        """A resumed run rewrites history after its checkpoint, so drop the lines it will redo."""
        path = self.out_dir / LOG_FILE
        if path.is_file():
            kept = [
                line
                for line in path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step
            ]
            path.write_text("".join(line + "\n" for line in kept))

    # --------------------------------------------------------------------- evaluate

    def evaluate(self) -> dict[str, Any]:
        model, task = self.model, self.task
        model.eval()
        task.bind(self.acc.unwrap_model(model))
        outputs = WindowOutputs(self.eval_windows)
        with torch.no_grad():
            for batch in self.eval_dl:
                out = model(**{k: v for k, v in batch.items() if k != "labels"}).float()
                if task.token_level:
                    # Processes pad their batches to different widths; gathering needs one.
                    out = self.acc.pad_across_processes(out, dim=1)
                out, index = self.acc.gather_for_metrics((out, batch["window_index"]))
                outputs.add(out.cpu().numpy(), index.tolist())
        model.train()
        predictions = task.predict(outputs.result(), self.eval_windows, self.eval_examples)
        return task.metrics(predictions, self.eval_examples)

    def _after_eval(self, metrics: dict[str, Any]) -> bool:
        """Track the best model; returns True when early stopping says to stop."""
        name = self.cfg.metric or self.task.main_metric
        if name not in metrics:
            raise BertcliError(
                f"train.metric: {name!r} is not a metric of this task",
                "choose one of: "
                + ", ".join(k for k, v in metrics.items() if isinstance(v, float)),
            )
        value = float(metrics[name])
        summary = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
        self.state.evals.append({"step": self.state.step, **summary})
        self._log({"step": self.state.step, "epoch": self.state.epoch, "eval": summary})
        shown = ", ".join(f"{k} {v:.4f}" for k, v in summary.items() if isinstance(v, float))
        info(f"step {self.state.step}: validation {shown}")
        if self.state.best_metric is None or value > self.state.best_metric:
            self.state.best_metric, self.state.best_step = value, self.state.step
            self.state.evals_without_improvement = 0
            if self.acc.is_main_process:
                best = self.out_dir / "checkpoints" / BEST_DIR
                self.save_best(self.acc.unwrap_model(self.model), best, metrics)
            self.acc.wait_for_everyone()
            return False
        self.state.evals_without_improvement += 1
        patience = self.cfg.early_stopping_patience
        if patience is not None and self.state.evals_without_improvement >= patience:
            notice(f"early stopping: no {name} improvement in {patience} evaluations")
            return True
        return False

    # ------------------------------------------------------------------------ train

    def train(self) -> TrainState:
        acc, cfg, state, plan = self.acc, self.cfg, self.state, self.plan
        world = acc.num_processes
        info(
            f"training {plan.total_steps} steps ({plan.steps_per_epoch} per epoch), "
            f"batch {cfg.batch_size} x {world} process(es) x {cfg.grad_accum} accumulation, "
            f"precision {acc.mixed_precision}"
        )
        columns = TextColumn(
            "loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  "
            "{task.fields[sps]:.1f} samples/s"
        )
        self.model.train()
        stop = False
        with progress(columns) as bar:
            task_id = bar.add_task(
                "fine-tuning",
                total=plan.total_steps,
                completed=state.step,
                loss=0.0,
                lr=0.0,
                sps=0.0,
            )
            started, seen_since, losses = time.perf_counter(), 0, []
            mark, pending = started, 0
            # Ctrl-C may land mid-step, after dropout consumed random numbers: the checkpoint must
            # hold the RNG state of the last step boundary for a resumed run to match exactly.
            boundary_rng = rng_snapshot()
            try:
                while state.step < plan.total_steps and not stop:
                    # accelerate's loader keeps its own epoch counter and pushes it to the sampler
                    # on iteration; it restarts at 0 after a resume, so set it explicitly.
                    self.train_dl.set_epoch(state.epoch)
                    loader = self.train_dl
                    skip = state.batches_in_epoch
                    if skip:
                        loader = acc.skip_first_batches(self.train_dl, skip)
                        loader.set_epoch(state.epoch)
                    consumed = skip
                    for batch in loader:
                        consumed += 1
                        with acc.accumulate(self.model):
                            loss, _ = self.model(**batch)
                            acc.backward(loss)
                            losses.append(loss.detach().float())
                            seen_since += batch["input_ids"].shape[0] * world
                            pending += batch["input_ids"].shape[0] * world
                            if not acc.sync_gradients:
                                continue
                            if cfg.max_grad_norm > 0:
                                acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                            self.optimizer.step()
                            self.scheduler.step()
                            self.optimizer.zero_grad(set_to_none=True)
                        now = time.perf_counter()
                        state.train_seconds += now - mark
                        state.step += 1
                        state.batches_in_epoch = consumed
                        state.samples, pending = state.samples + pending, 0
                        elapsed = now - started
                        mean_loss = float(torch.stack(losses).mean())
                        lr = self.scheduler.get_last_lr()[0]
                        sps = seen_since / elapsed if elapsed > 0 else 0.0
                        bar.update(task_id, completed=state.step, loss=mean_loss, lr=lr, sps=sps)
                        if state.step % cfg.log_steps == 0 or state.step == plan.total_steps:
                            self._log(
                                {
                                    "step": state.step,
                                    "epoch": state.epoch,
                                    "loss": round(mean_loss, 5),
                                    "lr": lr,
                                    "samples_per_s": round(sps, 2),
                                }
                            )
                            started, seen_since, losses = time.perf_counter(), 0, []
                        if cfg.eval_steps and state.step % cfg.eval_steps == 0:
                            stop = self._after_eval(self.evaluate())
                        if state.step % cfg.save_steps == 0:
                            self.save_checkpoint()
                        mark = time.perf_counter()
                        boundary_rng = rng_snapshot()
                        if stop or state.step >= plan.total_steps:
                            break
                    else:
                        state.epoch += 1
                        state.batches_in_epoch = 0
                        if not cfg.eval_steps and state.step < plan.total_steps:
                            stop = self._after_eval(self.evaluate())
                        mark = time.perf_counter()
            except KeyboardInterrupt:
                if acc.num_processes == 1:
                    rng_restore(boundary_rng)
                    path = self.save_checkpoint()
                    raise Interrupted(
                        f"interrupted at step {state.step}; checkpoint saved to {path}",
                        "re-run the same command to resume",
                    ) from None
                raise Interrupted(f"interrupted at step {state.step}") from None
        last_eval = state.evals[-1]["step"] if state.evals else None
        if last_eval != state.step:
            self._after_eval(self.evaluate())
        state.finished = True
        self.save_checkpoint()
        return state
