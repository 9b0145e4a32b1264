"""The semantic encoder: the pre-stage learns, the CAM reads the encoder, the CAM points at the evidence."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from sscn.models.checkpoint import load_model
from sscn.errors import SSCNError
from sscn.models import SSCN, SSCNConfig
from sscn.models.attention import select_tokens
from sscn.models.cam import CAMClassifier
from sscn.training.config import PretrainConfig
from sscn.training.pretrain import augment, lr_at, pretrain
from sscn.models.pretrained import load_pretrained_encoder


def _striped_folder(root, per_class):
    """Three classes that differ by pattern, not by colour: horizontal, vertical and diagonal stripes."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:40]
    patterns = [(yy // 4) % 2, (xx // 4) % 2, ((xx + yy) // 4) % 2]
    for split, count in (("train", per_class), ("val", 6)):
        for label, pattern in enumerate(patterns):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                hue = rng.uniform(40, 215, size=3)
                image = pattern[..., None] * hue + (1 - pattern[..., None]) * (255 - hue)
                image = np.roll(image, rng.integers(0, 8, size=2), axis=(0, 1))
                image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
                Image.fromarray(image).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module", params=["auto", "bf16"], ids=["auto", "bf16-forced"])
def pretrained(tmp_path_factory, request):
    """A pre-stage trained on the stripes, in the precision ``auto`` picks and in bf16 forced
    (the module-wide twin of the ``auto_and_forced_bf16`` fixture)."""
    # 32 a class: learnt to 94-100 % in float32 and bf16 alike (16 a class left 50-61 %, too close to chance)
    root = _striped_folder(tmp_path_factory.mktemp("stripes"), per_class=32)
    out = tmp_path_factory.mktemp("pretrain")
    cfg = PretrainConfig(data_dir=str(root), out_dir=str(out), width=0.125, image_size=32, crop=32, batch_size=12,
                         epochs=10, lr=3e-3, warmup_epochs=1, val_every=10, precision=request.param)
    return cfg, pretrain(cfg, progress=False)


def test_pretrain_learns(pretrained):
    cfg, summary = pretrained
    history = [json.loads(line) for line in (open(f"{cfg.out_dir}/metrics.jsonl"))]
    assert history[-1]["loss"] < history[0]["loss"]
    # three classes: chance is 1/3; the patterns are there in gray and in colour
    assert summary["val_gray_top1"] > 0.6
    assert summary["val_colour_top1"] > 0.6


def test_sscn_starts_from_the_pretrained_encoder(pretrained):
    cfg, _ = pretrained
    model = SSCN(SSCNConfig(width=0.125, num_classes=3, k=4, r=4))
    load_pretrained_encoder(model, f"{cfg.out_dir}/last.pt", ["class0", "class1", "class2"])
    state = torch.load(f"{cfg.out_dir}/last.pt", weights_only=True)["model"]
    assert torch.equal(model.encoder.features[0].weight, state["encoder.features.0.weight"])
    # GCT's gray encoder starts from the first four levels of the same weights
    assert torch.equal(model.gct.encoder.features[0].weight, state["encoder.features.0.weight"])
    assert torch.equal(model.cam.fc.weight, state["fc5.weight"])
    with pytest.raises(SSCNError, match="other classes"):
        load_pretrained_encoder(model, f"{cfg.out_dir}/last.pt", ["a", "b", "c"])
    with pytest.raises(SSCNError, match="width"):
        load_pretrained_encoder(SSCN(SSCNConfig(width=0.25, num_classes=3)), f"{cfg.out_dir}/last.pt")


def test_frozen_encoder_keeps_the_pre_stage_and_the_rest_learns(pretrained, tmp_path):
    from sscn.training.config import TrainConfig
    from sscn.training.train import train

    cfg, _ = pretrained
    run = TrainConfig(data_dir=cfg.data_dir, out_dir=str(tmp_path), image_size=32, width=0.125, batch_size=6, k=4, r=4,
                      steps=3, lr=1e-3, num_workers=0, val_images=4, val_every=3, log_every=1, ckpt_every=1000,
                      encoder_from=f"{cfg.out_dir}/last.pt", freeze_encoder=True)
    train(run, progress=False)
    start = torch.load(f"{cfg.out_dir}/last.pt", weights_only=True)["model"]
    trained = torch.load(tmp_path / "last.pt", weights_only=True)["model"]
    # weights and batch-norm statistics alike: the encoder ran in eval mode
    encoder = {k: v for k, v in start.items() if k.startswith("encoder.")}
    assert any("running_mean" in k for k in encoder)
    for key, value in encoder.items():
        assert torch.equal(trained[key], value), key
        if f"gct.{key}" in trained:  # GCT's gray encoder holds the first four levels
            assert torch.equal(trained[f"gct.{key}"], value), key
    assert not torch.equal(trained["cam.fc.weight"], start["fc5.weight"])  # the CAM head still learns
    fresh = SSCN(SSCNConfig(width=0.125, num_classes=3, k=4, r=4)).state_dict()
    assert any(not torch.equal(trained[k], fresh[k]) for k in fresh if k.startswith("ldt."))
    with pytest.raises(SSCNError, match="freeze_encoder"):
        TrainConfig(freeze_encoder=True).validate()


@pytest.mark.usefixtures("auto_and_forced_bf16")  # numbers that depend on the training precision
def test_pretrain_resumes_where_it_stopped(tmp_path):
    root = _striped_folder(tmp_path / "data", per_class=4)
    common = dict(data_dir=str(root), width=0.125, image_size=32, crop=32, batch_size=6, lr=1e-3)
    whole = pretrain(PretrainConfig(out_dir=str(tmp_path / "a"), epochs=2, **common), progress=False)
    pretrain(PretrainConfig(out_dir=str(tmp_path / "b"), epochs=2, time_limit_min=1e-9, **common), progress=False)
    resumed = pretrain(PretrainConfig(out_dir=str(tmp_path / "b"), epochs=2, **common), progress=False)
    assert resumed["steps"] == whole["steps"]
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)


def test_cam_head_reads_the_encoder_not_a_detached_copy():
    """The classifier's cross-entropy must reach the reference encoder (paper: F_Ir feeds the classifier)."""
    torch.manual_seed(0)
    model = SSCN(SSCNConfig(width=0.125, num_classes=4, k=4, r=4))
    gray_l = torch.rand(2, 1, 64, 64) * 2 - 1
    ref_lab = (torch.rand(2, 3, 64, 64) * 2 - 1) * 0.5
    out = model(gray_l, ref_lab, torch.tensor([0, 2]))
    torch.nn.functional.cross_entropy(out.class_logits, torch.tensor([0, 2])).backward()
    level5_conv = [m for m in model.encoder.features if isinstance(m, torch.nn.Conv2d)][12]
    assert level5_conv.weight.grad is not None and level5_conv.weight.grad.abs().sum() > 0
    # the style vector reads level 6 and the CAM level 5, as in the paper
    assert (model.config.style_level, model.config.cam_level) == (6, 5)


def test_cam_top_k_lands_on_the_class_evidence():
    """A level-5 map whose 'class 1' channel fires in one corner: the top-k tokens sit in that corner."""
    cam_head = CAMClassifier(in_channels=4, num_classes=2)
    with torch.no_grad():
        cam_head.fc.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
        cam_head.fc.bias.zero_()
    feats = torch.rand(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.1
    feats[0, 1, :3, 5:] += 2.0  # evidence for class 1 in the top-right corner
    logits, cam = cam_head(feats, (16, 16))
    assert logits.argmax(1).item() == 1
    chosen = select_tokens(cam, k=16, r=0, generator=torch.Generator().manual_seed(0))[0]
    rows, cols = chosen // 16, chosen % 16
    assert bool((rows < 6).all() and (cols >= 10).all()), (rows.tolist(), cols.tolist())


def test_augment_and_schedule():
    images = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)
    out = augment(images, 32, 1.0, torch.Generator().manual_seed(0))
    assert out.shape == (4, 3, 32, 32) and 0 <= out.min() and out.max() <= 1
    assert torch.equal(out[:, 0], out[:, 1])  # gray_share 1: every photo is gray
    assert lr_at(0, 100, 10, 1.0) == pytest.approx(0.1)
    assert lr_at(10, 100, 10, 1.0) == pytest.approx(1.0)
    assert lr_at(100, 100, 10, 1.0) == pytest.approx(0.0)


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(SSCNError, match="crop"):
        PretrainConfig(data_dir=str(tmp_path), crop=500).validate()
    (tmp_path / "photos").mkdir()
    with pytest.raises(SSCNError, match="train/ and val/"):
        pretrain(PretrainConfig(data_dir=str(tmp_path / "photos"), out_dir=str(tmp_path / "o")), progress=False)
    with pytest.raises(SSCNError, match="inside"):  # a run's files would become a class of the data
        pretrain(PretrainConfig(data_dir=str(tmp_path / "photos"), out_dir=str(tmp_path / "photos" / "o")), progress=False)


def test_semantics_measures_agree_with_the_evaluation():
    from sscn.scores import psnr
    from sscn.evaluation.semantics import masked_psnr, top_quarter

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    assert torch.allclose(masked_psnr(a, b, torch.ones(2, 16, 16, dtype=torch.bool)).double(), psnr(a, b).double(), atol=1e-4)
    cam = torch.arange(2 * 256, dtype=torch.float32).reshape(2, 16, 16)
    mask = top_quarter(cam)
    assert mask.sum().item() == 2 * 64 and bool(mask[:, -4:].all())
    # errors only outside the mask leave the masked PSNR infinite-like (very high)
    b = a.clone()
    b[:, :, :4] = 1 - b[:, :, :4]
    assert (masked_psnr(a, b, mask) > 90).all() and (psnr(a, b) < 20).all()


def test_the_bundled_pre_stage_loads_into_an_sscn():
    model = SSCN(SSCNConfig(width=0.25, num_classes=10))
    load_pretrained_encoder(model, "bundled")
    from sscn.models.pretrained import BUNDLED_PRETRAIN

    shipped = torch.load(BUNDLED_PRETRAIN, weights_only=True)["model"]
    assert torch.equal(model.cam.fc.weight, shipped["fc5.weight"].float())  # stored in float16, loaded as float32
    assert model.cam.fc.weight.dtype == torch.float32


def test_cam_panels_of_both_classifiers():
    import types

    import matplotlib

    matplotlib.use("Agg")
    from sscn.color import rgb_to_lab_norm
    from sscn.io.data import sample_photos
    from sscn.models.pretrained import pretrained_classifier
    from sscn.apps.semantics import cam_figure
    from sscn.evaluation.semantics import cam_panels, one_per_class

    judge, classes = pretrained_classifier("bundled")
    assert not judge.training and len(classes) == 10
    model = load_model(None)
    photos = torch.stack([rgb for _, rgb in sample_photos(size=64)][:3])
    labels = torch.tensor([0, 1, 2])
    with torch.no_grad():
        ours, pre = cam_panels(model, judge, classes, photos, labels, k=8)
        lab = rgb_to_lab_norm(photos)
        expected = model(lab[:, :1], lab, coarse_only=True)
        judge_logits = judge(photos)[0]
    assert torch.equal(ours["predicted"], expected.class_logits.argmax(1))
    torch.testing.assert_close(ours["cam"].flatten(1), expected.cam)
    assert torch.equal(pre["predicted"], judge_logits.argmax(1))
    for panel in (ours, pre):
        assert panel["cam"].shape == (3, 16, 16) and float(panel["cam"].amax()) == 1.0
        assert torch.equal(panel["topk"], panel["cam"].flatten(1).topk(8, dim=1).indices)
        assert torch.equal(panel["correct"], panel["predicted"] == labels)
    assert len(cam_figure([ours, pre], photos, classes, 8).axes) == 6
    folder = types.SimpleNamespace(labels=[0, 0, 1, 1, 1, 2, 3])
    assert one_per_class(folder, 4) == [0, 2, 5, 6] and one_per_class(folder, 2) == [0, 5]
