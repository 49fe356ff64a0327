#!/usr/bin/env bash
# Train the bundled default model (docs/default-model.md says what it is and how it was chosen).
#
#   OUT=/some/folder bash packaging/train_default.sh gpu   # on a GPU: ~7 minutes, the default and the noise-mix
#                                                          # candidate side by side; models and logs go to $OUT
#   bash packaging/train_default.sh cpu                    # the default's recipe on a CPU, a fixed step count;
#                                                          # about 40 hours on 2 cores; rerun the same line to resume
#   OUT=/some/folder CHECKPOINT=runs/chain bash packaging/train_default.sh chain
#                                                          # one session (SESSION_MINUTES, default 9) of the camera-
#                                                          # noise recipe, a run that adds up over sessions and
#                                                          # machines: the checkpoint (parts of <= 15 MiB) is copied
#                                                          # to $OUT/chain; carry it back as CHECKPOINT next time
#
# Data: ../shared/data/train/cbsd432 only (never a benchmark set). A lent GPU machine has no ../shared, so the gpu
# mode reads data/cbsd432 inside the repository (a git-ignored copy, named in the device run's `carry`). There the
# engine runs from the checkout with that machine's Python and torch (PYTHONPATH=.); the packages it lacks (the
# device tool's KINDS.md lists what is there: of ours, platformdirs is missing) travel as wheels in .whl, as the
# device tool's README describes.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
if [[ -x .venv/bin/denoiser ]]; then default_cli=.venv/bin/denoiser; else default_cli="python3 -m denoiser"; fi
if [[ -x .venv/bin/python ]]; then PYTHON=${PYTHON:-.venv/bin/python}; else PYTHON=${PYTHON:-python3}; fi
DENOISER=${DENOISER:-$default_cli}
# The default's recipe: a 2.3 M-parameter U-Net, Gaussian noise rounded and clipped to 8 bits, batches of 64
# patches of 128 x 128, the seeded 3 % validation split of every earlier default.
recipe=(--family unet --widths 32,64,128,256 --quantize --validation-fraction 0.03 --seed 0
        --batch-size 64 --patch 128 --validation-every 500)
case "$mode" in
  gpu)
    out=${OUT:-runs/gpu}
    work=${WORK:-/tmp/denoiser-gpu}  # checkpoints stay on the machine: they are too big to come back
    mkdir -p "$out" "$work"
    export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
    gpu=(--clean data/cbsd432 "${recipe[@]}" --minutes "${MINUTES:-6}" --checkpoint-every 1000
         --device "${DEVICE:-cuda}" --workers "${WORKERS:-7}")
    $DENOISER train "${gpu[@]}" --noise gaussian \
      --checkpoint "$work/gauss" --out "$out/default-gauss.safetensors" >"$out/gauss.log" 2>&1 &
    $DENOISER train "${gpu[@]}" --noise gaussian,poisson_gaussian,correlated,jpeg \
      --checkpoint "$work/mix" --out "$out/default-mix.safetensors" >"$out/mix.log" 2>&1 &
    wait || true
    for name in gauss mix; do  # a run that died before saving: keep its best weights so far
      [[ -f "$out/default-$name.safetensors" ]] ||
        $PYTHON benchmarks/export_checkpoint.py "$work/$name" "$out/default-$name.safetensors" || true
    done
    ;;
  cpu)
    # --steps instead of --minutes: the GPU run's 9571 steps, with the cosine schedule over them from the start.
    exec nice -n 19 $DENOISER train --clean ../shared/data/train/cbsd432 "${recipe[@]}" --noise gaussian \
      --steps 9571 --checkpoint-every 20 --workers 1 --checkpoint runs/default-cpu --out runs/default-cpu.safetensors
    ;;
  chain)
    # Camera noise, float and 16-bit noise made on the training device, plus the training part of the PolyU pairs;
    # luminance and colour noise apart: run 4's mix (docs/default-model.md), clipped 8-bit noise at twice the weight.
    # A fixed step count (STEPS) fixes the schedule for the whole chain: 14000 steps of 64 patches is about 9-10
    # minutes on one H200 (run 1 did 9571 in 6), so one lent session can finish an annealed model, and a session
    # cut short is finished by the next. --split-seed 0 holds out the split every default has held out.
    out=${OUT:-runs/chain-out}
    checkpoint=${CHECKPOINT:-runs/chain}
    mkdir -p "$out" "$checkpoint"
    export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
    if [[ -f "$out/default-chain.safetensors" ]]; then
      echo "the chained run is complete: $out/default-chain.safetensors" >&2
      exit 0
    fi
    status=0
    $DENOISER train --clean "${CLEAN:-data/cbsd432}" --add-pairs "${PAIRS:-data/polyu}" --pair-share 0.2 \
      --synthesis "${MIX:-gaussian_clipped=2,gaussian_float=1,gaussian_16bit=0.25,gaussian_varying=0.25,camera=1}" \
      --noise-channels 2 --from "${FROM:-default}" --lr "${LR:-3e-4}" --validation-fraction 0.03 --seed "${SEED:-0}" \
      --split-seed 0 --batch-size "${BATCH:-64}" --patch 128 --validation-every "${VALIDATE_EVERY:-1000}" \
      --steps "${STEPS:-14000}" --session-minutes "${SESSION_MINUTES:-9}" --checkpoint-every 500 \
      --device "${DEVICE:-cuda}" --workers "${WORKERS:-4}" --checkpoint "$checkpoint" \
      --out "$out/default-chain.safetensors" >>"$out/chain.log" 2>&1 || status=$?
    rm -rf "$out/chain" && cp -r "$checkpoint" "$out/chain"   # the parts travel back through $OUT
    [[ -f "$out/default-chain.safetensors" ]] ||
      $PYTHON benchmarks/export_checkpoint.py "$checkpoint" "$out/default-chain-so-far.safetensors" || true
    # 75: this session's time is up and the run goes on next time; anything else but 0 is a failure.
    [[ $status -eq 0 || $status -eq 75 ]] || exit "$status"
    ;;
  *)
    echo "usage: $0 gpu|cpu|chain" >&2
    exit 2
    ;;
esac
