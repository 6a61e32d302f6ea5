"""README.md for a fine-tuned model folder in the Hugging Face model-card format: YAML front
matter the hub reads (base model, library, pipeline tag, datasets), then how the model was made."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

CARD_FILE = "README.md"
# The hub's pipeline tag for the transformers head class a task's model carries.
PIPELINE_TAGS = {
    "AutoModelForSequenceClassification": "text-classification",
    "AutoModelForTokenClassification": "token-classification",
    "AutoModelForQuestionAnswering": "question-answering",
}
# The embedded model is a packaged copy of this hub model.
EMBEDDED_BASE = "sentence-transformers/all-MiniLM-L6-v2"


def command_line(argv: list[str] | None = None) -> str | None:
    """The shell command that is running, when it is the bertcli CLI (not a Python caller)."""
    argv = list(sys.argv if argv is None else argv)
    program = Path(argv[0]) if argv else Path()
    if program.name == "bertcli" or program.parts[-2:] == ("bertcli", "__main__.py"):
        return shlex.join(["bertcli", *argv[1:]])
    return None


def base_model(source: Any) -> str | None:
    if source.origin == "embedded":
        return EMBEDDED_BASE
    return source.requested if source.origin in ("hub", "cache") else None


def front_matter(config: Any, source: Any, metrics: dict[str, Any]) -> dict[str, Any]:
    from bertcli.tasks import get_task

    tag = PIPELINE_TAGS.get(get_task(config.task).auto_class, "text-classification")
    meta: dict[str, Any] = {}
    base = base_model(source)
    if base:
        meta["base_model"] = base
    meta["library_name"] = "transformers"
    meta["pipeline_tag"] = tag
    meta["tags"] = ["bertcli", tag, config.name]
    if config.data.dataset:
        meta["datasets"] = [config.data.dataset]
    names = sorted({k for split in ("validation", "test") for k in _numbers(metrics.get(split))})
    if names:
        meta["metrics"] = names
    return meta


def _numbers(scores: Any) -> dict[str, float]:
    if not isinstance(scores, dict):
        return {}
    return {
        k: v
        for k, v in scores.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and not k.startswith("num_")
    }


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_card(
    config: Any,
    source: Any,
    metrics: dict[str, Any],
    sources: dict[str, str],
    sizes: dict[str, int],
    recipe_yaml: str,
    command: str | None,
) -> str:
    meta = front_matter(config, source, metrics)
    base = meta.get("base_model") or source.requested
    folder = config.output_dir
    scores = [
        [split, name, f"{value:.4f}" if isinstance(value, float) else value]
        for split in ("validation", "test")
        for name, value in _numbers(metrics.get(split)).items()
    ]
    train = config.to_dict()["train"]
    hyper = [[k, v] for k, v in train.items() if k != "output_dir" and v is not None]
    made = command or f"python: bertcli.finetune(config) with the recipe below ({config.name})"
    parts = [
        "---\n" + yaml.safe_dump(meta, sort_keys=False).strip() + "\n---",
        f"# {config.name}: {base} fine-tuned with bertcli",
        f"A {meta['pipeline_tag']} model: `{base}` fine-tuned on the `{config.name}` recipe "
        f"with bertcli. The folder loads as-is in "
        "transformers; `bertcli predict` and `bertcli eval` use its `bertcli.json` too.",
        "## Data\n\n"
        + _table(
            ["split", "source", "examples"],
            [[s, sources.get(s, ""), sizes.get(s, "")] for s in sources],
        ),
        "## Metrics\n\n"
        + (_table(["split", "metric", "value"], scores) if scores else "No scores were recorded."),
        "## Hyper-parameters\n\n" + _table(["train.*", "value"], hyper),
        "## How it was made\n\n```bash\n" + made + "\n```",
        "## Recipe\n\nThe resolved recipe (`config.yaml`):\n\n```yaml\n"
        + recipe_yaml.strip()
        + "\n```",
        "## Use it\n\n```bash\n"
        + f'echo "some text" | bertcli predict --model {folder} -\n'
        + "```\n\n```python\nfrom transformers import pipeline\n\n"
        + f'pipe = pipeline("{meta["pipeline_tag"]}", model="{folder}")\n```',
    ]
    return "\n\n".join(parts) + "\n"


def write_card(
    config: Any,
    source: Any,
    metrics: dict[str, Any],
    sources: dict[str, str],
    sizes: dict[str, int],
    command: str | None = None,
) -> Path:
    from bertcli.config import dump_config

    path = Path(config.output_dir) / CARD_FILE
    card = render_card(
        config, source, metrics, sources, sizes, dump_config(config), command or command_line()
    )
    path.write_text(card, encoding="utf-8")
    return path
