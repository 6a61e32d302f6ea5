"""Batching: dynamic padding, and (optionally length-grouped) batch orders that resume exactly."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence

import torch

from bertcli.data.batching import pad_labels, pad_windows, sorted_batches
from bertcli.data.windows import Windows

# How many batches of similar length are formed from one shuffled pool. Larger pools pad less
# but make consecutive batches less random.
POOL_BATCHES = 50


class WindowDataset(torch.utils.data.Dataset):
    def __init__(self, windows: Windows) -> None:
        self.windows = windows

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> int:
        return index


class Collator:
    """Pads a list of window indices to the longest window in the batch (rounded up to a
    multiple of `multiple`, at most `limit`); `transform(batch, epoch())`, if given, then changes
    it (a task's per-epoch masks)."""

    def __init__(
        self,
        windows: Windows,
        pad_id: int,
        transform: Callable[[dict, int], dict] | None = None,
        epoch: Callable[[], int] = lambda: 0,
        multiple: int = 1,
        limit: int | None = None,
    ) -> None:
        self.windows = windows
        self.pad_id = pad_id
        self.transform = transform
        self.epoch = epoch
        self.multiple = multiple
        self.limit = limit

    def __call__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        w = self.windows
        padded = pad_windows(w, indices, self.pad_id, self.multiple, self.limit)
        batch = {k: torch.from_numpy(v) for k, v in padded.items()}  # (batch, seq) each
        batch["window_index"] = torch.tensor(list(indices), dtype=torch.long)
        labels = pad_labels(w, indices, batch["input_ids"].shape[1])
        if labels is not None:
            batch["labels"] = torch.from_numpy(labels)
        return batch if self.transform is None else self.transform(batch, self.epoch())


class EpochBatches(torch.utils.data.Sampler):
    """Batches of window indices for one epoch, a pure function of (seed, epoch).

    Being deterministic per epoch is what lets a resumed run skip the batches it has already seen
    and end exactly where an uninterrupted run would.

    With `groups` (lists of window indices, e.g. each document's windows) a group is never split:
    batches are whole groups, up to `batch_size` windows (a larger group is a batch of its own),
    and a group longer than `group_limit` (0: no limit) takes a random `group_limit` of its
    windows, in order, drawn again each epoch. Groups are not length-grouped (see below).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool,
        group_by_length: bool,
        seed: int,
        groups: Sequence[Sequence[int]] | None = None,
        group_limit: int = 0,
    ) -> None:
        self.lengths = list(lengths)
        self.groups = [list(g) for g in groups] if groups is not None else None
        self.group_limit = group_limit
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.group_by_length = group_by_length
        self.seed = seed
        self.epoch = 0
        self.drop_last = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        if self.groups is not None:
            return self._group_batches()
        order = list(range(len(self.lengths)))
        if not self.shuffle:
            if self.group_by_length:
                # Evaluation: sort by length so padding is minimal; callers restore order.
                return sorted_batches(self.lengths, self.batch_size)
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        rng.shuffle(order)
        if not self.group_by_length:
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        pool = self.batch_size * POOL_BATCHES
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: self.lengths[i])
            batches += [
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            ]
        rng.shuffle(batches)
        return batches

    def _group_batches(self) -> list[list[int]]:
        assert self.groups is not None
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        groups = list(self.groups)
        limit = self.group_limit
        if self.shuffle:
            groups = [
                sorted(rng.sample(g, limit)) if limit and len(g) > limit else g for g in groups
            ]
            rng.shuffle(groups)
        elif limit:
            groups = [g[:limit] for g in groups]
        # No length grouping here: batches sorted by group size put the long documents
        # together, a few per step, and cost 7 points of accuracy on long IMDb reviews
        # (benchmarks/RESULTS.md, "Long documents").
        batches: list[list[int]] = []
        current: list[int] = []
        for group in groups:
            if current and len(current) + len(group) > self.batch_size:
                batches.append(current)
                current = []
            current = current + group
        if current:
            batches.append(current)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        if self.groups is not None:
            # Packing whole groups gives each epoch its own count; the loop runs by steps.
            return len(self.batches())
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size
