"""`bertcli pretrain` on every family with a masked-LM head, with the family's own mask token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bertcli.console import configure
from bertcli.predict import predict_records
from bertcli.pretrain import pretrain, pretrain_config
from families.factories import FAMILIES
from families.test_matrix import FILLER

MASKED_LM_FAMILIES = [f for f in FAMILIES if f != "electra"]  # ELECTRA's generator: out of scope


@pytest.mark.parametrize("family", MASKED_LM_FAMILIES)
def test_pretrain_then_fill_masks(family, family_model, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    model = family_model(family)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(FILLER * (1 + i % 3) for i in range(24)) + "\n", encoding="utf-8")
    settings = {
        "model.name": str(model),
        "train.output_dir": str(tmp_path / "mlm"),
        "train.max_steps": 2,
        "train.max_length": 32,
        "train.batch_size": 4,
        "train.precision": "no",
        "mlm.whole_word": family in ("roberta", "modernbert"),  # word ids of byte-level BPE
    }
    configure(quiet=True)
    try:
        out = pretrain(pretrain_config(None, [str(text)], settings)).output_dir
    finally:
        configure(quiet=False)
    mask = AutoTokenizer.from_pretrained(str(model)).mask_token
    source = tmp_path / "in.txt"
    # The family's own mask token, and "[MASK]" written the BERT way: both are filled.
    source.write_text(f"the film was {mask} .\nthe [MASK] was great .\n", encoding="utf-8")
    rows = [json.loads(line) for line in predict_records(source, out, precision="no")]
    assert [len(row["fills"]) for row in rows] == [1, 1]
    assert all(len(row["fills"][0]) == 5 for row in rows)
    assert rows[0]["filled"].startswith("the film was ") and mask not in rows[0]["filled"]
