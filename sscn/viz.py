"""Plotting helpers shared by the demo and the notebooks (one figure size for the course)."""
from __future__ import annotations

import torch

PANEL = 2.2  # inches per image panel


def to_image(rgb: torch.Tensor):
    """``3 x H x W`` (or ``1 x H x W``) in [0, 1] -> an ``H x W x 3`` numpy array for imshow."""
    rgb = rgb.detach().float().cpu().clamp(0, 1)
    if rgb.shape[0] == 1:
        rgb = rgb.expand(3, -1, -1)
    return rgb.permute(1, 2, 0).numpy()


def image_grid(rows: list[list[torch.Tensor | None]], col_titles: list[str], row_titles: list[str] | None = None):
    """A grid of image panels with column titles; ``None`` leaves a panel blank."""
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), len(col_titles)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(PANEL * n_cols, PANEL * n_rows), squeeze=False)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            ax = axes[i][j]
            ax.axis("off")
            if image is not None:
                ax.imshow(to_image(image))
            if i == 0:
                ax.set_title(col_titles[j], fontsize=10)
        if row_titles:
            axes[i][0].text(-0.05, 0.5, row_titles[i], transform=axes[i][0].transAxes, ha="right", va="center", fontsize=9, rotation=90)
    fig.tight_layout()
    return fig


def demo_figure(rows: list[dict]):
    """The demo's figure: gray target, reference, coarse, final, ground truth per pair."""
    keys = ["gray", "reference", "coarse", "result", "truth"]
    titles = ["gray target", "reference", "coarse (GCT)", "final (SSCN)", "ground truth"]
    return image_grid([[row[k] for k in keys] for row in rows], titles, [row["title"] for row in rows])
