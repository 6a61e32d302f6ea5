"""The obvious alternative, for the throughput benchmarks: a plain Hugging Face `Trainer`.

Each task is set up the way the transformers docs and example scripts do it: IMDb as in the
text-classification guide (dynamic padding), CoNLL-2003 as in `run_ner.py` (first sub-word
labelled, dynamic padding), SQuAD as in `run_qa.py` (doc-stride windows, padded to max length,
its default). Only the data files are read with bertcli's readers, so both sides see the same
examples. Run as a script with a JSON spec (the benchmarks call it in a subprocess):

    python benchmarks/hf_trainer.py '{"task": "imdb", "data": "../shared/data/imdb/train.csv",
        "model": "DIR", "steps": 40, "batch_size": 16, "max_length": 256, "bf16": false}'

It prints one JSON line: samples/s, real tokens/s (padding excluded), peak memory and, when a
test file is given for IMDb, accuracy.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def imdb_data(spec: dict, tokenizer: Any) -> tuple[Any, Any, Any]:
    from datasets import load_dataset
    from transformers import AutoModelForSequenceClassification

    ds = load_dataset("csv", data_files={"train": spec["data"]})["train"]
    ds = ds.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=spec["max_length"]),
        batched=True,
        remove_columns=["text"],
    )
    model = AutoModelForSequenceClassification.from_pretrained(spec["model"], num_labels=2)
    return ds, model, None


def conll_data(spec: dict, tokenizer: Any) -> tuple[Any, Any, Any]:
    from datasets import Dataset
    from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

    from bertcli.data.conll import read_conll

    sentences = read_conll(spec["data"])
    names = sorted({t for s in sentences for t in s.tags})
    ids = {name: i for i, name in enumerate(names)}
    enc = tokenizer(
        [s.tokens for s in sentences],
        is_split_into_words=True,
        truncation=True,
        max_length=spec["max_length"],
    )
    labels = []
    for row, sentence in enumerate(sentences):
        previous, row_labels = None, []
        for word in enc.word_ids(row):
            first = word is not None and word != previous
            row_labels.append(ids[sentence.tags[word]] if first else -100)
            previous = word
        labels.append(row_labels)
    ds = Dataset.from_dict({**enc, "labels": labels})
    model = AutoModelForTokenClassification.from_pretrained(spec["model"], num_labels=len(names))
    return ds, model, DataCollatorForTokenClassification(tokenizer)


def squad_data(spec: dict, tokenizer: Any) -> tuple[Any, Any, Any]:
    """`run_qa.py`'s prepare_train_features: question first, context windows of max_length with
    doc stride, padded to max_length; a window without the answer points at [CLS]."""
    from datasets import Dataset
    from transformers import AutoModelForQuestionAnswering, default_data_collator

    from bertcli.data.squad import read_squad

    examples = read_squad(spec["data"], "skip").examples
    enc = tokenizer(
        [e.question.lstrip() for e in examples],
        [e.context for e in examples],
        truncation="only_second",
        max_length=spec["max_length"],
        stride=spec.get("stride", 128),
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
    )
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        example = examples[enc["overflow_to_sample_mapping"][i]]
        sequence = enc.sequence_ids(i)
        first = sequence.index(1)
        last = len(sequence) - 1 - sequence[::-1].index(1)
        char_start, char_end = example.first_span()
        if offsets[first][0] > char_start or offsets[last][1] < char_end:
            starts.append(0)
            ends.append(0)
            continue
        start = first
        while start <= last and offsets[start][0] <= char_start:
            start += 1
        end = last
        while end >= first and offsets[end][1] >= char_end:
            end -= 1
        starts.append(start - 1)
        ends.append(end + 1)
    enc.pop("offset_mapping")
    enc.pop("overflow_to_sample_mapping")
    ds = Dataset.from_dict({**enc, "start_positions": starts, "end_positions": ends})
    model = AutoModelForQuestionAnswering.from_pretrained(spec["model"])
    return ds, model, default_data_collator


TASKS = {"imdb": imdb_data, "conll2003": conll_data, "squad": squad_data}


def imdb_accuracy(spec: dict, trainer: Any, tokenizer: Any) -> float:
    import numpy as np
    from datasets import load_dataset

    test = load_dataset("csv", data_files={"test": spec["test"]})["test"]
    test = test.select(range(min(spec.get("test_samples", len(test)), len(test))))
    test = test.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=spec["max_length"]),
        batched=True,
    )
    pred = trainer.predict(test)
    return float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())


def run(spec: dict) -> dict:
    import torch
    from transformers import AutoTokenizer, Trainer, TrainingArguments

    from bertcli.finetune import peak_memory_mb

    cuda = torch.cuda.is_available() and not spec.get("cpu")
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    ds, model, collator = TASKS[spec["task"]](spec, tokenizer)
    mean_tokens = sum(map(sum, ds["attention_mask"])) / len(ds)
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="bench-trainer-"),
        per_device_train_batch_size=spec["batch_size"],
        per_device_eval_batch_size=64,
        max_steps=spec["steps"],
        learning_rate=spec.get("lr", 5e-5),
        bf16=spec["bf16"],
        use_cpu=not cuda,
        report_to=[],
        save_strategy="no",
        logging_steps=50,
        seed=42,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=ds,
        data_collator=collator,
        processing_class=tokenizer,
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = trainer.train()
    wall = time.perf_counter() - started
    samples_per_s = result.metrics["train_samples_per_second"]
    peak = peak_memory_mb(trainer.args.device)  # measured as bertcli measures its own
    accuracy = None
    if spec.get("test") and spec["task"] == "imdb":
        accuracy = imdb_accuracy(spec, trainer, tokenizer)
    return {
        "samples_per_s": samples_per_s,
        "tokens_per_s": samples_per_s * mean_tokens,
        "mean_tokens": mean_tokens,
        "peak_mb": peak,
        "wall_s": wall,
        "accuracy": accuracy,
        "precision": "bf16" if spec["bf16"] else "no",
    }


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
