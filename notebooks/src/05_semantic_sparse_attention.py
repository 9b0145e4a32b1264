# %% [markdown]
# # 05 · Semantic-sparse attention: where each target position looks in the reference
#
# The coarse image of notebook 03 has the reference's global colours in the wrong
# places. The fine stage fixes that with a **correspondence**: every position of the
# target finds the reference positions that show the same thing and borrows their
# features and colours. Attending to every reference position costs $O(N^2)$ for
# $N = H/4 \cdot W/4$ tokens; SSCN attends only to a **semantic-sparse** subset, the
# reference tokens the CAM of notebook 04 ranks highest plus a few random ones.
#
# **What you will learn**
#
# - how the tokens are built (levels 1-4 of the shared encoder at $H/4 \times W/4$) and
#   how Formulas 2-3 turn them into attended features, drafted and checked against
#   `sscn.models.attention`;
# - dense and sparse attention side by side for one query point, and the check that
#   sparse attention with $k + r = N$ *is* dense attention;
# - what sparsity buys: time and memory against image size;
# - why the bundled model uses cosine similarity with a learned temperature instead of
#   the paper's scaled dot product;
# - how k and r change the result, with an interactive explorer.
#
# **Formulas 2-3.** With $f^c_i$ the token of the coarse image $I_c$ at position $i$ and
# $f^r_j$ the reference's token at $j$ (both $d$-dimensional),
#
# $$a_{ij} = \operatorname{softmax}_{j \in S(C)}\!\left(\frac{(W_q f^c_i) \cdot (W_k f^r_j)}{\sqrt{d}}\right)
#   \quad (2), \qquad
#   f^a_i = \sum_{j \in S(C)} a_{ij}\, W_v f^r_j \quad (3),$$
#
# where the softmax runs over the selected tokens only,
#
# $$S(C) = T_k \cup T_r, \qquad T_k = \operatorname{top-}k(C), \qquad
#   T_r = r \text{ random tokens of } \{1..N\} \setminus T_k,$$
#
# $C \in [0, 1]^N$ being the reference's CAM on the token grid. Dense attention is the
# same formula with $S(C) = \{1..N\}$. In this package the values also carry the
# reference's own ab at $j$, so $f^a_i$ ends with a warped copy of the reference's
# colours, and the similarity is, by default, $\cos(W_q f^c_i, W_k f^r_j) / \tau$ with a
# learned temperature $\tau$ (section 5).

# %%
import os
import statistics
import time
import weakref

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Image, display
from torch.overrides import TorchFunctionMode

from sscn.augment import make_reference
from sscn.checkpoint import load_model
from sscn.color import gray_l_to_rgb, join_lab, lab_norm_to_rgb, rgb_to_lab_norm, split_lab
from sscn.data import SAMPLE_NAMES, sample_photos
from sscn.evaluate import psnr
from sscn.models.attention import select_tokens
from sscn.models.ldt import resize
from sscn.viz import FIGSIZE, RANDOM_COLOR, TOPK_COLOR, mark_point, mark_tokens, overlay_map, show_image

torch.set_grad_enabled(False)  # nothing is trained here: no autograd graph, less memory
SMOKE = os.environ.get("SSCN_SMOKE") == "1"
plt.rcParams["figure.dpi"] = 80  # modest figures keep the stored notebook small

# %% tags=["parameters"]
checkpoint = ""  # a .pt file; empty: the bundled checkpoint
target_name = "chelsea"  # a sample photo (sscn.data.SAMPLE_NAMES)
reference = "tps"  # a self-augmentation of the target (tps, tps_violent, rotation, crop) or a photo name
size = 128  # working size (the bundled model was trained at 128 px)
k = 64  # top-k CAM tokens (the bundled model's setting)
r = 64  # random tokens
query_x = 45  # the query point, in pixels of the target (here: the cat's left eye)
query_y = 60
bench_sizes = [64, 128, 192, 256]  # image sizes for the cost measurement
bench_repeats = 5
seed = 0

# %%
if SMOKE:  # seconds: two benchmark sizes, fewer repeats
    bench_sizes, bench_repeats = [64, 128], 2
torch.manual_seed(seed)
model = load_model(checkpoint or None)
reference_photo = (reference,) if reference in SAMPLE_NAMES else ()
photos = dict(sample_photos(size, names=tuple(dict.fromkeys(
    (target_name, *reference_photo, "chelsea", "coffee", "astronaut", "rocket", "motorcycle")))))
