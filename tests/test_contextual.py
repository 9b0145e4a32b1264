import math

import pytest
import torch

from sscn.color import join_lab
from sscn.training.contextual import contextual_loss, contextual_similarity, reference_contextual_loss
from sscn.models.encoder import VGGEncoder


def test_contextual_similarity_by_hand():
    # Y = {e1, -e1, e3, -e3} has mean 0, so centring changes nothing. x1 = e1 sits on y1
    # (distances 0, 2, 1, 1), so its row is (1, 0, 0, 0); x2 = e2 is at distance 1 from
    # every y, so its row is (1/4, 1/4, 1/4, 1/4). CX = mean over y of the best x:
    # (1 + 1/4 + 1/4 + 1/4) / 4 = 7/16.
    e1, e2, e3 = torch.eye(3)
    x = torch.stack([e1, e2]).T[None]  # B x C x N
    y = torch.stack([e1, -e1, e3, -e3]).T[None]
    assert contextual_similarity(x, y).item() == pytest.approx(7 / 16, abs=1e-4)
    assert contextual_loss(x[..., None], y[..., None]).item() == pytest.approx(-math.log(7 / 16), abs=1e-4)
    # both sets are centred on Y's mean, so a shift common to both changes nothing
    assert contextual_similarity(x + 5, y + 5).item() == pytest.approx(7 / 16, abs=1e-4)


def test_contextual_loss_ignores_where_a_feature_sits():
    """A set comparison: the same features in other places score the same (an L1 would not)."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 6, 4, 4, generator=g), torch.randn(2, 6, 4, 4, generator=g)
    shuffled = x.flatten(2)[..., torch.randperm(16, generator=g)].reshape_as(x)
    torch.testing.assert_close(contextual_loss(shuffled, y), contextual_loss(x, y))
    assert contextual_loss(y, y).item() < 1e-3 < contextual_loss(x, y).item()


def test_reference_colours_score_best_and_only_ab_learns():
    torch.manual_seed(0)
    encoder = VGGEncoder(0.125, levels=6, norm="none").eval().requires_grad_(False)
    g = torch.Generator().manual_seed(1)
    gray_l = torch.rand(2, 1, 32, 32, generator=g) * 1.6 - 0.8
    ref_ab = torch.rand(2, 2, 32, 32, generator=g) * 0.6 - 0.3
    ref_lab = join_lab(gray_l, ref_ab)
    own = reference_contextual_loss(encoder, gray_l, ref_ab, ref_lab)
    other = reference_contextual_loss(encoder, gray_l, -ref_ab, ref_lab)
    assert own.item() < 1e-3 < other.item()
    ab = (-ref_ab).requires_grad_(True)
    reference_contextual_loss(encoder, gray_l, ab, ref_lab).backward()
    assert ab.grad is not None and torch.isfinite(ab.grad).all() and ab.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())
