"""The k / r sweep of the sparse attention (paper, Fig. 8).
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..errors import SSCNError
from .baselines import network_method
from .protocol import evaluate


def sweep_kr(
    model: torch.nn.Module,
    dataset_or_images,
    ks: Sequence[int],
    rs: Sequence[int],
    kind: str = "tps",
    size: int = 128,
    limit: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """PSNR / SSIM of sparse attention for every ``(k, r)``, plus dense attention (``k = r = None``).

    Returns dicts ``{"k", "r", "tokens", "psnr", "ssim", "psnr_ab", "n_images"}``; ``tokens``
    is ``k + r`` capped at the number of reference tokens ``(size / 4)^2``. ``k = r = 0`` is skipped.
    """
    pairs = [(k, r) for k in ks for r in rs if k + r > 0]
    if not pairs:
        raise SSCNError("sweep_kr needs some (k, r) with k + r >= 1")
    methods = {f"k={k} r={r}": network_method(model, dense=False, k=k, r=r, seed=seed) for k, r in pairs}
    methods["dense"] = network_method(model, dense=True)
    pairs.append((None, None))
    rows = evaluate(methods, dataset_or_images, kinds=(kind,), size=size, limit=limit, batch_size=batch_size,
                    seed=seed, progress=progress)
    total = (size // 4) ** 2
    return [
        {"k": k, "r": r, "tokens": total if k is None else min(k + r, total), "psnr": row.psnr, "ssim": row.ssim,
         "psnr_ab": row.psnr_ab, "n_images": row.n_images}
        for (k, r), row in zip(pairs, rows)
    ]
