"""The network's parts: shapes, gradients, sparse == dense at full selection, token choice, AdaIN."""
import pytest
import torch

from sscn.errors import SSCNError
from sscn.models import SSCN, SSCNConfig
from sscn.models.adain import adain
from sscn.models.attention import Correspondence, select_tokens
from sscn.models.encoder import VGGEncoder


def tiny(**kw):
    torch.manual_seed(0)
    return SSCN(SSCNConfig(width=0.125, num_classes=5, k=8, r=8, **kw))


def inputs(b=2, h=64, w=64):
    g = torch.Generator().manual_seed(1)
    return torch.rand(b, 1, h, w, generator=g) * 2 - 1, (torch.rand(b, 3, h, w, generator=g) * 2 - 1) * 0.5


@pytest.mark.parametrize("h,w", [(64, 64), (48, 96), (96, 32)])
def test_output_shapes(h, w):
    model = tiny()
    gray_l, ref_lab = inputs(2, h, w)
    out = model(gray_l, ref_lab, return_attention=True)
    n = (h // 4) * (w // 4)
    assert out.ab_coarse.shape == out.ab_fine.shape == (2, 2, h, w)
    assert out.hist_logits.shape == (2, model.config.num_bins, h // 4, w // 4)
    assert out.class_logits.shape == (2, 5)
    assert out.cam.shape == (2, n)
    assert out.indices.shape == (2, 16)
    assert out.attention.shape == (2, n, 16)
    assert torch.allclose(out.attention.sum(-1), torch.ones(2, n), atol=1e-5)


def test_reference_of_another_size_is_resized():
    model = tiny()
    gray_l, _ = inputs(1, 64, 64)
    out = model(gray_l, torch.zeros(1, 3, 80, 48))
    assert out.ab_fine.shape == (1, 2, 64, 64)


@pytest.mark.parametrize("h,w", [(60, 64), (64, 40), (16, 16)])
def test_sizes_not_multiple_of_16_are_a_clear_error(h, w):
    with pytest.raises(SSCNError, match="multiple of 16"):
        tiny()(torch.zeros(1, 1, h, w), torch.zeros(1, 3, h, w))


@pytest.mark.parametrize("dense", [False, True])
def test_gradients_reach_every_parameter(dense):
    model = tiny(dense=dense)
    gray_l, ref_lab = inputs()
    out = model(gray_l, ref_lab, labels=torch.tensor([0, 3]))
    loss = sum(t.float().pow(2).mean() for t in (out.ab_coarse, out.ab_fine, out.hist_logits, out.class_logits))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []


def test_sparse_with_every_token_equals_dense():
    model = tiny().eval()
    gray_l, ref_lab = inputs(2, 64, 48)
    n = 16 * 12
    with torch.no_grad():
        dense = model(gray_l, ref_lab, dense=True)
        sparse = model(gray_l, ref_lab, dense=False, k=n // 2, r=n - n // 2, seed=3)
        capped = model(gray_l, ref_lab, dense=False, k=n, r=n, seed=3)  # k + r > N is capped
    assert torch.allclose(sparse.ab_fine, dense.ab_fine, atol=1e-5)
    assert torch.allclose(capped.ab_fine, dense.ab_fine, atol=1e-5)


def test_selected_tokens_are_topk_plus_distinct_random():
    cam = torch.rand(3, 100, generator=torch.Generator().manual_seed(0))
    idx = select_tokens(cam, k=10, r=20, generator=torch.Generator().manual_seed(1))
    assert idx.shape == (3, 30)
    for b in range(3):
        top = set(cam[b].topk(10).indices.tolist())
        assert set(idx[b, :10].tolist()) == top
        assert len(set(idx[b].tolist())) == 30  # distinct, random ones not among the top-k
    again = select_tokens(cam, 10, 20, torch.Generator().manual_seed(1))
    other = select_tokens(cam, 10, 20, torch.Generator().manual_seed(2))
    assert torch.equal(idx, again) and not torch.equal(idx, other)


@pytest.mark.parametrize("k,r", [(-1, 4), (4, -2), (0, 0)])
def test_bad_k_r_are_clear_errors(k, r):
    with pytest.raises(SSCNError, match="k"):
        select_tokens(torch.rand(1, 10), k, r)


def test_chunked_attention_matches_unchunked():
    torch.manual_seed(0)
    att = Correspondence(12, 8, 6)
    q, k, ab = torch.randn(2, 50, 12), torch.randn(2, 40, 12), torch.randn(2, 40, 2)
    idx = select_tokens(torch.rand(2, 40), 5, 10, torch.Generator().manual_seed(0))
    full, _ = att(q, k, ab, idx, chunk_size=4096)
    chunked, _ = att(q, k, ab, idx, chunk_size=7)
    assert torch.allclose(full, chunked, atol=1e-6)


def test_adain_gives_the_style_mean_and_std():
    x = torch.randn(2, 5, 16, 16) * 3 + 1
    scale, bias = torch.rand(2, 5) + 0.5, torch.randn(2, 5)
    y = adain(x, scale, bias)
    assert torch.allclose(y.mean(dim=(2, 3)), bias, atol=1e-5)
    assert torch.allclose(y.std(dim=(2, 3), unbiased=False), scale, atol=1e-3)


def test_encoder_loads_torchvision_vgg19_state_dict(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    vgg = torchvision.models.vgg19(weights=None)
    path = tmp_path / "vgg19.pt"
    torch.save(vgg.state_dict(), path)
    enc = VGGEncoder(width=1.0)
    enc.load_vgg19(path)
    x = torch.rand(1, 3, 32, 32)
    feats = enc(x)
    expected = vgg.features[:30]((x - enc.mean) / enc.std)
    assert torch.allclose(feats[4], expected, atol=1e-5)
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 512]


def test_encoder_rejects_weights_at_other_widths(tmp_path):
    with pytest.raises(SSCNError, match="width"):
        VGGEncoder(width=0.5).load_vgg19(tmp_path / "none.pt")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_forward_on_cuda():
    model = tiny().cuda()
    gray_l, ref_lab = inputs()
    out = model(gray_l.cuda(), ref_lab.cuda())
    assert out.ab_fine.is_cuda
