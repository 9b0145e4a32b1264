"""Semantic-sparse correspondence (paper, Sec. 3.2, Formulas 2-3).

``a_ij = softmax_j(s(W_q f^c_i, W_k f^r_j))`` and ``f^a_i = sum_j a_ij W_v f^r_j``, where
``j`` runs over the selected reference tokens ``S(C) = T_k U T_r`` only: the top-k CAM
positions plus r random others. Dense attention is the same code with every token.

Two similarities ``s``: the paper's scaled dot product ``q . k / sqrt(d)`` (``"dot"``)
and, by default, cosine similarity over a learned temperature (``"cosine"``), as the
authors' released code does; measured here to learn the correspondence faster
(docs/DESIGN.md, notebook 05). The values also carry the reference's own ab, so the
attended map is a warped copy of the reference's colours.

Memory is ``O((k + r) HW)``: sparse mode gathers the selected keys before any product,
and queries are processed in chunks so no ``HW x HW`` matrix is ever needed.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import SSCNError


def select_tokens(cam: torch.Tensor, k: int, r: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices ``B x (k' + r')`` of the top-k CAM tokens followed by r distinct random others.

    ``cam``: ``B x N``. When ``k + r > N`` the selection is capped at N (every token).
    The random scores are drawn on the CPU so a seed gives the same tokens on any device.
    """
    if k < 0 or r < 0:
        raise SSCNError(f"k and r must be >= 0 (got k={k}, r={r})")
    batch, n = cam.shape
    k = min(k, n)
    r = min(r, n - k)
    if k + r == 0:
        raise SSCNError("k + r must be at least 1: the attention needs some reference tokens")
    top = cam.topk(k, dim=1).indices if k else cam.new_zeros(batch, 0, dtype=torch.long)
    if r == 0:
        return top
    scores = torch.rand(batch, n, generator=generator).to(cam.device)
    scores.scatter_(1, top, -1.0)  # the top-k are never drawn again
    return torch.cat((top, scores.topk(r, dim=1).indices), dim=1)


def gather_tokens(tokens: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``tokens`` ``B x N x D``, ``indices`` ``B x S`` -> ``B x S x D``."""
    return tokens.gather(1, indices[..., None].expand(-1, -1, tokens.shape[-1]))


class Correspondence(nn.Module):
    """Attention of coarse-image tokens (queries) over reference tokens (keys, values).

    ``forward(query B x N x d, key B x M x d, ref_ab B x M x 2, indices B x S | None)``
    -> (attended ``B x N x (value_dim + 2)``, attention ``B x N x S`` or None).
    The last two channels of the output are the attended reference ab.

    Without autograd the explicit N x S matrix is updated in place (one per query chunk).
    ``fused_inference = True`` runs the same maths in PyTorch's fused attention kernel
    instead, which never holds the matrix (``sscn.apps.colorize`` does; off by default so that
    the attention's memory is the textbook one that notebook 05 and the benchmarks show).
    """

    fused_inference = False

    def __init__(self, in_dim: int, dim: int, value_dim: int, similarity: str = "cosine", temperature: float = 0.02):
        super().__init__()
        if similarity not in ("cosine", "dot"):
            raise SSCNError(f"similarity must be 'cosine' or 'dot', not {similarity!r}")
        self.similarity = similarity
        self.to_q = nn.Linear(in_dim, dim)
        self.to_k = nn.Linear(in_dim, dim)
        self.to_v = nn.Linear(in_dim, value_dim)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))
        self.scale = 1 / math.sqrt(dim)

    def logits_scale(self) -> torch.Tensor | float:
        if self.similarity == "dot":
            return self.scale
        # a floor on the temperature keeps the softmax from collapsing to one token
        return 1 / self.log_temperature.exp().clamp(min=1e-3)

    # 4,096 queries: the paper's 256 px crop (N = 64^2) is one chunk; a dense chunk at 512 px
    # holds 4,096 x 16,384 float32 logits (256 MiB) instead of the whole 1 GiB matrix
    def forward(self, query, key, ref_ab, indices=None, chunk_size: int = 4096, return_attention: bool = False):
        if indices is not None:
            key, ref_ab = gather_tokens(key, indices), gather_tokens(ref_ab, indices)
        q, k = self.to_q(query), self.to_k(key)
        v = torch.cat((self.to_v(key), ref_ab.to(key.dtype)), dim=-1)
        # without autograd (inference, validation) the N x d and N x S tensors are updated in
        # place, so the attention holds one N x S matrix per chunk instead of two or three
        in_place = not (torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad))
        if self.similarity == "cosine":
            k = nn.functional.normalize(k, dim=-1)
            if in_place:  # nn.functional.normalize's maths: q / max(|q|, 1e-12)
                q = q.div_(torch.linalg.vector_norm(q, dim=-1, keepdim=True).clamp_(min=1e-12))
            else:
                q = nn.functional.normalize(q, dim=-1)
        # scaling the N x d queries rather than the N x S logits saves a pass over (and, in
        # training, a saved copy of) the largest matrix; the same product up to rounding
        q = q.mul_(self.logits_scale()) if in_place else q * self.logits_scale()
        if in_place and not return_attention and self.fused_inference:
            return self._fused(q, k, v, chunk_size), None
        outputs, maps = [], []
        for start in range(0, q.shape[1], chunk_size):
            logits = torch.einsum("bnd,bsd->bns", q[:, start : start + chunk_size], k).float()
            if in_place and not return_attention:
                # softmax(x) v = exp(x - max) v / sum exp(x - max): normalise the N x 34 product, not the N x S map
                logits.sub_(logits.amax(dim=-1, keepdim=True)).exp_()
                total = logits.sum(dim=-1, keepdim=True)
                outputs.append(torch.einsum("bns,bsd->bnd", logits.to(v.dtype), v).div_(total.to(v.dtype)))
            else:
                attn = torch.softmax(logits, dim=-1).to(v.dtype)
                outputs.append(torch.einsum("bns,bsd->bnd", attn, v))
                if return_attention:
                    maps.append(attn)
                del attn
            del logits  # free each chunk's matrix before the next
        attended = outputs[0] if len(outputs) == 1 else torch.cat(outputs, 1)
        return attended, (torch.cat(maps, 1) if return_attention else None)

    @staticmethod
    def _fused(q, k, v, chunk_size: int) -> torch.Tensor:
        """``softmax(q k^T) v`` by ``scaled_dot_product_attention`` (q already scaled).

        The fused CPU kernel wants one head size for q, k and v: the narrower ones are
        padded with zeros, which change neither the dot products nor the values kept.
        """
        width = v.shape[-1]
        size = max(q.shape[-1], width)
        pad = lambda x: nn.functional.pad(x, (0, size - x.shape[-1])) if x.shape[-1] < size else x  # noqa: E731
        q, k, v = pad(q), pad(k), pad(v)
        outputs = [
            nn.functional.scaled_dot_product_attention(q[:, start : start + chunk_size], k, v, scale=1.0)[..., :width]
            for start in range(0, q.shape[1], chunk_size)
        ]
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, 1)
