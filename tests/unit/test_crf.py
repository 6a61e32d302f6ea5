"""The CRF checked against brute-force enumeration of every tag sequence on tiny inputs."""

from __future__ import annotations

from itertools import product

import pytest
import torch

from bertcli.modeling.crf import CRF, bio_allowed

LENGTHS = (4, 2, 1)  # batch 3 of different lengths inside one padded (3, 4) batch
BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture(autouse=True)
def one_thread():
    """A CPU benchmark shares this machine: keep torch to one thread, then put it back."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_batch(num_tags: int, seed: int, dtype=torch.float64):
    """Random emissions (3, 4, tags), gold tags padded with -100, and the prefix mask."""
    gen = torch.Generator().manual_seed(seed)
    seq = max(LENGTHS)
    emissions = torch.randn(len(LENGTHS), seq, num_tags, generator=gen, dtype=dtype)
    mask = torch.arange(seq) < torch.tensor(LENGTHS).unsqueeze(1)  # (batch, seq)
    tags = torch.randint(num_tags, (len(LENGTHS), seq), generator=gen).masked_fill(~mask, -100)
    return emissions, tags, mask


def make_crf(num_tags: int, seed: int, **kwargs) -> CRF:
    """A CRF in float64 with transitions large enough that they matter against the emissions."""
    torch.manual_seed(seed)
    crf = CRF(num_tags, **kwargs).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.mul_(10)  # uniform(-1, 1): the default (-0.1, 0.1) would hide transition bugs
    return crf


def path_scores(crf: CRF, emissions: torch.Tensor, paths: torch.Tensor, *, bans: bool = True):
    """Scores (K,) of paths (K, L) for one sequence's emissions (L, tags), written out longhand."""
    start, trans, end = crf.start_transitions, crf.transitions, crf.end_transitions
    if bans:
        start, trans = start + crf.start_penalty, trans + crf.transition_penalty
    length = paths.shape[1]
    return (
        start[paths[:, 0]]
        + emissions[torch.arange(length), paths].sum(1)
        + trans[paths[:, :-1], paths[:, 1:]].sum(1)
        + end[paths[:, -1]]
    ).detach()


def all_paths(num_tags: int, length: int) -> torch.Tensor:
    """Every tag sequence of the given length, (num_tags ** length, length)."""
    return torch.tensor(list(product(range(num_tags), repeat=length)))


def legal_bio(path: list[int]) -> bool:
    """IOB2 by string rules (independent of bio_allowed): I-X only after B-X or I-X."""
    previous = None
    for label in (BIO[i] for i in path):
        if label.startswith("I-") and previous not in (f"B-{label[2:]}", label):
            return False
        previous = label
    return True


@pytest.mark.parametrize("num_tags", [3, 4])
def test_nll_is_log_partition_minus_gold_score_by_enumeration(num_tags):
    crf = make_crf(num_tags, seed=num_tags)
    emissions, tags, mask = make_batch(num_tags, seed=num_tags)
    nll = crf(emissions, tags, mask, reduction="none")
    assert nll.shape == (len(LENGTHS),)
    for b, length in enumerate(LENGTHS):
        scores = path_scores(crf, emissions[b, :length], all_paths(num_tags, length))
        gold = path_scores(crf, emissions[b, :length], tags[b, :length].unsqueeze(0))[0]
        log_z = torch.logsumexp(scores, dim=0)
        assert nll[b].item() == pytest.approx((log_z - gold).item(), abs=1e-9)


@pytest.mark.parametrize("num_tags", [3, 4])
def test_viterbi_matches_brute_force_argmax(num_tags):
    crf = make_crf(num_tags, seed=10 + num_tags)
    emissions, _, mask = make_batch(num_tags, seed=10 + num_tags)
    paths, scores = crf.decode_scores(emissions, mask)
    assert paths == crf.decode(emissions, mask)
    assert [len(p) for p in paths] == list(LENGTHS)
    for b, length in enumerate(LENGTHS):
        candidates = all_paths(num_tags, length)
        brute = path_scores(crf, emissions[b, :length], candidates)
        assert paths[b] == candidates[brute.argmax()].tolist()
        assert scores[b].item() == pytest.approx(brute.max().item(), abs=1e-9)


def test_bio_allowed_masks():
    transitions, start = bio_allowed(["O", "B-X", "I-X", "B-Y", "I-Y"])
    assert start.tolist() == [True, True, False, True, False]
    # Column j lists which tags may precede tag j.
    assert transitions[:, 2].tolist() == [False, True, True, False, False]  # I-X
    assert transitions[:, 4].tolist() == [False, False, False, True, True]  # I-Y
    assert transitions[:, [0, 1, 3]].all()


def bio_emissions() -> torch.Tensor:
    """(3, 4, 5) emissions that shout for I- tags in illegal places: I-PER I-LOC I-PER I-LOC."""
    gen = torch.Generator().manual_seed(7)
    emissions = torch.randn(len(LENGTHS), 4, len(BIO), generator=gen, dtype=torch.float64)
    for t, tag in enumerate([2, 4, 2, 4]):
        emissions[:, t, tag] += 30.0
    return emissions


