#!/usr/bin/env bash
# The semantic SSCN on a lent GPU machine, in one command that ends within about 10 minutes:
#
#   bash tools/gpu_recipe.sh DATA OUT [extra tools/semantic_recipe.py flags]
#
# DATA is a packed copy of imagenette2-144 small enough to travel with the repository
# (python tools/pack_photos.py DATA/imagenette2-144 data/imagenette2-128 --size 128 --quality 80
# --val-limit 300: 8,653 photos, 40 MiB; data/ is git-ignored, so name it in what travels).
# The machine needs torch, Pillow, numpy and tqdm, and no package installs: the repository's
# sscn is imported from the working tree. OUT receives the eight flat files of
# semantic_recipe.py --bundle (both checkpoints in float16, their logs and summaries, the
# recipe) and log.txt. DEVICE=cpu and --tiny run the same path at toy size (the test suite does).
#
# Defaults: the pre-stage recipe (40 epochs) within 3 minutes, then SSCN for as many steps as
# 5 minutes allow, up to 4x the CPU recipe's 104,000 pairs; override with --epochs, --steps,
# --pretrain-minutes, --train-minutes.
set -euo pipefail
data=${1:?usage: bash tools/gpu_recipe.sh DATA OUT [flags]}
out=${2:?usage: bash tools/gpu_recipe.sh DATA OUT [flags]}
shift 2
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p "$out"
run=${RUN_DIR:-$(mktemp -d)}
export PYTHONUNBUFFERED=1
set -o pipefail
python tools/semantic_recipe.py --data "$data" --out "$run" --device "${DEVICE:-cuda}" --bundle "$out" --quiet \
    --pretrain-minutes 3 --train-minutes 5 --steps 13000 "$@" 2>&1 | tee "$out/log.txt"
