"""The k/r explorer: how many CAM tokens (k) and random tokens (r) the correspondence needs.

The semantic-sparse attention (paper, Sec. 3.2, Formulas 2-3) lets every target token
look only at ``S(C) = T_k U T_r``: the k reference tokens the CAM ranks highest plus r
random others. This module shows, for one target and one reference, which tokens are
kept, where one query point of the target looks in the reference, and the colorized
result, for any k and r:

- :func:`render` does it once, without widgets: a dict of images and PNG bytes;
- :class:`KRExplorer` wraps it in ipywidgets (sliders for k, r and the query point,
  dropdowns for the target and the reference) for JupyterLab and Voila.

The target is always a gray version of a colour photo, so its colours are known: every
view is scored against that ground truth (:func:`scores`, PSNR of the 8-bit pictures as
``sscn.scores.psnr`` computes it) beside the coarse stage and dense attention, and the
figure shows the coarse result, the dense result and the ground truth under the chosen
selection's. Whether 16 top-CAM tokens beat 16 random ones, or the coarse stage alone,
is then a number on screen. (With another photo as the reference the scores measure
plausibility only: the reference's colours may be right and still not the target's.)

Everything before the token selection (the reference encoder, GCT, the CAM, the coarse
image's encoder and both token sets) depends only on the (target, reference) pair, so
:func:`prepare` runs it once and :func:`attend` reruns only the selection, the
attention and the LDT decoder when k, r or the seed move. The two call the network's
own submodules in the order ``SSCN.forward`` does; ``render(...)["result"]`` equals the
full forward pass (tests/test_explorer.py checks it).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..augment import ALL_REFERENCE_KINDS, make_reference
from ..color import gray_l_to_rgb, join_lab, lab_norm_to_rgb, rgb_to_lab_norm, split_lab
from .colorize import working_shape
from ..errors import SSCNError
from ..scores import psnr
from ..models import SSCN
from ..models.attention import select_tokens
from ..models.sscn import Prepared
from . import viz


@dataclass
class Attended:
    """The fine stage for one token selection: ``ab_fine`` ``1 x 2 x H x W``, ``attention``
    ``1 x N x S``, ``indices`` ``1 x S`` (top-k first, then random; ``None`` when dense),
    and the counts actually used (``k + r`` is capped at N, as :func:`select_tokens` does)."""

    ab_fine: torch.Tensor
    attention: torch.Tensor
    indices: torch.Tensor | None
    k: int
    r: int


@torch.inference_mode()
def prepare(model: SSCN, gray_l: torch.Tensor, ref_lab: torch.Tensor) -> Prepared:
    """Everything ``SSCN.forward`` computes before the token selection, in the same order.

    ``gray_l``: ``1 x 1 x H x W`` (L / 50 - 1); ``ref_lab``: ``1 x 3 x H' x W'`` normalised
    Lab (resized to the target's size here, as the network does).
    """
    if gray_l.dim() != 4 or gray_l.shape[:2] != (1, 1):
        raise SSCNError(f"prepare expects gray_l shaped 1 x 1 x H x W, got {tuple(gray_l.shape)}")
    return model.prepare(gray_l, ref_lab)


@torch.inference_mode()
def attend(model: SSCN, prepared: Prepared, k: int, r: int, dense: bool = False, seed: int = 0) -> Attended:
    """Token selection (top-k CAM + r random, drawn with ``seed``), Formulas 2-3, the LDT decoder."""
    n = prepared.num_tokens
    indices = None
    if dense:
        k_used, r_used = n, 0
    else:
        indices = select_tokens(prepared.cam, k, r, torch.Generator().manual_seed(int(seed)))
        k_used = min(k, n)
        r_used = indices.shape[1] - k_used
    ab_fine, _, attention = model.fine(prepared, indices, return_attention=True)
    return Attended(ab_fine=ab_fine, attention=attention, indices=indices, k=k_used, r=r_used)


def working_inputs(target_rgb: torch.Tensor, ref_rgb: torch.Tensor, size: int, device=None):
    """``3 x H x W`` sRGB photos -> (``gray_l`` ``1 x 1 x h x w``, ``ref_lab`` ``1 x 3 x h' x w'``) at the
    working size (long side ``size``, multiples of 16), resized as ``sscn.apps.colorize`` does."""
    for name, image in (("target_rgb", target_rgb), ("ref_rgb", ref_rgb)):
        if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise SSCNError(f"{name} must be an sRGB tensor shaped 3 x H x W in [0, 1], got {shape}")
    gray_l = split_lab(rgb_to_lab_norm(target_rgb.to(device)))[0][None]
    ref_lab = rgb_to_lab_norm(ref_rgb.to(device))[None]
    shaped = []
    for image in (gray_l, ref_lab):
        hw = working_shape(*image.shape[-2:], size)
        if tuple(image.shape[-2:]) != hw:
            image = F.interpolate(image, size=hw, mode="bilinear", align_corners=False, antialias=True)
        shaped.append(image)
    return shaped[0], shaped[1]


def working_truth(target_rgb: torch.Tensor, size: int, device=None) -> torch.Tensor:
    """The target's own colours at the working size, ``1 x 3 x h x w`` normalised Lab: resized as
    :func:`working_inputs` resizes the target, so its L is exactly the network's gray input."""
    lab = rgb_to_lab_norm(target_rgb.to(device))[None]
    hw = working_shape(*lab.shape[-2:], size)
    if tuple(lab.shape[-2:]) != hw:
        lab = F.interpolate(lab, size=hw, mode="bilinear", align_corners=False, antialias=True)
    return lab


def scores(prepared: Prepared, attended: Attended, truth_lab: torch.Tensor,
           dense: Attended | None = None) -> dict[str, float]:
    """PSNR (dB, 8-bit RGB) against the ground truth of the selection's result, the coarse stage's
    and, given the dense pass, dense attention's: ``{"psnr", "psnr_coarse"[, "psnr_dense"]}``."""
    truth = lab_norm_to_rgb(truth_lab)[0].cpu()
    if truth.shape[-2:] != prepared.gray_l.shape[-2:]:
        raise SSCNError(f"the ground truth is {tuple(truth.shape[-2:])}, the target {tuple(prepared.gray_l.shape[-2:])}; "
                        "make it with working_truth at the explorer's size")

    def score(ab: torch.Tensor) -> float:
        return float(psnr(lab_norm_to_rgb(join_lab(prepared.gray_l, ab))[0].cpu(), truth))

    out = {"psnr": score(attended.ab_fine), "psnr_coarse": score(prepared.ab_coarse)}
    if dense is not None:
        out["psnr_dense"] = score(dense.ab_fine)
    return out


def readout(numbers: dict[str, float], attended: Attended) -> str:
    """The scores as one line of HTML, the selection's result first."""
    label = "dense" if attended.indices is None else f"k = {attended.k} + r = {attended.r}"
    parts = [f"<b>PSNR against the ground truth</b>: this result ({label}) <b>{numbers['psnr']:.2f} dB</b>",
             f"coarse stage {numbers['psnr_coarse']:.2f} dB"]
    if "psnr_dense" in numbers:
        parts.append(f"dense, all tokens {numbers['psnr_dense']:.2f} dB")
    return " &middot; ".join(parts)


def query_token(query_xy, image_hw: tuple[int, int], stride: int = viz.TOKEN_STRIDE) -> tuple[tuple[int, int], int]:
    """Pixel ``(x, y)`` of the working-size target -> (the point clamped to the image, its token index)."""
    height, width = image_hw
    x = min(max(int(query_xy[0]), 0), width - 1)
    y = min(max(int(query_xy[1]), 0), height - 1)
    return (x, y), (y // stride) * (width // stride) + x // stride


def attention_map(attended: Attended, token: int, token_hw: tuple[int, int]) -> torch.Tensor:
    """Row ``token`` of the attention, scattered back onto the ``h x w`` reference token grid
    (zero where a token was not selected)."""
    weights = attended.attention[0, token].float().cpu()
    full = torch.zeros(token_hw[0] * token_hw[1])
    if attended.indices is None:
        full = weights
    else:
        full[attended.indices[0].cpu()] = weights
    return full.reshape(token_hw)


def describe(attended: Attended, n: int) -> str:
    if attended.indices is None:
        return f"dense: all {n} tokens"
    return f"k = {attended.k} top-CAM + r = {attended.r} random = {attended.k + attended.r} of {n} tokens"


def draw(prepared: Prepared, attended: Attended, query_xy, token: int, truth_lab: torch.Tensor | None = None,
         dense: Attended | None = None, numbers: dict | None = None):
    """The explorer's figure. First row: the reference with the selected tokens, the query
    point's attention over the reference, the colorized result with the query point. Given
    the ground truth, a second row for comparison: the coarse stage, dense attention (when
    given) and the ground truth, each titled with its PSNR (``numbers``, from :func:`scores`)."""
    reference = lab_norm_to_rgb(prepared.ref_lab)[0].cpu()
    result = lab_norm_to_rgb(join_lab(prepared.gray_l, attended.ab_fine))[0].cpu()
    token_w = prepared.token_hw[1]
    if truth_lab is None:
        fig, axes = viz.new_figure(3)
    else:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(viz.FIGSIZE[0], 2 * viz.FIGSIZE[1]), dpi=80)
        grid = fig.subplots(2, 3, squeeze=False)
        axes = list(grid[0])
        _comparison_row(list(grid[1]), prepared, truth_lab, dense, numbers or {})
    viz.show_image(axes[0], reference, "reference, selected tokens")
    if attended.indices is not None:
        chosen = attended.indices[0].cpu()
        if attended.r:
            viz.mark_tokens(axes[0], chosen[attended.k :], token_w, viz.RANDOM_COLOR, f"random (r = {attended.r})")
        if attended.k:
            viz.mark_tokens(axes[0], chosen[: attended.k], token_w, viz.TOPK_COLOR, f"top-k CAM (k = {attended.k})")
        axes[0].legend(loc="lower left", fontsize=7, framealpha=0.8, markerscale=1.5)
    else:
        axes[0].set_title("reference, dense: every token", fontsize=9)
    viz.overlay_map(axes[1], reference, attention_map(attended, token, prepared.token_hw), "attention of the query point")
    title = "result (SSCN)" if "psnr" not in (numbers or {}) else f"this result: {numbers['psnr']:.2f} dB"
    viz.show_image(axes[2], result, title)
    viz.mark_point(axes[2], query_xy)
    fig.suptitle(describe(attended, prepared.num_tokens), fontsize=10)
    fig.tight_layout()
    return fig


def _comparison_row(axes, prepared: Prepared, truth_lab: torch.Tensor, dense: Attended | None, numbers: dict) -> None:
    def db(key: str) -> str:
        return f": {numbers[key]:.2f} dB" if key in numbers else ""

    viz.show_image(axes[0], lab_norm_to_rgb(join_lab(prepared.gray_l, prepared.ab_coarse))[0].cpu(),
                   "coarse stage" + db("psnr_coarse"))
    if dense is not None:
        viz.show_image(axes[1], lab_norm_to_rgb(join_lab(prepared.gray_l, dense.ab_fine))[0].cpu(),
                       "dense, all tokens" + db("psnr_dense"))
    else:
        axes[1].set_axis_off()
    viz.show_image(axes[2], lab_norm_to_rgb(truth_lab)[0].cpu(), "ground truth")


def _result_dict(prepared: Prepared, attended: Attended, query_xy, token: int, figure,
                 truth_lab: torch.Tensor | None = None, numbers: dict | None = None) -> dict:
    chosen = attended.indices[0].cpu() if attended.indices is not None else torch.zeros(0, dtype=torch.long)
    return {
        **(numbers or {}),
        "truth": lab_norm_to_rgb(truth_lab)[0].cpu() if truth_lab is not None else None,
        "gray": gray_l_to_rgb(prepared.gray_l)[0].cpu(),
        "reference": lab_norm_to_rgb(prepared.ref_lab)[0].cpu(),
        "coarse": lab_norm_to_rgb(join_lab(prepared.gray_l, prepared.ab_coarse))[0].cpu(),
        "result": lab_norm_to_rgb(join_lab(prepared.gray_l, attended.ab_fine))[0].cpu(),
        "ab_fine": attended.ab_fine[0].cpu(),
        "attention": attention_map(attended, token, prepared.token_hw),
        "cam": prepared.cam[0].cpu().reshape(prepared.token_hw),
        "topk": chosen[: attended.k] if attended.indices is not None else chosen,
        "random": chosen[attended.k :],
        "k": attended.k,
        "r": attended.r,
        "dense": attended.indices is None,
        "tokens": prepared.num_tokens,
        "query": tuple(query_xy),
        "query_token": token,
        "figure": figure,
        "png": viz.figure_png(figure),
    }


def render(
    model: SSCN,
    target_rgb: torch.Tensor,
    ref_rgb: torch.Tensor,
    k: int,
    r: int,
    query_xy=(0, 0),
    size: int = 128,
    *,
    dense: bool = False,
    seed: int = 0,
) -> dict:
    """One explorer view without widgets.

    ``target_rgb``, ``ref_rgb``: ``3 x H x W`` sRGB in [0, 1] (the target is made gray);
    ``query_xy``: a pixel ``(x, y)`` of the target at the working size (long side ``size``).
    Returns a dict: ``"gray"``, ``"reference"``, ``"coarse"``, ``"result"`` (``3 x h x w``
    sRGB), ``"ab_fine"`` (``2 x h x w``), ``"attention"`` and ``"cam"`` (``h/4 x w/4``),
    ``"topk"``, ``"random"`` (token indices), the counts ``"k"``, ``"r"``, ``"tokens"``,
    ``"query"``, ``"query_token"``, the matplotlib ``"figure"`` and its ``"png"`` bytes;
    the target's own colours ``"truth"`` and the PSNRs against it (:func:`scores`):
    ``"psnr"``, ``"psnr_coarse"``, ``"psnr_dense"``.
    """
    device = next(model.parameters()).device
    gray_l, ref_lab = working_inputs(target_rgb, ref_rgb, size, device)
    truth_lab = working_truth(target_rgb, size, device)
    prepared = prepare(model, gray_l, ref_lab)
    attended = attend(model, prepared, k, r, dense, seed)
    full = attended if dense else attend(model, prepared, 0, 0, dense=True)
    numbers = scores(prepared, attended, truth_lab, full)
    query_xy, token = query_token(query_xy, gray_l.shape[-2:])
    figure = draw(prepared, attended, query_xy, token, truth_lab, full, numbers)
    return _result_dict(prepared, attended, query_xy, token, figure, truth_lab, numbers)


class _Views:
    """The explorer's computation for given settings, cached: the encoder passes per (target,
    reference) pair, the fine stage per token selection (least recently used dropped), the
    ground truth per target."""

    def __init__(self, model: SSCN, photos: dict, size: int, selections: int):
        self.model, self.photos, self.size, self.selections = model, photos, size, selections
        self.device = next(model.parameters()).device
        self.prepare_count = 0  # encoder passes run so far (what the cache saves)
        self.attend_count = 0  # fine-stage passes run so far
        self._prepared: dict = {}
        self._attended: dict = {}
        self._truth: dict = {}

    def target_hw(self, name: str) -> tuple[int, int]:
        return working_shape(*self.photos[name].shape[-2:], self.size)

    def reference_rgb(self, target: str, reference: str, seed: int) -> torch.Tensor:
        if reference in ALL_REFERENCE_KINDS:
            return make_reference(self.photos[target], reference, seed).image
        return self.photos[reference]

    def prepared(self, target: str, reference: str, seed: int) -> Prepared:
        # a photo reference does not depend on the seed; a self-augmented one does
        key = (target, reference, seed if reference in ALL_REFERENCE_KINDS else None)
        if key not in self._prepared:
            gray_l, ref_lab = working_inputs(self.photos[target], self.reference_rgb(target, reference, seed),
                                             self.size, self.device)
            self._prepared = {key: prepare(self.model, gray_l, ref_lab)}  # one pair at a time: small memory
            self._attended = {}
            self.prepare_count += 1
        return self._prepared[key]

    def truth(self, target: str) -> torch.Tensor:
        if target not in self._truth:
            self._truth[target] = working_truth(self.photos[target], self.size, self.device)
        return self._truth[target]

    def attended(self, prepared: Prepared, k: int, r: int, dense: bool, seed: int) -> Attended:
        key = ("dense",) if dense else (k, r, seed)
        if key in self._attended:
            self._attended[key] = self._attended.pop(key)  # most recently used last
        else:
            if len(self._attended) >= self.selections:
                self._attended.pop(next(iter(self._attended)))
            self._attended[key] = attend(self.model, prepared, k, r, dense, seed)
            self.attend_count += 1
        return self._attended[key]


def _reference_options(photos: dict) -> list[tuple[str, str]]:
    """The reference dropdown's (label, value) pairs: each self-augmentation of the target, then each photo."""
    return ([(f"{kind} of the target", kind) for kind in ALL_REFERENCE_KINDS]
            + [(f"photo: {name}", name) for name in photos])


def _controls(widgets, photos: dict, reference_options, target: str, reference: str, k: int, r: int,
              query_xy, dense: bool, seed: int, hw: tuple[int, int]) -> dict:
    """The explorer's controls by name, ranged for a target of ``hw`` pixels (``(h/4) * (w/4)`` tokens)."""
    height, width = hw
    n = (height // 4) * (width // 4)

    # every control may shrink and its row wraps: at a phone's width each takes a line of its own
    def fill(basis: str) -> dict:
        return dict(layout=widgets.Layout(flex=f"1 1 {basis}", min_width="0", max_width="520px"))

    slider = dict(continuous_update=False, style={"description_width": "initial"}, **fill("300px"))
    return {
        "target": widgets.Dropdown(options=list(photos), value=target, description="target", **fill("220px")),
        "reference": widgets.Dropdown(options=reference_options, value=reference, description="reference",
                                      **fill("260px")),
        "k": widgets.IntSlider(value=min(k, n), min=0, max=n, description="k (top CAM)", **slider),
        "r": widgets.IntSlider(value=min(r, n), min=0, max=n, description="r (random)", **slider),
        "x": widgets.IntSlider(value=query_xy[0], min=0, max=width - 1, description="query x", **slider),
        "y": widgets.IntSlider(value=query_xy[1], min=0, max=height - 1, description="query y", **slider),
        "dense": widgets.Checkbox(value=dense, description="dense (all tokens)", indent=False,
                                  layout=widgets.Layout(flex="0 0 auto", width="auto")),
        "seed": widgets.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed",
                                       layout=widgets.Layout(flex="0 1 160px", min_width="0", width="160px")),
    }


def _layout(widgets, controls: dict, readout, status, image):
    """Three rows of controls (wrapping on a narrow screen), the readout, the status line, the figure."""
    c = controls
    row = dict(layout=widgets.Layout(flex_flow="row wrap", width="100%", align_items="center"))
    return widgets.VBox([
        widgets.HBox([c["target"], c["reference"], c["seed"]], **row),
        widgets.HBox([c["k"], c["r"], c["dense"]], **row),
        widgets.HBox([c["x"], c["y"]], **row),
        readout,
        status,
        image,
    ], layout=widgets.Layout(width="100%", max_width="100%"))


def _status_line(attended: Attended, n: int, token: int, seconds: float) -> str:
    """The selection's size, the query token and how long the view took."""
    share = 100 * (attended.k + attended.r) / n
    return f"{describe(attended, n)} ({share:.1f} %), query token {token}; {1000 * seconds:.0f} ms"


class KRExplorer:
    """ipywidgets front end of :func:`render` over a set of photos.

    ``photos``: ``[(name, rgb 3 x H x W)]`` or a dict (default: the sample photos at
    ``size``). The reference is either a seeded self-augmentation of the target (TPS,
    violent TPS, rotation, crop: the ground truth is known) or another photo. It starts
    with sparse attention at the model's k and r (``dense=True`` or the checkbox for
    dense), whatever mode the checkpoint uses by default at inference.
    Display the explorer in a notebook as the last expression of a cell (or
    ``display(explorer)``); :meth:`update` sets any control from code and redraws.
    The figure is an ``ipywidgets.Image`` holding PNG bytes, which renders in JupyterLab,
    Voila and classic Notebook alike.

    Encoder passes are cached per (target, reference) pair and the fine stage per
    selection, so moving the query point only redraws, and moving k or r reruns only the
    attention and the decoder.

    Under the controls, ``readout`` (an ``ipywidgets.HTML``) gives the PSNR of the current
    result against the target's own colours beside the coarse stage's and dense
    attention's (:func:`scores`; ``self.last`` holds the numbers). The controls wrap onto
    more lines on a narrow screen (a phone's 390 px): each slider keeps a usable track.
    """

    CONTROLS = ("target", "reference", "k", "r", "x", "y", "dense", "seed")
    CACHED_SELECTIONS = 8  # fine-stage results kept per pair (least recently used dropped)

    def __init__(
        self,
        model: SSCN,
        photos=None,
        size: int = 128,
        target: str | None = None,
        reference: str = "tps",
        k: int | None = None,
        r: int | None = None,
        query_xy=None,
        dense: bool = False,
        seed: int = 0,
    ):
        import ipywidgets as widgets

        if photos is None:
            from ..io.data import sample_photos

            photos = sample_photos(size)
        self.photos = dict(photos)
        if not self.photos:
            raise SSCNError("KRExplorer needs at least one photo; pass photos=[(name, rgb)]")
        self.model = model.eval()
        self.size = size
        self._views = _Views(self.model, self.photos, size, self.CACHED_SELECTIONS)
        self.device = self._views.device
        self.last: dict | None = None
        self._holding = False

        target = target or next(iter(self.photos))
        if target not in self.photos:
            raise SSCNError(f"target {target!r} is not among the photos ({', '.join(self.photos)})")
        self.reference_options = _reference_options(self.photos)
        if reference not in [value for _, value in self.reference_options]:
            raise SSCNError(f"reference {reference!r}: pass one of {', '.join(ALL_REFERENCE_KINDS)} or a photo name")
        height, width = self._views.target_hw(target)
        k = model.config.k if k is None else k
        r = model.config.r if r is None else r
        query_xy = query_xy or (width // 2, height // 2)
        self.controls = _controls(widgets, self.photos, self.reference_options, target, reference, k, r, query_xy,
                                  dense, seed, (height, width))
        self.status = widgets.HTML()
        self.status.add_class("sscn-status")
        self.readout = widgets.HTML()
        self.readout.add_class("sscn-readout")
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.widget = _layout(widgets, self.controls, self.readout, self.status, self.image)
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.update()

    # ------------------------------------------------------------------ state

    @property
    def settings(self) -> dict:
        """The current value of every control."""
        return {name: control.value for name, control in self.controls.items()}

    @property
    def num_tokens(self) -> int:
        height, width = self._views.target_hw(self.controls["target"].value)
        return (height // 4) * (width // 4)

    @property
    def prepare_count(self) -> int:
        """Encoder passes run so far (what the cache saves)."""
        return self._views.prepare_count

    @property
    def attend_count(self) -> int:
        """Fine-stage passes run so far."""
        return self._views.attend_count

    # --------------------------------------------------------------- controls

    def update(self, **settings) -> dict | None:
        """Set any of ``target, reference, k, r, x, y, dense, seed``, recompute and redraw.

        Returns the :func:`render`-style dict of the new view (also kept as ``self.last``),
        or ``None`` when the settings select no token (k = r = 0), which the status line
        then explains.
        """
        unknown = sorted(set(settings) - set(self.CONTROLS))
        if unknown:
            raise SSCNError(f"unknown explorer setting(s) {unknown}; use {', '.join(self.CONTROLS)}")
        self._holding = True
        try:
            if "target" in settings:
                self.controls["target"].value = settings["target"]
                self._fit_sliders()
            for name, value in settings.items():
                if name != "target":
                    self.controls[name].value = value
        finally:
            self._holding = False
        return self._redraw()

    def _fit_sliders(self) -> None:
        """Slider ranges follow the target's size (N tokens, its pixels)."""
        height, width = self._views.target_hw(self.controls["target"].value)
        n = (height // 4) * (width // 4)
        for name, top in (("k", n), ("r", n), ("x", width - 1), ("y", height - 1)):
            control = self.controls[name]
            control.value = min(control.value, top)
            control.max = top

    def _on_change(self, change) -> None:
        if self._holding:
            return
        if change["owner"] is self.controls["target"]:
            self._holding = True
            try:
                self._fit_sliders()
            finally:
                self._holding = False
        self._redraw()

    # ---------------------------------------------------------------- drawing

    def _redraw(self) -> dict | None:
        s = self.settings
        start = time.perf_counter()
        try:
            prepared = self._views.prepared(s["target"], s["reference"], s["seed"])
            attended = self._views.attended(prepared, s["k"], s["r"], s["dense"], s["seed"])
        except SSCNError as err:
            self.status.value = f"<b>nothing to show:</b> {err}"
            return None
        truth = self._views.truth(s["target"])
        full = self._views.attended(prepared, 0, 0, True, 0)  # once per pair: the dense score beside
        numbers = scores(prepared, attended, truth, full)
        query_xy, token = query_token((s["x"], s["y"]), prepared.gray_l.shape[-2:])
        figure = draw(prepared, attended, query_xy, token, truth, full, numbers)
        self.last = _result_dict(prepared, attended, query_xy, token, figure, truth, numbers)
        self.image.value = self.last["png"]
        self.readout.value = readout(numbers, attended)
        self.status.value = _status_line(attended, prepared.num_tokens, token, time.perf_counter() - start)
        return self.last

    def _repr_mimebundle_(self, **kwargs):
        """Show the widget; a saved notebook without its kernel shows one line of text instead."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "k/r explorer: run the notebook (JupyterLab or Voila) to use its controls"
        return bundle