def test_bio_constraints_beat_strong_emissions_and_match_constrained_brute_force():
    transitions, start = bio_allowed(BIO)
    crf = make_crf(len(BIO), seed=3, allowed=transitions, start_allowed=start)
    emissions = bio_emissions()
    mask = torch.arange(4) < torch.tensor(LENGTHS).unsqueeze(1)
    free = make_crf(len(BIO), seed=3)  # same seed, same weights, no bans
    assert torch.equal(free.transitions, crf.transitions)
    # Without the bans the emissions win, so the constrained result below is not an accident.
    assert free.decode(emissions, mask)[0] == [2, 4, 2, 4]

    paths, scores = crf.decode_scores(emissions, mask)
    for b, length in enumerate(LENGTHS):
        assert legal_bio(paths[b]), [BIO[i] for i in paths[b]]
        candidates = all_paths(len(BIO), length)
        legal = candidates[[legal_bio(p) for p in candidates.tolist()]]
        brute = path_scores(crf, emissions[b, :length], legal, bans=False)
        assert paths[b] == legal[brute.argmax()].tolist()
        assert scores[b].item() == pytest.approx(brute.max().item(), abs=1e-9)

    # Training sees the same constraints: log Z sums over legal sequences only.
    gold = torch.tensor([[1, 2, 0, 3], [3, 4, -100, -100], [0, -100, -100, -100]])
    nll = crf(emissions, gold, mask, reduction="none")
    for b, length in enumerate(LENGTHS):
        candidates = all_paths(len(BIO), length)
        legal = candidates[[legal_bio(p) for p in candidates.tolist()]]
        log_z = torch.logsumexp(path_scores(crf, emissions[b, :length], legal, bans=False), 0)
        gold_score = path_scores(crf, emissions[b, :length], gold[b, :length].unsqueeze(0))[0]
        assert nll[b].item() == pytest.approx((log_z - gold_score).item(), abs=1e-9)


def test_reductions():
    crf = make_crf(3, seed=0)
    emissions, tags, mask = make_batch(3, seed=0)
    per_example = crf(emissions, tags, mask, reduction="none")
    assert crf(emissions, tags, mask, reduction="sum").item() == pytest.approx(
        per_example.sum().item()
    )
    assert crf(emissions, tags, mask).item() == pytest.approx(per_example.mean().item())
    with pytest.raises(ValueError, match="reduction"):
        crf(emissions, tags, mask, reduction="average")


def test_bf16_emissions_are_computed_in_float32():
    crf = CRF(4)
    emissions, tags, mask = make_batch(4, seed=5, dtype=torch.float32)
    low = emissions.to(torch.bfloat16)
    loss = crf(low, tags, mask)
    assert loss.dtype == torch.float32
    # Cast at entry: identical to handing over the same (rounded) values in float32 ...
    assert torch.equal(loss, crf(low.float(), tags, mask))
    assert crf.decode(low, mask) == crf.decode(low.float(), mask)
    # ... and within bf16 rounding of the full-precision result.
    assert loss.item() == pytest.approx(crf(emissions, tags, mask).item(), abs=0.05)
    # A module cast to bf16 still computes in float32.
    assert crf.to(torch.bfloat16)(low, tags, mask).dtype == torch.float32


def test_gradients_reach_every_parameter_and_only_live_emissions():
    crf = CRF(4)
    emissions, tags, mask = make_batch(4, seed=6, dtype=torch.float32)
    emissions.requires_grad_(True)
    crf(emissions, tags, mask).backward()
    for p in (crf.transitions, crf.start_transitions, crf.end_transitions):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert emissions.grad[mask].abs().sum() > 0
    assert torch.equal(emissions.grad[~mask], torch.zeros_like(emissions.grad[~mask]))


def test_bad_masks_and_shapes_raise():
    crf = CRF(3)
    emissions, tags, mask = make_batch(3, seed=0, dtype=torch.float32)
    no_first = mask.clone()
    no_first[1, 0] = False
    with pytest.raises(ValueError, match=r"mask\[:, 0\]"):
        crf(emissions, tags, no_first)
    with pytest.raises(ValueError, match=r"mask\[:, 0\]"):
        crf.decode(emissions, no_first)
    gap = mask.clone()
    gap[0, 1] = False
    with pytest.raises(ValueError, match="prefix"):
        crf(emissions, tags, gap)
    with pytest.raises(ValueError, match="emissions"):
        crf.decode(emissions[..., :2], mask)
    with pytest.raises(ValueError, match="allowed"):
        CRF(3, allowed=torch.ones(2, 2, dtype=torch.bool))


def test_decode_runs_on_a_realistic_batch():
    gen = torch.Generator().manual_seed(0)
    emissions = torch.randn(64, 128, 9, generator=gen)
    lengths = torch.randint(1, 129, (64,), generator=gen)
    mask = torch.arange(128) < lengths.unsqueeze(1)
    paths = CRF(9).decode(emissions, mask)
    assert [len(p) for p in paths] == lengths.tolist()
    assert all(0 <= tag < 9 for path in paths for tag in path)
