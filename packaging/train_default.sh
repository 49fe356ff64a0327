#!/usr/bin/env bash
# Train the candidate for the next bundled default model (the default-model issue).
#
#   bash packaging/train_default.sh cpu    # long CPU run with checkpoints; rerun the same line to resume
#   bash packaging/train_default.sh cpu-gaussian   # the same model on Gaussian noise only (runs/default-v3)
#   bash packaging/train_default.sh gpu    # on a lent GPU machine: ~7 minutes, two candidates, writes to $OUT
#
# Data: ../shared/data/train/cbsd432 only (never a benchmark set). The GPU machine has no ../shared, so the
# gpu mode reads data/cbsd432 inside the repository (a git-ignored copy, named in the device run's `carry`).
# There the engine runs from the checkout with that machine's Python and torch (PYTHONPATH=.); the packages
# it lacks (the device tool's KINDS.md lists what is there: of ours, platformdirs is missing) travel as
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
    # On a lent GPU machine (one call of about 8 minutes; see docs/default-model.md): two candidates side by side
    # on the one GPU, the same U-Net on Gaussian noise alone and on the full noise mix, both with the noisy
    # patches rounded and clipped to 8 bits as saved photos (and the benchmark protocol) are. Models and logs go
    # to $OUT (or runs/gpu); checkpoints to $WORK, which stays on that machine (they are too big to come back).
    out=${OUT:-runs/gpu}
    work=${WORK:-/tmp/denoiser-gpu}
    mkdir -p "$out" "$work"
    export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
    gpu=(--clean data/cbsd432 --family unet --widths 32,64,128,256 --quantize --validation-fraction 0.03 --seed 0
         --minutes "${MINUTES:-6}" --batch-size 64 --patch 128 --validation-every 500 --checkpoint-every 1000
         --device "${DEVICE:-cuda}" --workers "${WORKERS:-7}")
    $DENOISER train "${gpu[@]}" --noise gaussian \
      --checkpoint "$work/gauss" --out "$out/default-gauss.safetensors" >"$out/gauss.log" 2>&1 &
    $DENOISER train "${gpu[@]}" --noise gaussian,poisson_gaussian,correlated,jpeg \
      --checkpoint "$work/mix" --out "$out/default-mix.safetensors" >"$out/mix.log" 2>&1 &
    wait || true
    for name in gauss mix; do  # a run that died before saving: keep its best weights so far
      [[ -f "$out/default-$name.safetensors" ]] ||
        python3 benchmarks/export_checkpoint.py "$work/$name" "$out/default-$name.safetensors" || true
    done
    ;;
  *)
    echo "usage: $0 cpu|cpu-gaussian|gpu" >&2
    exit 2
    ;;
esac