truth = photos[target_name]
ref_rgb = photos[reference] if reference in photos else make_reference(truth, reference, seed).image
gray_l = split_lab(rgb_to_lab_norm(truth))[0][None]  # 1 x 1 x H x W
ref_lab = rgb_to_lab_norm(ref_rgb)[None]  # 1 x 3 x H x W
token_hw = (size // 4, size // 4)
n_tokens = token_hw[0] * token_hw[1]
query_token = (query_y // 4) * token_hw[1] + query_x // 4
print(f"target {target_name}, reference: {reference}; {size} px -> N = {n_tokens} tokens, "
      f"k + r = {k + r} ({(k + r) / n_tokens:.1%})")
print(f"bundled model: similarity {model.config.similarity!r}, dense attention by default: {model.config.dense}")

# %% [markdown]
# ## 1. The tokens
#
# Both images go through the shared encoder $E$ (the reference directly, the target as
# its coarse GCT result $I_c$). Levels 1 to 4 (relu1_1 .. relu4_1, strides 1 to 8) are
# brought to the token grid $H/4 \times W/4$, the finer ones by average pooling and the
# coarser one by bilinear upsampling, and concatenated: a $d$-dimensional token per
# position. Each level is first divided by its mean channel norm, so that the level
# with the most channels does not dominate the similarity.

# %%
def tokens_draft(feats, hw):
    """Levels 1-4, each B x C_l x H_l x W_l -> B x N x d tokens on the hw grid."""
    levels = []
    for feat in feats[:4]:
        feat = resize(feat, hw)  # average pool when shrinking, bilinear when growing
        levels.append(feat / (feat.norm(dim=1, keepdim=True).mean(dim=(2, 3), keepdim=True) + 1e-6))
    return torch.cat(levels, 1).flatten(2).transpose(1, 2)


ref_feats = model.encoder(lab_norm_to_rgb(ref_lab))
ab_coarse = model.gct(gray_l, ref_feats[4])  # notebook 03
_, cam = model.cam(ref_feats[4], token_hw)  # notebook 04
coarse_feats = model.encoder(lab_norm_to_rgb(join_lab(gray_l, ab_coarse)))
query = tokens_draft(coarse_feats, token_hw)  # f^c: 1 x N x d
key = tokens_draft(ref_feats, token_hw)  # f^r
ref_ab = resize(ref_lab[:, 1:], token_hw).flatten(2).transpose(1, 2)  # the reference's ab per token: 1 x N x 2
print("levels:", [tuple(f.shape[1:]) for f in ref_feats[:4]], "-> tokens", tuple(key.shape))

# %% [markdown]
# ## 2. Formulas 2-3, step by step
#
# The draft takes the trained projections $W_q, W_k, W_v$ of the bundled model's
# `Correspondence` module and wires them by hand: gather the selected reference tokens,
# project, compare, softmax over the selected tokens, mix the values. The selection is
# the one of notebook 04 (`select_tokens`: the CAM's top-k, then r random others).

# %%
layer = model.correspondence


def attention_draft(query, key, ref_ab, indices, similarity="cosine"):
    """query B x N x d, key B x N x d, ref_ab B x N x 2, indices B x S (None = dense)
    -> attended B x N x (value_dim + 2), attention B x N x S."""
    if indices is not None:  # keep only S(C): the attention never sees the other tokens
        key = torch.stack([key[b, indices[b]] for b in range(len(key))])
        ref_ab = torch.stack([ref_ab[b, indices[b]] for b in range(len(ref_ab))])
    q, kk = layer.to_q(query), layer.to_k(key)  # W_q f^c_i, W_k f^r_j
    values = torch.cat((layer.to_v(key), ref_ab), dim=-1)  # W_v f^r_j and the reference's ab
    if similarity == "cosine":
        q, kk = F.normalize(q, dim=-1), F.normalize(kk, dim=-1)
        logits = q @ kk.transpose(1, 2) / layer.log_temperature.exp()  # cos / tau
    else:
        logits = q @ kk.transpose(1, 2) / q.shape[-1] ** 0.5  # Formula 2 as printed
    attention = logits.softmax(dim=-1)  # a_ij, each row sums to 1 over S(C)
    return attention @ values, attention  # Formula 3


indices = select_tokens(cam, k, r, torch.Generator().manual_seed(seed))
sparse_out, sparse_attn = attention_draft(query, key, ref_ab, indices)
dense_out, dense_attn = attention_draft(query, key, ref_ab, None)
print(f"sparse: attention {tuple(sparse_attn.shape)}, dense: {tuple(dense_attn.shape)}; "
      f"attended features {tuple(sparse_out.shape)} ({layer.to_v.out_features} + 2 ab)")
print(f"learned temperature tau = {layer.log_temperature.exp().item():.4f}")

# %% [markdown]
# ## 3. Dense and sparse, side by side
#
# One query point of the target (the cross-hair) and its row of the attention,
# $a_{i\cdot}$, drawn over the reference. Dense attention may look anywhere; sparse
# attention only at the selected tokens (orange: top-k CAM, cyan: random). When the
# CAM's top-k misses the part of the reference the query needs, the random tokens are
# all that is left, and the match can go wrong.

# %%
def row_map(attention, indices, token):
    """Row `token` of the attention, scattered back onto the reference's token grid."""
    full = torch.zeros(n_tokens)
    full[indices[0] if indices is not None else slice(None)] = attention[0, token]
    return full.reshape(token_hw)


fig, axes = plt.subplots(1, 4, figsize=FIGSIZE)
show_image(axes[0], gray_l_to_rgb(gray_l)[0], "gray target, query point")
mark_point(axes[0], (query_x, query_y))
show_image(axes[1], ref_rgb, f"reference: top-{k} + {r} random")
mark_tokens(axes[1], indices[0, k:], token_hw[1], RANDOM_COLOR, "random")
mark_tokens(axes[1], indices[0, :k], token_hw[1], TOPK_COLOR, "top-k CAM")
axes[1].legend(loc="lower left", fontsize=7, framealpha=0.8)
overlay_map(axes[2], ref_rgb, row_map(dense_attn, None, query_token), f"dense attention ({n_tokens} tokens)")
overlay_map(axes[3], ref_rgb, row_map(sparse_attn, indices, query_token), f"sparse attention ({k + r} tokens)")
plt.tight_layout()
plt.show()
for name, attention in (("dense", dense_attn), ("sparse", sparse_attn)):
    top = attention[0, query_token].max().item()
    print(f"{name:>6}: largest weight of the query's row {top:.2f}")

# %% [markdown]
# The whole network with each kind of attention (the LDT decoder after the correspondence
# is notebook 06's and 07's subject). PSNR against the ground truth, since the reference
# is the target itself, warped. The checkpoint's config chooses the mode when a call
# does not (`model.config.dense`; the bundled one attends densely, see the conclusion),
# so we pass `dense=` explicitly.

# %%
network_sparse = model(gray_l, ref_lab, dense=False, k=k, r=r, seed=seed, return_attention=True)
network_dense = model(gray_l, ref_lab, dense=True)
results = {
    "coarse (GCT)": network_dense.ab_coarse,
    f"sparse, k = {k}, r = {r}": network_sparse.ab_fine,
    "dense": network_dense.ab_fine,
}
fig, axes = plt.subplots(1, 4, figsize=FIGSIZE)
for ax, (name, ab) in zip(axes, results.items()):
    rgb = lab_norm_to_rgb(join_lab(gray_l, ab))[0]
    show_image(ax, rgb, f"{name}: {psnr(rgb, truth):.1f} dB")
show_image(axes[3], truth, "ground truth")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Sparse with k + r = N is dense
#
# The selection caps $k + r$ at $N$; when it keeps every token, the softmax runs over
# the same set as dense attention, only in another order, and a sum does not care
# about order. So the attended features must be equal, and the attention weights equal
# up to that reordering of the columns.

# %%
# NBVAL_CHECK_OUTPUT
everything = select_tokens(cam, n_tokens // 2, n_tokens - n_tokens // 2, torch.Generator().manual_seed(seed))
all_out, all_attn = layer(query, key, ref_ab, everything, return_attention=True)
package_dense, package_dense_attn = layer(query, key, ref_ab, None, return_attention=True)
print("k + r = N selects every token once:", torch.equal(everything[0].sort().values, torch.arange(n_tokens)))
print("sparse with k + r = N equals dense (attended features):", torch.allclose(all_out, package_dense, atol=1e-5))
print("... and the attention weights, columns reordered:",
      torch.allclose(package_dense_attn[0][:, everything[0]], all_attn[0], atol=1e-5))
full_sparse = model(gray_l, ref_lab, dense=False, k=n_tokens // 2, r=n_tokens - n_tokens // 2, seed=seed).ab_fine
print("... and the whole network's result:", torch.allclose(full_sparse, network_dense.ab_fine, atol=1e-5))

# %% [markdown]
# ## 5. What sparsity buys: time and memory against image size
#
# Dense attention builds an $N \times N$ matrix of logits and another of weights: with
# $N = (S/4)^2$ for an $S \times S$ image, memory grows as $S^4$. Sparse attention builds
# $N \times (k + r)$, which grows as $S^2$ for fixed $k$ and $r$. We run the bundled
# model's `Correspondence` on random tokens of each size, in one query chunk (the
# textbook computation; the package splits the queries into chunks of 4,096 to cap
# dense memory at large sizes), and record
#
# - the median time of a forward pass (after a warm-up run), and
# - the peak memory of the tensors it creates: a `TorchFunctionMode` sees every tensor
#   that a torch function returns, adds its bytes while it lives and subtracts them when
#   it is freed. That counts the tensors, on any device, but not the allocator's
#   overhead or an operator's internal scratch space.
#
# `python benchmarks/bench_attention.py` measures the same step as a whole process
# (peak resident memory on the CPU, `max_memory_allocated` on a GPU), forward and
# backward, up to 512 px.

# %%
class TensorMemory(TorchFunctionMode):
    """Peak bytes of the tensors alive at once among those created inside the `with` block."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._sizes = {}  # storage address -> bytes, for the storages alive now

    def _free(self, address):
        self.live -= self._sizes.pop(address, 0)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        pending = [out]
        while pending:
            item = pending.pop()
            if isinstance(item, (tuple, list)):
                pending.extend(item)
            elif isinstance(item, torch.Tensor):
                storage = item.untyped_storage()
                address = storage.data_ptr()
                if address in self._sizes or storage.nbytes() == 0:  # a view of a tensor already counted
                    continue
                self._sizes[address] = storage.nbytes()
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
                weakref.finalize(storage, self._free, address)
        return out


def median_seconds(step, repeats):
    step()  # warm-up: the first call pays for one-off set-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


cost = {"dense": [], "sparse": []}
for bench_size in bench_sizes:
    n = (bench_size // 4) ** 2
    generator = torch.Generator().manual_seed(seed)
    q_b, k_b = torch.randn(1, n, key.shape[-1], generator=generator), torch.randn(1, n, key.shape[-1], generator=generator)
    ab_b, cam_b = torch.randn(1, n, 2, generator=generator), torch.rand(1, n, generator=generator)
    for mode in cost:
        def step():
            chosen = None if mode == "dense" else select_tokens(cam_b, k, r, torch.Generator().manual_seed(seed))
            return layer(q_b, k_b, ab_b, chosen, chunk_size=n)

        seconds = median_seconds(step, bench_repeats)
        with TensorMemory() as memory:
            step()
        cost[mode].append((seconds, memory.peak / 2**20))
    (dense_s, dense_mb), (sparse_s, sparse_mb) = cost["dense"][-1], cost["sparse"][-1]
    print(f"{bench_size:>4} px, N = {n:>5}: dense {dense_s * 1e3:7.1f} ms {dense_mb:7.1f} MB | "
          f"sparse {sparse_s * 1e3:6.1f} ms {sparse_mb:6.2f} MB | dense / sparse: "
          f"{dense_s / sparse_s:4.1f}x time, {dense_mb / sparse_mb:5.1f}x memory")

fig, axes = plt.subplots(1, 2, figsize=(FIGSIZE[0], 3.0))
for mode, color in (("dense", "tab:red"), ("sparse", TOPK_COLOR)):
    seconds, megabytes = zip(*cost[mode])
    axes[0].plot(bench_sizes, [1e3 * s for s in seconds], marker="o", color=color, label=mode)
    axes[1].plot(bench_sizes, megabytes, marker="o", color=color, label=mode)
axes[0].set(xlabel="image size (px per side)", ylabel="ms per forward pass", yscale="log", title="time")
axes[1].set(xlabel="image size (px per side)", ylabel="peak tensor memory (MB)", yscale="log",
            title=f"memory (sparse: k + r = {k + r})")
for ax in axes:
    ax.set_xticks(bench_sizes)
    ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Measured on this notebook's machine (CPU, in smoke mode only the two smallest sizes);
# at small sizes fixed costs (the projections, which both modes share) dominate, and
# the gap opens as $N$ grows.
#
# ## 6. Which similarity: cosine with a learned temperature, not dot / sqrt(d)
#
# The paper prints Formula 2 with a scaled dot product. The authors' released code
# instead correlates normalised features with a sharp temperature, and this package's
# prototype measured the difference (docs/DESIGN.md; width 0.25, 96 px, k = r = 64 of 576
# tokens, 4,000 Imagenette photos with TPS references, validation PSNR on 300):
#
# | attention | values carried | after 8 min | after 15 min | after 25 min |
# | --- | --- | --- | --- | --- |
# | dot product / sqrt(d) | features only | 24.9 dB | 26.1 dB | 26.6 dB (plateau) |
# | cosine / temperature 0.02 (learned) | features + the reference's ab | 29.6 dB | 30.0 dB | 30.5 dB |
#
# (Copying the reference's ab at the same pixel scores 28.0 dB on the same photos.)
# **The bundled model uses cosine similarity** (`similarity="cosine"`, the default of
# `SSCNConfig`); `similarity="dot"` gives Formula 2 as printed. One reason shows at
# initialisation: with small random projections the dot product over $\sqrt{d}$ is close
# to 0 for every pair, so each query's softmax is almost uniform and $f^a_i$ is the
# average of the whole reference; cosine over $\tau = 0.02$ spreads the logits over
# $[-50, 50]$, so the attention is selective from the first step and the gradient can
# tell good matches from bad. The effective number of tokens a query attends to,
# $\exp(\text{entropy of } a_{i\cdot})$, makes this visible:

# %%
from sscn.models.attention import Correspondence  # noqa: E402


def effective_tokens(attention):
    """exp(entropy) of each attention row, averaged over the queries: 1 = one token, S = uniform."""
    entropy = -(attention * attention.clamp_min(1e-12).log()).sum(-1)
    return entropy.exp().mean().item()


for similarity in ("dot", "cosine"):
    torch.manual_seed(seed)
    fresh = Correspondence(key.shape[-1], layer.to_q.out_features, layer.to_v.out_features, similarity)
    _, attention = fresh(query, key, ref_ab, None, return_attention=True)
    print(f"untrained, {similarity:>6}: a query attends to about {effective_tokens(attention):6.1f} of {n_tokens} tokens")
print(f"bundled (trained), cosine: a query attends to about {effective_tokens(dense_attn):6.1f} of {n_tokens} tokens")

# %% [markdown]
# ## 7. The k / r explorer
#
# `sscn.explorer.KRExplorer` puts it all together: pick a target and a reference
# (a seeded TPS, rotation or crop of the target, or another photo), move k, r and the
# query point, and see the selected tokens, the query's attention and the result. It
# runs the encoder, GCT and the CAM once per (target, reference) pair and only the
# selection, the attention and the decoder when k or r move, so the sliders answer in
# a fraction of a second. The figure is a PNG in an `ipywidgets.Image`, so it also
# works in Voila (`voila notebooks/05_semantic_sparse_attention.ipynb`). In a
# notebook saved without its kernel the widget is not live; the views below are static
# copies. `sscn.explorer.render(model, target, reference, k, r, query_xy, size)` gives
# the same view without widgets.

# %%
from sscn.explorer import KRExplorer  # noqa: E402

explorer = KRExplorer(model, photos, size=size, target=target_name, reference=reference,
                      k=k, r=r, query_xy=(query_x, query_y), seed=seed)
explorer

# %% [markdown]
# Settings set from code, as a slider would: the CAM's top 16 tokens alone, the top 16
# with 16 random ones, the bundled model's k and r (and, in a full run, dense
# attention). The first and the last view are shown below.

# %%
# NBVAL_CHECK_OUTPUT
views = [dict(k=16, r=0), dict(k=16, r=16), dict(k=k, r=r)]
if not SMOKE:
    views.append(dict(dense=True))
pictures = []
for settings in views:
    view = explorer.update(**settings)
    pictures.append(view["png"])
    print(f"{settings}: {len(view['topk'])} top-k + {len(view['random'])} random tokens selected, "
          f"query token {view['query_token']}")
print("encoder passes for all views:", explorer.prepare_count)

# %%
for picture in (pictures[0], pictures[-1]):
    display(Image(data=picture))

# %% [markdown]
# Things to try: the `tps_violent` reference (the layout is folded: does the query
# still find its match, and with which k?); a photo of something else as the reference
# (`coffee`: there is nothing semantic to match, so how much of the result comes from
# the global style?); k = 0 with a growing r (random tokens alone); the query on a
# background position.
#
# ## 8. The package version
#
# `sscn.models.attention.Correspondence` is the draft of section 2 as a module: it
# gathers the selected keys before any product (memory $O((k + r) N)$) and processes
# the queries in chunks, so no $N \times N$ matrix is ever needed for sparse attention
# and none larger than chunk x N for dense. `SSCN.tokens` is `tokens_draft`.

# %%
# NBVAL_CHECK_OUTPUT
# the package scales the queries before the product, the draft scales the logits: the
# same numbers up to float rounding, which the sharp softmax (1 / tau, about 70) magnifies
package_out, package_attn = layer(query, key, ref_ab, indices, return_attention=True)
print("attention_draft == sscn Correspondence (sparse):",
      torch.allclose(sparse_out, package_out, atol=1e-5) and torch.allclose(sparse_attn, package_attn, atol=1e-4))
print("attention_draft == sscn Correspondence (dense):", torch.allclose(dense_out, package_dense, atol=1e-5))
print("tokens_draft == SSCN.tokens:", torch.allclose(query, model.tokens(coarse_feats, token_hw)))
chunked, _ = layer(query, key, ref_ab, None, chunk_size=100)
print("query chunks change nothing:", torch.allclose(chunked, package_dense, atol=1e-6))
print("the network selects the same tokens and weights:",
      torch.equal(network_sparse.indices, indices) and torch.allclose(network_sparse.attention, package_attn, atol=1e-6))
print("attention rows sum to 1:", torch.allclose(sparse_attn.sum(-1), torch.ones(1, n_tokens), atol=1e-5))
print("bundled model's similarity:", model.config.similarity)

# %% [markdown]
# ## Conclusion
#
# - The correspondence compares $d$-dimensional tokens (levels 1-4 of the encoder on
#   the $H/4 \times W/4$ grid) of the coarse target and of the reference; each target
#   token takes a softmax-weighted mix of the reference's values and colours
#   (Formulas 2-3).
# - Semantic-sparse attention keeps the CAM's top-k tokens and r random ones: memory
#   $O((k + r) N)$ instead of $O(N^2)$. With $k + r = N$ it is dense attention exactly.
# - Sparsity is a bet on the CAM. At this small scale the prototype in docs/DESIGN.md scored
#   higher with dense attention at inference (32.7 dB dense against 31.3 dB sparse at
#   128 px, same weights), while the paper reports sparse ahead at 256 px. The bundled
#   checkpoint is trained sparse (k = r = 64) and attends densely at inference by
#   default (`model.config.dense`; `sscn colorize --sparse` or `dense=False` switch);
#   notebook 08 measures k and r on the evaluation set.
# - The bundled model compares tokens by cosine similarity over a learned temperature,
#   which learned the correspondence much faster than the printed dot product.
#
# ## References
#
# - Y. Bai, C. Dong, Z. Chai, A. Wang, Z. Xu, C. Yuan. Semantic-Sparse Colorization Network
#   for Deep Exemplar-based Colorization. ECCV 2022 (Sec. 3.2, Formulas 2-3).
# - A. Vaswani et al. Attention is all you need. NeurIPS 2017 (scaled dot-product attention).
# - B. Zhang, M. He, J. Liao, P. V. Sander, L. Yuan, A. Bermak, D. Chen. Deep exemplar-based
#   video colorization. CVPR 2019 (correlation with a temperature for correspondence).
# - B. Zhou, A. Khosla, A. Lapedriza, A. Oliva, A. Torralba. Learning deep features for
#   discriminative localization. CVPR 2016.
