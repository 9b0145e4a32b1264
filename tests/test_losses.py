"""The five losses and their weighted sum (sscn.training.losses), each against a hand computation."""
import math
from types import SimpleNamespace

import pytest
import torch

from sscn.bins import default_bins
from sscn.training.losses import LossWeights, histogram_loss, smooth_l1, sscn_loss, total_variation

BETA = 1 / 110  # one ab unit in the normalised scale


def huber(x: float, beta: float = BETA) -> float:
    return 0.5 * x * x / beta if abs(x) < beta else abs(x) - 0.5 * beta


def test_smooth_l1_by_hand():
    # errors of 0, 0.5 and 2 ab units (quadratic part) and of 11 and 55 ab units (linear part)
    pred = torch.tensor([0.0, 0.5, -2.0, 11.0, 55.0, 0.0]).div(110).view(1, 2, 1, 3)
    true = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0]).view(1, 2, 1, 3)
    errors = (pred - true).flatten().tolist()
    expected = sum(huber(e) for e in errors) / len(errors)
    assert smooth_l1(pred, true).item() == pytest.approx(expected, rel=1e-6)
    # the two branches meet at one ab unit
    assert huber(BETA * (1 - 1e-9)) == pytest.approx(huber(BETA * (1 + 1e-9)))
    assert huber(BETA) == pytest.approx(0.5 * BETA)


def test_smooth_l1_grows_linearly_for_large_errors():
    true = torch.zeros(1, 2, 1, 1)
    small, large = (smooth_l1(torch.full_like(true, e / 110), true).item() for e in (20, 40))
    assert large - small == pytest.approx(20 / 110, rel=1e-5)


def soft_encoding_by_hand(a: float, b: float, sigma: float = 5.0, neighbours: int = 10) -> dict:
    """{(a, b) of a grid-10 centre: weight}: a Gaussian over the 10 nearest centres, normalised."""
    grid = [(10 * i, 10 * j) for i in range(-12, 13) for j in range(-12, 13)]
    nearest = sorted(grid, key=lambda c: math.dist((a, b), c))[:neighbours]
    raw = {c: math.exp(-math.dist((a, b), c) ** 2 / (2 * sigma**2)) for c in nearest}
    total = sum(raw.values())
    return {c: w / total for c, w in raw.items()}


def test_histogram_loss_by_hand():
    bins = default_bins()
    index = {tuple(c): q for q, c in enumerate(bins.centers.tolist())}
    # two pixels whose 10 nearest grid centres are all in gamut, with no tie at the 10th
    pixels = [(-27.0, 12.0), (33.0, -18.0)]
    true_ab = torch.tensor(pixels).T.reshape(1, 2, 1, 2) / 110
    logits = torch.randn(1, bins.num_bins, 1, 2, generator=torch.Generator().manual_seed(0))

    expected = 0.0
    for p, (a, b) in enumerate(pixels):
        target = soft_encoding_by_hand(a, b)
        assert all(center in index for center in target)
        assert sum(target.values()) == pytest.approx(1.0)
        column = logits[0, :, 0, p].tolist()
        log_norm = math.log(sum(math.exp(v) for v in column))
        expected += -sum(w * (column[index[c]] - log_norm) for c, w in target.items())
    expected /= len(pixels)
    assert histogram_loss(logits, true_ab, bins).item() == pytest.approx(expected, rel=1e-5)

    # the same target through the package's encoder
    encoded = bins.encode(true_ab)
    for p, (a, b) in enumerate(pixels):
        for center, weight in soft_encoding_by_hand(a, b).items():
            assert encoded[0, index[center], 0, p].item() == pytest.approx(weight, abs=1e-6)


def test_histogram_loss_is_smallest_at_the_target():
    """Cross-entropy >= the target's entropy, with equality when the prediction is the target."""
    bins = default_bins()
    true_ab = torch.tensor([[-27.0, 33.0], [12.0, -18.0]]).reshape(1, 2, 1, 2) / 110
    target = bins.encode(true_ab)
    entropy = -(target * target.clamp_min(1e-30).log()).sum(1).mean()
    at_target = histogram_loss(target.clamp_min(1e-30).log(), true_ab, bins)
    uniform = histogram_loss(torch.zeros_like(target), true_ab, bins)
    assert at_target.item() == pytest.approx(entropy.item(), rel=1e-5)
    assert uniform.item() == pytest.approx(math.log(bins.num_bins), rel=1e-5)
    assert entropy < uniform


def test_histogram_loss_averages_ab_down_to_the_logits_size():
    bins = default_bins()
    true_ab = torch.randn(1, 2, 4, 4, generator=torch.Generator().manual_seed(1)) * 0.2
    logits = torch.randn(1, bins.num_bins, 2, 2, generator=torch.Generator().manual_seed(2))
    pooled = true_ab.reshape(1, 2, 2, 2, 2, 2).mean((3, 5))  # each 2 x 2 block's mean ab
    expected = -(bins.encode(pooled) * logits.log_softmax(1)).sum(1).mean()
    assert torch.allclose(histogram_loss(logits, true_ab, bins), expected, rtol=1e-5)


