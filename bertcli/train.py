"""The one training loop, in accelerate's order: prepare -> epochs -> evaluate -> checkpoint."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.progress import TextColumn

from bertcli.checkpoint import (
    STATE_FILE,
    load_training_state,
    rng_restore,
    rng_snapshot,
    save_training_state,
)
from bertcli.config import TrainConfig
from bertcli.console import info, notice, progress
from bertcli.data.batching import WindowOutputs
from bertcli.data.collate import Collator, EpochBatches, WindowDataset
from bertcli.data.load import Example
from bertcli.data.windows import Windows
from bertcli.errors import BertcliError
from bertcli.optim import FUSED_ADAMW_DEVICES, make_optimizer, make_schedule, plan_steps
from bertcli.tasks import Task
from bertcli.trackers import values as tracker_values

LOG_FILE = "train_log.jsonl"
BEST_DIR = "best"


class Interrupted(BertcliError):
    """Ctrl-C (or SIGTERM) during training; a checkpoint was saved first."""

    exit_code = 130


class Terminated(Exception):
    """Raised in the training loop by the SIGTERM handler, like KeyboardInterrupt for Ctrl-C."""


class Diverged(BertcliError):
    """The loss (or gradient norm) became NaN or infinite: the weights are no longer usable."""


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While training, SIGTERM (a scheduler's or `kill`'s stop) stops the loop like Ctrl-C does,
    so the run saves a checkpoint instead of losing everything since the last one."""

    def handler(signum: int, frame: Any) -> None:
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: signals cannot be caught here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class TrainState:
    """Everything beyond model/optimizer/scheduler/RNG that a resumed run needs."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batches_in_epoch: int = 0  # micro-batches of `epoch` consumed up to the last optimizer step
    samples: int = 0
    tokens: int = 0  # real (not padding) tokens trained on
    train_seconds: float = 0.0  # time in forward/backward/step only, not evaluation or saving
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    finished: bool = False
    evals: list[dict[str, Any]] = field(default_factory=list)


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
        pad_multiple: int = 1,
    ) -> None:
        self.acc = accelerator
        self.task = task
        self.cfg = cfg
        self.out_dir = out_dir
        self.save_best = save_best
        self.eval_windows = eval_windows
        self.eval_examples = eval_examples
        groups, group_limit = task.training_groups(train_windows) or (None, 0)
        self.batches = EpochBatches(
            train_windows.lengths(),
            cfg.batch_size,
            shuffle=True,
            group_by_length=cfg.group_by_length,
            seed=cfg.seed,
            groups=groups,
            group_limit=group_limit,
        )
        train_dl = torch.utils.data.DataLoader(
            WindowDataset(train_windows),
            batch_sampler=self.batches,
            collate_fn=Collator(
                train_windows,
                pad_id,
                task.batch_transform(train_windows),
                epoch=lambda: self.state.epoch,
                multiple=pad_multiple,
                limit=cfg.max_length,
            ),
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
            collate_fn=Collator(eval_windows, pad_id, multiple=pad_multiple, limit=cfg.max_length),
            generator=torch.Generator(),
        )
        # The model is still on the CPU here; accelerate moves it (and so these parameters).
        fused = accelerator.device.type in FUSED_ADAMW_DEVICES
        optimizer = make_optimizer(model, cfg, head_lr, fused=fused)
        self.model, self.optimizer, self.train_dl, self.eval_dl = accelerator.prepare(
            model, optimizer, train_dl, eval_dl
        )
        self.plan = plan_steps(len(self.train_dl), cfg)
        # Not prepared: accelerate would step it once per process; we step it per optimizer step.
        self.scheduler = make_schedule(self.optimizer, self.plan.total_steps, cfg.warmup_ratio)
        self.state = TrainState()
        # Losses (and gradient norms) stay on the device until a log line, an evaluation or a
        # checkpoint reads them: reading a tensor each step would stall the device every step.
        self._losses: list[torch.Tensor] = []
        self._loss_steps: list[int] = []
        self._norms: list[torch.Tensor] = []
        self._tokens: list[torch.Tensor] = []  # attention-mask sums, read with the losses
        self._last_checkpoint: Path | None = None

    # ------------------------------------------------------------------ checkpoints

    def _state_parts(self) -> dict[str, Any]:
        return {
            "model": self.acc.unwrap_model(self.model),
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "scaler": getattr(self.acc, "scaler", None),
            "rank": self.acc.process_index,
        }

    def resume_from(self, checkpoint: Path) -> None:
        load_training_state(checkpoint, **self._state_parts())
        data = json.loads((checkpoint / STATE_FILE).read_text())
        self.state = TrainState(**data)
        self._last_checkpoint = checkpoint
        notice(f"resuming from {checkpoint} (step {self.state.step} of {self.plan.total_steps})")
        if self.acc.is_main_process:
            self._trim_log(self.state.step)

    def save_checkpoint(self, rng: dict[str, Any] | None = None) -> Path:
        """Write the training state to checkpoints/step-N through a temporary folder and a
        rename, so a killed process never leaves a half-written checkpoint behind."""
        self._check_finite()
        root = self.out_dir / "checkpoints"
        final = root / f"step-{self.state.step:06d}"
        tmp = root / f".tmp-step-{self.state.step:06d}"
        if self.acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            root.mkdir(parents=True, exist_ok=True)
        self.acc.wait_for_everyone()
        save_training_state(
            tmp, rng=rng or rng_snapshot(), main=self.acc.is_main_process, **self._state_parts()
        )
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            (tmp / STATE_FILE).write_text(json.dumps(asdict(self.state), indent=1))
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            for old in checkpoint_dirs(self.out_dir)[: -self.cfg.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        self.acc.wait_for_everyone()
        self._last_checkpoint = final
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
        self._check_finite()
        model, task = self.model, self.task
        model.eval()
        task.bind(self.acc.unwrap_model(model))
        outputs = WindowOutputs(self.eval_windows)
        with torch.no_grad():
            for batch in self.eval_dl:
                out = model(**{k: v for k, v in batch.items() if k != "labels"})
                out = task.kept_outputs(out, batch.get("labels")).float()
                if task.token_level:
                    # Processes pad their batches to different widths; gathering needs one
                    # (on every sequence axis: span scores have two).
                    for dim in range(1, out.ndim - 1):
                        out = self.acc.pad_across_processes(out, dim=dim)
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

    # ------------------------------------------------------------------- loss health

    def _check_finite(self) -> float | None:
        """Mean loss since the last read (None if no step ran); stops a diverged run.

        Called before every log line, evaluation and checkpoint, so no checkpoint or `best`
        model is ever written from weights that a NaN or infinite loss has touched.
        """
        if self._tokens:
            # Every process counts its own batches; all of them pass here together.
            self.state.tokens += int(self.acc.reduce(torch.stack(self._tokens).sum(), "sum"))
            self._tokens = []
        if not self._losses:
            return None
        losses = torch.stack(self._losses).float()
        bad = ~torch.isfinite(losses)
        if self._norms:
            bad = bad | ~torch.isfinite(torch.stack(self._norms).float())
        mean, first_bad = float(losses.mean()), int(bad.int().argmax()) if bool(bad.any()) else -1
        steps, self._losses, self._loss_steps, self._norms = self._loss_steps, [], [], []
        if first_bad < 0:
            return mean
        step = steps[first_bad]
        kept = (
            f"the last good checkpoint is {self._last_checkpoint}"
            if self._last_checkpoint
            else "no checkpoint was written"
        )
        raise Diverged(
            f"training diverged at step {step}: the loss or gradients became NaN or infinite; "
            f"nothing from this point was saved ({kept})",
            f"lower the learning rate (now --lr {self.cfg.lr:g}), or train in fp32 with "
            "--precision no, and start over with --overwrite",
        )

    # ------------------------------------------------------------------------ train

    def _step(self, batch: dict[str, torch.Tensor]) -> bool:
        """Forward/backward one micro-batch; True when it completed an optimizer step."""
        acc, cfg = self.acc, self.cfg
        with acc.accumulate(self.model):
            loss, _ = self.model(**batch)
            acc.backward(loss)
            self._losses.append(loss.detach())
            self._tokens.append(batch["attention_mask"].sum())
            self._loss_steps.append(self.state.step + 1)
            if not acc.sync_gradients:
                return False
            if cfg.max_grad_norm > 0:
                norm = acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                # fp16's loss scaling overflows on purpose now and then: the scaler skips those.
                if acc.mixed_precision != "fp16" and isinstance(norm, torch.Tensor):
                    self._norms.append(norm.detach())
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        return True

    def _after_step(self, bar: Any, task_id: Any, meter: dict[str, float]) -> bool:
        """Log, evaluate and checkpoint on their schedules; True when training should stop."""
        state, cfg, plan = self.state, self.cfg, self.plan
        stop = False
        if state.step % cfg.log_steps == 0 or state.step == plan.total_steps:
            mean_loss = self._check_finite()
            elapsed = time.perf_counter() - meter["started"]
            sps = meter["seen"] / elapsed if elapsed > 0 else 0.0
            lr = self.scheduler.get_last_lr()[0]
            bar.update(task_id, loss=mean_loss or 0.0, lr=lr, sps=sps)
            self._log(
                {
                    "step": state.step,
                    "epoch": state.epoch,
                    "loss": round(mean_loss or 0.0, 5),
                    "lr": lr,
                    "samples_per_s": round(sps, 2),
                }
            )
            meter.update(started=time.perf_counter(), seen=0)
        if cfg.eval_steps and state.step % cfg.eval_steps == 0:
            stop = self._after_eval(self.evaluate())
        if state.step % cfg.save_steps == 0:
            self.save_checkpoint()
        return stop or state.step >= plan.total_steps

    def _epoch(self, bar: Any, task_id: Any, meter: dict[str, float]) -> bool:
        """Run (the rest of) epoch `state.epoch`; True when training should stop."""
        acc, state = self.acc, self.state
        # accelerate's loader keeps its own epoch counter and pushes it to the sampler on
        # iteration; it restarts at 0 after a resume, so set it explicitly.
        self.train_dl.set_epoch(state.epoch)
        loader, consumed = self.train_dl, state.batches_in_epoch
        if consumed:
            loader = acc.skip_first_batches(self.train_dl, consumed)
            loader.set_epoch(state.epoch)
        mark = time.perf_counter()
        pending = 0
        for batch in loader:
            consumed += 1
            size = batch["input_ids"].shape[0] * acc.num_processes
            meter["seen"] += size
            pending += size
            if not self._step(batch):
                continue
            state.train_seconds += time.perf_counter() - mark
            state.step += 1
            state.batches_in_epoch = consumed
            state.samples, pending = state.samples + pending, 0
            bar.update(task_id, completed=state.step)
            stop = self._after_step(bar, task_id, meter)
            mark = time.perf_counter()
            # Ctrl-C may land mid-step, after dropout consumed random numbers: a checkpoint
            # saved on interrupt must hold the RNG state of the last step boundary.
            self._boundary_rng = rng_snapshot()
            if stop:
                return True
        state.epoch += 1
        state.batches_in_epoch = 0
        if not self.cfg.eval_steps and state.step < self.plan.total_steps:
            return self._after_eval(self.evaluate())
        return False

    def _interrupted(self, signal_name: str, exit_code: int) -> Interrupted:
        """Save a checkpoint at the last step boundary (single process) and say so."""
        step = self.state.step
        # Token counts of finished steps go into the checkpoint; the broken step's are dropped.
        self._tokens = self._tokens[: sum(s <= step for s in self._loss_steps)]
        self._losses, self._loss_steps, self._norms = [], [], []  # the broken step's, if any
        if self.acc.num_processes > 1:
            # Other ranks may be inside a collective operation: saving could hang.
            error = Interrupted(f"{signal_name}: interrupted at step {step}")
        else:
            rng_restore(self._boundary_rng)
            path = self.save_checkpoint(self._boundary_rng)
            error = Interrupted(
                f"{signal_name}: interrupted at step {step}; checkpoint saved to {path}",
                "re-run the same command to resume",
            )
        error.exit_code = exit_code
        return error

    def train(self) -> TrainState:
        acc, cfg, state, plan = self.acc, self.cfg, self.state, self.plan
        info(
            f"training {plan.total_steps} steps ({plan.steps_per_epoch} per epoch), "
            f"batch {cfg.batch_size} x {acc.num_processes} process(es) x {cfg.grad_accum} "
            f"accumulation, precision {acc.mixed_precision}"
        )
        columns = TextColumn(
            "loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  "
            "{task.fields[sps]:.1f} samples/s"
        )
        self.model.train()
        self._boundary_rng = rng_snapshot()
        with progress(columns) as bar, sigterm_interrupts():
            task_id = bar.add_task(
                self.task.activity,
                total=plan.total_steps,
                completed=state.step,
                loss=0.0,
                lr=0.0,
                sps=0.0,
            )
            meter = {"started": time.perf_counter(), "seen": 0.0}
            try:
                while state.step < plan.total_steps:
                    if self._epoch(bar, task_id, meter):
                        break
            except KeyboardInterrupt:
                raise self._interrupted("Ctrl-C", 130) from None
            except Terminated:
                raise self._interrupted("SIGTERM", 143) from None
        last_eval = state.evals[-1]["step"] if state.evals else None
        if last_eval != state.step:
            self._after_eval(self.evaluate())
        state.finished = True
        self.save_checkpoint()
        return state
