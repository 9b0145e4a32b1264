"""The k/r explorer (sscn.apps.explorer): the same result as the network, caching, token counts."""
from __future__ import annotations

import pytest
import torch

from sscn.color import rgb_to_lab_norm, split_lab
from sscn.io.data import sample_photos
from sscn.errors import SSCNError
from sscn.apps.explorer import KRExplorer, attend, prepare, render, working_inputs
from sscn.models import SSCN, SSCNConfig

SIZE = 64
N = (SIZE // 4) ** 2


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SSCN(SSCNConfig(width=0.125, k=8, r=8)).eval()


@pytest.fixture(scope="module")
def photos():
    return sample_photos(SIZE, names=("chelsea", "coffee", "astronaut"))


@pytest.fixture(scope="module")
def explorer(model, photos):
    pytest.importorskip("ipywidgets")
    return KRExplorer(model, photos, size=SIZE, target="chelsea", reference="tps")


def test_render_matches_the_forward_pass(model, photos):
    target, ref = photos[0][1], photos[1][1]
    out = render(model, target, ref, k=8, r=8, query_xy=(10, 20), size=SIZE, seed=3)
    gray_l, ref_lab = working_inputs(target, ref, SIZE)
    with torch.inference_mode():
        full = model(gray_l, ref_lab, dense=False, k=8, r=8, seed=3, return_attention=True)
    assert torch.allclose(out["ab_fine"], full.ab_fine[0], atol=1e-6)
    assert torch.equal(torch.cat((out["topk"], out["random"])), full.indices[0])
    # row of the query token, scattered back onto the token grid
    token = (20 // 4) * (SIZE // 4) + 10 // 4
    assert out["query_token"] == token
    assert torch.allclose(out["attention"].flatten()[full.indices[0]], full.attention[0, token], atol=1e-6)
    assert out["png"].startswith(b"\x89PNG")
    assert out["result"].shape == out["reference"].shape == (3, SIZE, SIZE)
    assert out["attention"].shape == out["cam"].shape == (SIZE // 4, SIZE // 4)


def test_dense_and_full_sparse_agree(model, photos):
    gray_l, ref_lab = working_inputs(photos[0][1], photos[2][1], SIZE)
    prepared = prepare(model, gray_l, ref_lab)
    dense = attend(model, prepared, 0, 0, dense=True)
    sparse = attend(model, prepared, N // 2, N - N // 2)
    assert sparse.indices.shape == (1, N)
    assert torch.allclose(dense.ab_fine, sparse.ab_fine, atol=1e-5)


@pytest.mark.parametrize("k, r", [(0, 5), (7, 0), (8, 8), (40, 100), (N, 3), (300, 300)])
def test_selected_token_counts(explorer, k, r):
    out = explorer.update(k=k, r=r)
    k_used, r_used = min(k, N), min(r, N - min(k, N))
    assert (out["k"], out["r"]) == (k_used, r_used)
    assert len(out["topk"]) == k_used and len(out["random"]) == r_used
    chosen = torch.cat((out["topk"], out["random"]))
    assert len(set(chosen.tolist())) == k_used + r_used  # distinct tokens
    cam = out["cam"].flatten()
    if k_used:  # the top-k are the CAM's highest tokens
        assert cam[out["topk"]].min() >= cam.topk(k_used).values.min()
    assert explorer.controls["k"].max == explorer.controls["r"].max == N


def test_the_image_changes_with_k_and_the_query(explorer):
    first = explorer.update(k=4, r=0, x=32, y=32, dense=False)
    second = explorer.update(k=64, r=0)
    assert first["png"] != second["png"]
    assert not torch.equal(first["result"], second["result"])
    moved = explorer.update(x=5, y=50)
    assert moved["query_token"] != second["query_token"]
    assert moved["png"] != second["png"]
    assert torch.equal(moved["result"], second["result"])  # the query point only changes the map
    assert explorer.image.value == moved["png"]  # the widget shows the latest view


def test_caches_encoder_passes(explorer):
    explorer.update(target="chelsea", reference="tps", k=8, r=8, seed=0)
    prepared, attended = explorer.prepare_count, explorer.attend_count
    explorer.update(x=3, y=3)
    explorer.update(x=40, y=12)
    assert (explorer.prepare_count, explorer.attend_count) == (prepared, attended)
    explorer.update(k=9)
    assert (explorer.prepare_count, explorer.attend_count) == (prepared, attended + 1)
    explorer.update(k=8)  # seen before: cached
    assert explorer.attend_count == attended + 1
    explorer.update(reference="coffee")
    assert explorer.prepare_count == prepared + 1
    explorer.update(target="astronaut", reference="rotation")
    assert explorer.prepare_count == prepared + 2


def test_widget_changes_redraw(explorer):
    explorer.update(k=8, r=8, x=10, y=10)
    before = explorer.image.value
    explorer.controls["k"].value = 20  # as a slider move in the browser would
    assert explorer.last["k"] == 20 and explorer.image.value != before
    explorer.controls["dense"].value = True
    assert explorer.last["dense"] and len(explorer.last["topk"]) == 0
    explorer.controls["dense"].value = False


def test_no_tokens_is_explained_not_raised(explorer):
    before = explorer.image.value
    assert explorer.update(k=0, r=0) is None
    assert "k + r must be at least 1" in explorer.status.value
    assert explorer.image.value == before
    assert explorer.update(k=1) is not None


def test_bad_settings_are_named(explorer, model, photos):
    with pytest.raises(SSCNError, match="unknown explorer setting"):
        explorer.update(topk=3)
    with pytest.raises(SSCNError, match="target"):
        KRExplorer(model, photos, size=SIZE, target="nope")
    with pytest.raises(SSCNError, match="ref_rgb"):
        render(model, photos[0][1], split_lab(rgb_to_lab_norm(photos[0][1]))[0], 4, 4, size=SIZE)


def test_scores_against_the_ground_truth(model, photos):
    """The readout's numbers: PSNR of the result, the coarse stage and dense attention against the target's colours."""
    from sscn.color import join_lab, lab_norm_to_rgb
    from sscn.scores import psnr
    from sscn.apps.explorer import scores, working_truth

    target, ref = photos[2][1], photos[0][1]
    out = render(model, target, ref, k=4, r=4, size=SIZE, seed=1)
    gray_l, ref_lab = working_inputs(target, ref, SIZE)
    truth_lab = working_truth(target, SIZE)
    assert torch.equal(truth_lab[:, :1], gray_l)  # the ground truth's L is the network's input
    assert torch.equal(out["truth"], lab_norm_to_rgb(truth_lab)[0])
    prepared = prepare(model, gray_l, ref_lab)
    coarse = lab_norm_to_rgb(join_lab(gray_l, prepared.ab_coarse))[0]
    assert out["psnr_coarse"] == pytest.approx(float(psnr(coarse, out["truth"])))
    assert out["psnr"] == pytest.approx(float(psnr(out["result"], out["truth"])))
    dense = render(model, target, ref, k=0, r=0, size=SIZE, dense=True)
    assert out["psnr_dense"] == pytest.approx(dense["psnr"]) == pytest.approx(dense["psnr_dense"])
    assert out["psnr"] != out["psnr_coarse"]
    # scores() alone, without the dense pass; a ground truth at another size is refused
    assert 0 < scores(prepared, attend(model, prepared, 4, 4), truth_lab)["psnr"] < float("inf")
    with pytest.raises(SSCNError, match="working_truth"):
        scores(prepared, attend(model, prepared, 4, 4), working_truth(target, SIZE * 2))


def test_readout_follows_k_and_r(explorer):
    """The explorer shows the PSNRs under the controls and they change with the selection."""
    first = explorer.update(target="astronaut", reference="tps", k=4, r=0, dense=False, seed=0)
    text = explorer.readout.value
    assert f"{first['psnr']:.2f} dB" in text and f"{first['psnr_coarse']:.2f} dB" in text
    assert f"{first['psnr_dense']:.2f} dB" in text and "ground truth" in text
    second = explorer.update(k=0, r=4)
    assert second["psnr"] != first["psnr"] and explorer.readout.value != text
    assert second["psnr_coarse"] == first["psnr_coarse"] and second["psnr_dense"] == first["psnr_dense"]
    assert "k = 0 + r = 4" in explorer.readout.value


def test_controls_wrap_at_narrow_width(explorer):
    """Rows wrap and every control may shrink, so a phone's width keeps them on screen (tests/test_browser.py
    measures it in Chromium)."""
    rows = [child for child in explorer.widget.children if hasattr(child, "children")]
    assert len(rows) == 3 and all(row.layout.flex_flow == "row wrap" for row in rows)
    for name in ("target", "reference", "k", "r", "x", "y"):
        layout = explorer.controls[name].layout
        assert layout.min_width == "0" and layout.flex.startswith("1 1 "), (name, layout)
    assert explorer.image.layout.max_width == "100%"