def test_total_variation_by_hand():
    ab = torch.tensor([[[1.0, 2.0, 4.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 3.0]]]).view(1, 2, 2, 3)
    # vertical neighbours: |0-1|, |0-2|, |0-4| and 0, 0, |3-0| -> 10 / 6
    # horizontal neighbours: |2-1|, |4-2|, 0, 0 and 0, 0, 0, |3-0| -> 6 / 8
    assert total_variation(ab).item() == pytest.approx(10 / 6 + 6 / 8)
    assert total_variation(torch.full((2, 2, 5, 5), 0.3)).item() == 0.0


def test_paper_weights():
    assert LossWeights() == LossWeights(coarse=100.0, fine=100.0, cls=0.1, hist=1.0, tv=10.0)


def test_weighted_total_by_hand():
    bins = default_bins()
    g = torch.Generator().manual_seed(3)
    true_ab = torch.rand(2, 2, 8, 8, generator=g) * 0.6 - 0.3
    output = SimpleNamespace(
        ab_coarse=true_ab + 0.05 * torch.randn(2, 2, 8, 8, generator=g),
        ab_fine=true_ab + 0.01 * torch.randn(2, 2, 8, 8, generator=g),
        hist_logits=torch.randn(2, bins.num_bins, 2, 2, generator=g),
        class_logits=torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]]),
    )
    labels = torch.tensor([0, 2])
    total, terms = sscn_loss(output, true_ab, labels)

    # cross-entropy of the class logits, by hand
    ce = [-(2.0 - math.log(math.exp(2.0) + math.exp(0.5) + math.exp(-1.0))),
          -(0.0 - math.log(2 + math.exp(1.0)))]
    assert terms["cls"].item() == pytest.approx(sum(ce) / 2, rel=1e-6)
    assert terms["coarse"].item() == pytest.approx(smooth_l1(output.ab_coarse, true_ab).item())
    assert terms["fine"].item() == pytest.approx(smooth_l1(output.ab_fine, true_ab).item())
    assert terms["hist"].item() == pytest.approx(histogram_loss(output.hist_logits, true_ab).item())
    assert terms["tv"].item() == pytest.approx(total_variation(output.ab_fine).item())

    by_hand = (100 * terms["coarse"] + 100 * terms["fine"] + 0.1 * terms["cls"] + 1 * terms["hist"]
               + 10 * terms["tv"])
    assert total.item() == pytest.approx(by_hand.item(), rel=1e-6)

    custom = LossWeights(coarse=1, fine=2, cls=3, hist=4, tv=5)
    total2, _ = sscn_loss(output, true_ab, labels, custom)
    expected = sum(w * terms[k] for k, w in zip(("coarse", "fine", "cls", "hist", "tv"), (1, 2, 3, 4, 5)))
    assert total2.item() == pytest.approx(expected.item(), rel=1e-6)


def test_losses_backpropagate_to_every_output():
    bins = default_bins()
    true_ab = torch.zeros(1, 2, 8, 8)
    output = SimpleNamespace(
        ab_coarse=torch.full((1, 2, 8, 8), 0.1, requires_grad=True),
        ab_fine=torch.rand(1, 2, 8, 8, requires_grad=True),
        hist_logits=torch.zeros(1, bins.num_bins, 2, 2, requires_grad=True),
        class_logits=torch.zeros(1, 4, requires_grad=True),
    )
    total, _ = sscn_loss(output, true_ab, torch.tensor([1]))
    total.backward()
    for name in ("ab_coarse", "ab_fine", "hist_logits", "class_logits"):
        grad = getattr(output, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_colour_weight_leaves_images_out_of_the_colour_terms():
    """Weights 1 give the plain loss; weight 0 drops an image from coarse, fine and histogram
    (not from the class and TV terms), and the kept image counts as in a plain batch."""
    bins = default_bins()
    g = torch.Generator().manual_seed(0)
    true_ab = torch.rand(2, 2, 8, 8, generator=g) * 0.4 - 0.2

    def output():
        return SimpleNamespace(ab_coarse=torch.rand(2, 2, 8, 8, generator=g).requires_grad_(True),
                               ab_fine=torch.rand(2, 2, 8, 8, generator=g).requires_grad_(True),
                               hist_logits=torch.randn(2, bins.num_bins, 2, 2, generator=g).requires_grad_(True),
                               class_logits=torch.randn(2, 4, generator=g))

    out, labels = output(), torch.tensor([1, 2])
    plain = sscn_loss(out, true_ab, labels)[1]
    ones = sscn_loss(out, true_ab, labels, colour_weight=torch.ones(2))[1]
    for name in plain:
        torch.testing.assert_close(ones[name], plain[name])
    first, terms = sscn_loss(out, true_ab, labels, colour_weight=torch.tensor([1.0, 0.0]))
    alone = SimpleNamespace(**{k: v[:1] for k, v in vars(out).items()})
    alone_terms = sscn_loss(alone, true_ab[:1], labels[:1])[1]
    for name in ("coarse", "fine", "hist"):
        torch.testing.assert_close(terms[name], alone_terms[name] / 2)
    for name in ("cls", "tv"):
        torch.testing.assert_close(terms[name], plain[name])
    first.backward()
    assert out.ab_coarse.grad[1].abs().sum() == 0 and out.hist_logits.grad[1].abs().sum() == 0
    assert out.ab_coarse.grad[0].abs().sum() > 0
