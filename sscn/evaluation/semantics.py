"""Does the CAM earn its tokens? The measurements of the semantic-encoder issue.

For a checkpoint and a folder of labelled photos (``imagenette-144/val``), with a seeded
TPS reference per photo (``ImageFolder(reference="tps", seed)``, seeds ``item_seed``: the
evaluation table's kind of reference, another draw than ``sscn evaluate``'s
``cases.reference_seed``):

- **CAM top-1**: the share of photos whose reference the network's own CAM classifier
  assigns to the right class (inference ranks tokens by the *predicted* class's CAM);
- **object region**: the top quarter of the ground truth's class activation map (true
  class) under an independent judge, the pre-stage classifier (``sscn pretrain``);
- **k top-CAM + r random against k + r random tokens** (same seeds, same token count):
  PSNR on the object region and on the whole image. If the CAM finds what matters,
  the first scores at least as high on the object region (paper, Sec. 3.2 and Fig. 8).

    python -m sscn.apps.semantics --checkpoint CKPT --data DATA/imagenette-144/val --size 128
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..color import join_lab, lab_norm_to_rgb
from ..models.attention import select_tokens
from ..models.cam import CAMClassifier, class_activation_map


def class_activation(encoder, head: torch.nn.Linear, rgb: torch.Tensor, labels: torch.Tensor, level: int = 5) -> torch.Tensor:
    """CAM of class ``labels`` (Zhou et al. 2016): ``sum_c w_{y,c} F_level,c``, upsampled to the photo: ``B x H x W``."""
    return class_activation_map(head, encoder(rgb, levels=level)[level - 1], labels, rgb.shape[-2:])


def top_quarter(cam: torch.Tensor) -> torch.Tensor:
    """``B x H x W`` bool: the pixels at or above each map's 75th percentile."""
    threshold = cam.flatten(1).quantile(0.75, dim=1)
    return cam >= threshold[:, None, None]


def masked_psnr(pred: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) of 8-bit RGB over the pixels of ``mask`` (``B x H x W``), one value per image."""
    a, b = (x.clamp(0, 1).mul(255).round() for x in (pred, truth))
    err = ((a - b) ** 2).mean(1)  # B x H x W
    mse = (err * mask).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1)
    return 10 * torch.log10(255.0 ** 2 / mse.clamp(min=1e-10))


@torch.no_grad()
def measure(model, judge, folder, k: int = 64, r: int = 64, batch_size: int = 16, seed: int = 0,
            progress: bool = True) -> dict:
    """The issue's numbers for ``model`` (an SSCN in eval mode) on ``folder`` (an ImageFolder with TPS references).

    ``judge``: a pre-stage ``EncoderClassifier`` whose level-5 CAM of the true class marks the object.
    """
    model.eval()
    judge.eval()
    hits, n = 0, 0
    scores = {"semantic_object": [], "random_object": [], "semantic_image": [], "random_image": []}
    loader = DataLoader(folder, batch_size=batch_size, num_workers=0)
    for batch in tqdm(loader, desc="semantics", disable=not progress, leave=False):
        gray_l, ref_lab, labels, rgb = batch["gray_l"], batch["ref_lab"], batch["label"], batch["rgb"]
        prepared = model.prepare(gray_l, ref_lab)
        hits += int((prepared.class_logits.argmax(1) == labels).sum())
        n += len(labels)
        mask = top_quarter(class_activation(judge.encoder, judge.fc5, rgb, labels))
        for name, (kk, rr) in (("semantic", (k, r)), ("random", (0, k + r))):
            indices = select_tokens(prepared.cam, kk, rr, torch.Generator().manual_seed(seed))
            ab_fine, _, _ = model.fine(prepared, indices)
            pred = lab_norm_to_rgb(join_lab(gray_l, ab_fine.float()))
            scores[f"{name}_object"].append(masked_psnr(pred, rgb, mask))
            scores[f"{name}_image"].append(masked_psnr(pred, rgb, torch.ones_like(mask)))
    means = {key: float(torch.cat(values).mean()) for key, values in scores.items()}
    return {"images": n, "cam_top1": hits / max(1, n), "k": k, "r": r, **means,
            "object_gain_db": means["semantic_object"] - means["random_object"],
            "image_gain_db": means["semantic_image"] - means["random_image"]}


@torch.no_grad()
def cam_panels(model, judge, classes: list[str], photos: torch.Tensor, labels: torch.Tensor | None, k: int = 64) -> list[dict]:
    """For each photo (``B x 3 x H x W`` sRGB): the predicted class, its CAM and top-k tokens under two
    classifiers, the SSCN's own (``model``, through Lab as inference does) and the pre-stage's (``judge``).

    Returns one dict per classifier: ``name``, ``predicted`` (``B``), ``cam`` (``B x H/4 x W/4``
    in [0, 1]), ``topk`` (``B x k`` token indices), ``correct`` (``B`` bool, or None without ``labels``).
    """
    from ..color import rgb_to_lab_norm

    hw = (photos.shape[-2] // 4, photos.shape[-1] // 4)
    prepared = model.eval().prepare(rgb_to_lab_norm(photos)[:, :1], rgb_to_lab_norm(photos), coarse_only=True)
    rows = [("the SSCN's own classifier", prepared.class_logits.argmax(1), prepared.cam)]
    feats5 = judge.eval().encoder(photos, levels=5)[4]
    head = CAMClassifier(feats5.shape[1], judge.fc5.out_features)
    head.fc = judge.fc5  # the pre-stage's level-5 head, scored and mapped as the SSCN's own
    logits, cam = head(feats5, hw)
    rows.append(("the pre-stage classifier", logits.argmax(1), cam))
    return [{"name": name, "predicted": pred, "cam": c.reshape(-1, *hw), "topk": c.topk(k, dim=1).indices,
             "correct": None if labels is None else pred == labels} for name, pred, c in rows]


def one_per_class(folder, count: int) -> list[int]:
    """Indices of the first photo of ``count`` classes spread over the folder's classes."""
    first = {}
    for index, label in enumerate(folder.labels):
        first.setdefault(label, index)
    classes = sorted(first)
    step = max(1, len(classes) // count)
    return [first[c] for c in classes[::step][:count]]
