"""A data file read as a given task reads it: the one place `eval` and export checks turn files
into examples (training reads whole splits through `finetune.load_data`)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from bertcli.config import DataConfig


def read_task_file(
    task: str,
    path: str | Path,
    data: DataConfig,
    label_names: Sequence[str] | None,
    *,
    with_labels: bool = True,
    limit: int | None = None,
) -> list[Any]:
    """Examples of `path` for `task` (classification: CSV/JSON(L)/...; tagging: CoNLL or token
    JSONL; qa: SQuAD JSON/JSONL), the first `limit` only if given. Without labels, answers that
    do not match their context are skipped instead of refused: they are not used."""
    if task == "qa":
        from bertcli.data.squad import read_squad

        return read_squad(path, "error" if with_labels else "skip").examples[:limit]
    names = list(label_names or [])
    if task == "tagging":
        from bertcli.data.tagging import iter_tagging_records, to_tagged_examples

        records = list(islice(iter_tagging_records(path), limit))
        return to_tagged_examples(records, data, names, with_labels=with_labels)
    from bertcli.data.load import to_examples
    from bertcli.data.readers import iter_records, read_records

    records = read_records(path) if limit is None else list(islice(iter_records(path), limit))
    return to_examples(records, data, names if with_labels else None, with_labels=with_labels)
