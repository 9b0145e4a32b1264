"""The whole Semantic-Sparse Colorization Network (paper, Fig. 2).

``I_r -> E -> F_Ir``; GCT paints the gray target with the reference's global style
(coarse ``I_c``); ``E(I_c)`` and ``F_Ir`` give tokens at ``H/4 x W/4``; the CAM picks
the semantic-sparse reference tokens; the correspondence warps the reference's
features and colours onto the target; LDT decodes the fine ab.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..bins import default_bins
from ..color import join_lab, lab_norm_to_rgb
from ..errors import SSCNError
from .attention import Correspondence, select_tokens
from .cam import CAMClassifier
from .encoder import VGGEncoder, scaled
from .gct import GlobalColorTransfer
from .ldt import LDTDecoder, resize

MULTIPLE = 16  # five VGG levels: the working size must divide by 2^4
# the first network's layout: one level (relu5_1) for style and CAM, no normalisation
LEGACY = {"encoder_norm": "none", "style_level": 5, "cam_level": 5}


@dataclass
class SSCNConfig:
    """Everything that fixes the network's shape and its attention.

    ``k``, ``r``: top-k CAM tokens and random tokens (paper: 256 + 256 of 4096 at 256 px).
    ``similarity``: ``"cosine"`` (learned temperature, default) or ``"dot"`` (Formula 2 as printed).
    ``encoder_norm``: ``"batch"`` (batch norm after every conv of the encoders) or ``"none"``.
    ``style_level``, ``cam_level``: the reference level (1-based) that the GCT's style MLP and
    the CAM classifier read; the paper reads the style from the last (6) and the CAM from the
    fifth. Checkpoints written before these fields existed read as ``LEGACY``.
    """

    width: float = 0.25
    num_classes: int = 10
    k: int = 64
    r: int = 64
    dense: bool = False
    similarity: str = "cosine"
    temperature: float = 0.02
    attn_dim: int = 64
    value_dim: int = 32
    num_bins: int = field(default_factory=lambda: default_bins().num_bins)
    chunk_size: int = 4096
    encoder_norm: str = "batch"
    style_level: int = 6
    cam_level: int = 5

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SSCNOutput:
    """Shapes for a ``B x 1 x H x W`` target (N = H/4 * W/4 tokens, S selected tokens)."""

    ab_coarse: torch.Tensor  # B x 2 x H x W, normalised ab
    ab_fine: torch.Tensor  # B x 2 x H x W
    hist_logits: torch.Tensor  # B x Q x H/4 x W/4
    class_logits: torch.Tensor  # B x num_classes
    cam: torch.Tensor  # B x N in [0, 1]
    attention: torch.Tensor | None = None  # B x N x S
    indices: torch.Tensor | None = None  # B x S (None when dense)


@dataclass
class Prepared:
    """What a (target, reference) pair gives before any token is selected.

    ``gray_l`` ``B x 1 x H x W``; ``ref_lab`` ``B x 3 x H x W`` (resized to the target);
    ``ab_coarse`` ``B x 2 x H x W``; ``cam`` ``B x N`` in [0, 1]; ``token_hw`` = (H/4, W/4),
    N = H/4 * W/4; then (not for the coarse stage alone) ``coarse_feats`` = E(I_c), the
    tokens ``query``, ``key`` ``B x N x d`` and the reference's ``ref_ab`` ``B x N x 2``.
    """

    gray_l: torch.Tensor
    ref_lab: torch.Tensor
    ab_coarse: torch.Tensor
    class_logits: torch.Tensor
    cam: torch.Tensor
    token_hw: tuple[int, int]
    coarse_feats: list[torch.Tensor] | None = None
    query: torch.Tensor | None = None
    key: torch.Tensor | None = None
    ref_ab: torch.Tensor | None = None

    @property
    def num_tokens(self) -> int:
        return self.token_hw[0] * self.token_hw[1]


def check_size(height: int, width: int) -> None:
    if height % MULTIPLE or width % MULTIPLE or min(height, width) < 2 * MULTIPLE:
        raise SSCNError(
            f"the network's input must be at least {2 * MULTIPLE} px and a multiple of {MULTIPLE} "
            f"on each side (got {height} x {width}); resize it (sscn colorize does this for you)"
        )


def check_levels(config: SSCNConfig) -> None:
    for name in ("style_level", "cam_level"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 4 <= value <= 6:
            raise SSCNError(f"{name} must be 4, 5 or 6 (a level of the reference encoder), got {value!r}")


class SSCN(nn.Module):
    def __init__(self, config: SSCNConfig | None = None):
        super().__init__()
        self.config = config = config or SSCNConfig()
        check_levels(config)
        self.encoder = VGGEncoder(config.width, max(config.style_level, config.cam_level), config.encoder_norm)
        channels = self.encoder.channels
        self.gct = GlobalColorTransfer(config.width, channels[config.style_level - 1], config.encoder_norm)
        self.cam = CAMClassifier(channels[config.cam_level - 1], config.num_classes)
        token_dim = sum(channels[:4])
        self.correspondence = Correspondence(
            token_dim, scaled(config.attn_dim * 4, config.width), config.value_dim, config.similarity, config.temperature
        )
        self.ldt = LDTDecoder(channels, config.value_dim + 2, config.num_bins)

    @staticmethod
    def tokens(feats: list[torch.Tensor], hw: tuple[int, int]) -> torch.Tensor:
        """Levels 1-4 resized to ``H/4 x W/4`` and concatenated -> ``B x N x d`` tokens.

        Each level is scaled to unit mean norm so that no level dominates the similarity.
        """
        levels = []
        for f in feats[:4]:
            f = resize(f, hw)
            levels.append(f / (f.norm(dim=1, keepdim=True).mean(dim=(2, 3), keepdim=True) + 1e-6))
        return torch.cat(levels, 1).flatten(2).transpose(1, 2)

    def forward(
        self,
        gray_l: torch.Tensor,
        ref_lab: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        dense: bool | None = None,
        k: int | None = None,
        r: int | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        return_attention: bool = False,
        coarse_only: bool = False,
    ) -> SSCNOutput:
        """``gray_l``: ``B x 1 x H x W`` (L / 50 - 1); ``ref_lab``: ``B x 3 x H' x W'`` normalised Lab.

        The reference is resized to the target's size. ``labels`` (training) pick the CAM's
        class; otherwise the predicted class does. ``seed`` or ``generator`` fix the random tokens.
        """
        cfg = self.config
        p = self.prepare(gray_l, ref_lab, labels, coarse_only=coarse_only)
        if coarse_only:
            return SSCNOutput(p.ab_coarse, p.ab_coarse, p.ab_coarse.new_zeros(0), p.class_logits, p.cam)
        indices = None
        if not (cfg.dense if dense is None else dense):
            if generator is None and seed is not None:
                generator = torch.Generator().manual_seed(seed)
            indices = select_tokens(p.cam.detach(), cfg.k if k is None else k, cfg.r if r is None else r, generator)
        ab_fine, hist_logits, attention = self.fine(p, indices, return_attention)
        return SSCNOutput(p.ab_coarse, ab_fine, hist_logits, p.class_logits, p.cam, attention, indices)

    def prepare(self, gray_l: torch.Tensor, ref_lab: torch.Tensor, labels: torch.Tensor | None = None,
                coarse_only: bool = False) -> Prepared:
        """Everything before the token selection: E(I_r), the coarse stage, the CAM, E(I_c) and the tokens."""
        h, w = gray_l.shape[-2:]
        check_size(h, w)
        ref_lab = resize(ref_lab, (h, w))
        hw = (h // 4, w // 4)
        ref_feats = self.encoder(lab_norm_to_rgb(ref_lab))
        ab_coarse = self.gct(gray_l, ref_feats[self.config.style_level - 1])
        class_logits, cam = self.cam(ref_feats[self.config.cam_level - 1], hw, labels)
        prepared = Prepared(gray_l, ref_lab, ab_coarse, class_logits, cam, hw)
        if not coarse_only:
            # only levels 1-4 of E(I_c) become tokens and decoder skips: stop the encoder there
            prepared.coarse_feats = self.encoder(lab_norm_to_rgb(join_lab(gray_l, ab_coarse)), levels=4)
            prepared.query = self.tokens(prepared.coarse_feats, hw)
            prepared.key = self.tokens(ref_feats, hw)
            prepared.ref_ab = resize(ref_lab[:, 1:], hw).flatten(2).transpose(1, 2)
        return prepared

    def fine(self, p: Prepared, indices: torch.Tensor | None, return_attention: bool = False):
        """Formulas 2-3 over the selected tokens (all when ``indices`` is None), then the LDT decoder.

        Returns (ab_fine, hist_logits, attention or None).
        """
        attended, attention = self.correspondence(p.query, p.key, p.ref_ab, indices, self.config.chunk_size, return_attention)
        attended = attended.transpose(1, 2).reshape(attended.shape[0], -1, *p.token_hw)
        ab_fine, hist_logits = self.ldt(p.coarse_feats, attended, p.gray_l, p.ab_coarse)
        return ab_fine, hist_logits, attention


def trainable_parameters(model: "SSCN", frozen: bool) -> list[torch.nn.Parameter]:
    """The parameters Adam updates, in the order its state numbers them: all, or all but the encoders' (frozen)."""
    skip = {id(p) for module in (model.encoder, model.gct.encoder) for p in module.parameters()} if frozen else set()
    return [p for p in model.parameters() if id(p) not in skip]
