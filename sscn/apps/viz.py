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


def final_title(model=None, short: bool = False) -> str:
    """The final column's title: which attention made it (dense, or sparse with its k and r)."""
    if model is None:
        return "final (SSCN)"
    config = model.config
    if short:
        return "final (dense)" if config.dense else "final (sparse)"
    return "final (SSCN, dense)" if config.dense else f"final (SSCN, sparse k={config.k}, r={config.r})"


def demo_figure(rows: list[dict], final: str = "final (SSCN)"):
    """The demo's figure: gray target, reference, coarse, final (titled ``final``: :func:`final_title`),
    ground truth per pair."""
    keys = ["gray", "reference", "coarse", "result", "truth"]
    titles = ["gray target", "reference", "coarse (GCT)", final, "ground truth"]
    return image_grid([[row[k] for k in keys] for row in rows], titles, [row["title"] for row in rows])


# ------------------------------------------------ attention and CAM figures (notebooks 03-05)

FIGSIZE = (10, 3.5)  # one row of panels, the course's figure size
TOKEN_STRIDE = 4  # the attention's tokens live on the H/4 x W/4 grid (paper, Sec. 3.2)
TOPK_COLOR = "#ff7f0e"  # top-k CAM tokens
RANDOM_COLOR = "#17becf"  # random tokens


def new_figure(n_panels: int, figsize=FIGSIZE):
    """A row of ``n_panels`` axes on a ``matplotlib.figure.Figure`` that pyplot does not track.

    Widgets redraw many times; figures made here are freed with their last reference
    instead of piling up in pyplot (and are never shown twice by the inline backend).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=80)
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    return fig, list(axes)


def figure_png(fig, dpi: int = 80) -> bytes:
    """The figure as PNG bytes (for ``ipywidgets.Image`` or ``IPython.display.Image``)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def show_image(ax, rgb: torch.Tensor, title: str | None = None) -> None:
    """``3 x H x W`` (or ``1 x H x W``) in [0, 1] on ``ax``, without axes, with a title."""
    ax.imshow(to_image(rgb))
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)


def overlay_map(ax, rgb: torch.Tensor, heat: torch.Tensor, title: str | None = None, *, dim: float = 0.45,
                cmap: str = "inferno", gamma: float = 0.5, vmax: float | None = None):
    """A coarse map ``h x w`` (CAM, attention) laid over the ``3 x H x W`` image ``rgb``.

    The image is dimmed by ``dim``; each map cell is coloured by ``cmap`` and is as opaque
    as it is high (``(value / vmax) ** gamma``), so low values leave the photo visible
    and a few sharp peaks (attention) still stand out. Cells cover their block of pixels
    exactly (``nearest``: no smoothing that would hide which token is which).
    Returns the map's ``AxesImage``.
    """
    import numpy as np

    height, width = rgb.shape[-2:]
    ax.imshow(to_image(rgb) * dim)
    heat = heat.detach().float().cpu().numpy()
    top = float(heat.max()) if vmax is None else vmax
    level = np.clip(heat / max(top, 1e-12), 0, 1)
    shown = ax.imshow(level, cmap=cmap, vmin=0, vmax=1, alpha=level**gamma, interpolation="nearest",
                      extent=(-0.5, width - 0.5, height - 0.5, -0.5))
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return shown


def token_xy(indices: torch.Tensor, token_width: int, stride: int = TOKEN_STRIDE):
    """Token indices (row-major on the ``h x w`` token grid) -> pixel centres ``(x, y)`` as numpy arrays."""
    indices = torch.as_tensor(indices).detach().cpu().long().flatten()
    x = (indices % token_width).float() * stride + (stride - 1) / 2
    y = torch.div(indices, token_width, rounding_mode="floor").float() * stride + (stride - 1) / 2
    return x.numpy(), y.numpy()


def mark_tokens(ax, indices: torch.Tensor, token_width: int, color: str, label: str | None = None,
                stride: int = TOKEN_STRIDE, size: float = 9.0) -> None:
    """Draw the tokens ``indices`` as small squares at their pixel centres (see :func:`token_xy`)."""
    x, y = token_xy(indices, token_width, stride)
    ax.scatter(x, y, s=size, marker="s", c=color, edgecolors="black", linewidths=0.3, label=label)


def mark_point(ax, xy, color: str = "white", label: str | None = None) -> None:
    """A cross-hair at pixel ``(x, y)``: the query point of an attention map."""
    ax.scatter([xy[0]], [xy[1]], s=70, marker="+", c=color, linewidths=1.8, label=label)
    ax.scatter([xy[0]], [xy[1]], s=70, marker="o", facecolors="none", edgecolors="black", linewidths=0.8)
