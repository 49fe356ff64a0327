#!/usr/bin/env bash
# Train the candidate for the next bundled default model (the default-model issue).
#
#   bash packaging/train_default.sh cpu    # long CPU run with checkpoints; rerun the same line to resume
#   bash packaging/train_default.sh cpu-gaussian   # the same model on Gaussian noise only (runs/default-v3)
#   bash packaging/train_default.sh gpu    # on a lent GPU machine: ~9 minutes, writes to $OUT (or runs/)
#
# Data: ../shared/data/train/cbsd432 only (never a benchmark set). The GPU machine has no ../shared, so the
# gpu mode reads data/cbsd432 inside the repository (a git-ignored copy, named in the device run's `carry`).
# There the engine runs from the checkout with that machine's Python and torch (PYTHONPATH=.); the packages
# it lacks (see the device tool's KINDS.md: safetensors, platformdirs, tqdm, tifffile, opencv...) travel as
# wheels in .whl, as the device tool's README describes.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-cpu}
if [[ -x .venv/bin/denoiser ]]; then default_cli=.venv/bin/denoiser; else default_cli="python3 -m denoiser"; fi
DENOISER=${DENOISER:-$default_cli}
common=(--family unet --widths 32,64,128,256 --noise gaussian,poisson_gaussian,correlated,jpeg
        --validation-fraction 0.03 --seed 0)
case "$mode" in
  cpu)
    exec nice -n 19 $DENOISER train --clean ../shared/data/train/cbsd432 "${common[@]}" \
      --steps 20000 --batch-size 16 --patch 96 --validation-every 500 --checkpoint-every 50 \
      --threads 1 --workers 1 --checkpoint runs/default-v2 --out runs/default-v2.safetensors
    ;;
  cpu-gaussian)
    # A fine-tune with the full mix never beat its start on Gaussian validation (docs/default-model.md): this
    # run tests whether the bigger model needs Gaussian-only training to beat CBM3D by 0.3 dB.
    exec nice -n 19 $DENOISER train --clean ../shared/data/train/cbsd432 --family unet --widths 32,64,128,256 \
      --noise gaussian --validation-fraction 0.03 --seed 0 \
      --steps 20000 --batch-size 16 --patch 96 --validation-every 500 --checkpoint-every 50 \
      --threads 1 --workers 1 --checkpoint runs/default-v3 --out runs/default-v3.safetensors
    ;;
  gpu)
    out=${OUT:-runs}
    export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
    exec $DENOISER train --clean data/cbsd432 "${common[@]}" \
      --minutes 9 --batch-size 64 --patch 128 --validation-every 1000 --checkpoint-every 1000 \
      --device cuda --workers 8 --checkpoint "$out/checkpoint" --out "$out/default-v2.safetensors"
    ;;
  *)
    echo "usage: $0 cpu|cpu-gaussian|gpu" >&2
    exit 2
    ;;
esac
