"""Save a training run's checkpoint as a model file, to benchmark a long run before it ends.

Run: ``python benchmarks/export_checkpoint.py runs/default-cpu runs/cpu-now.safetensors [--weights best|model]``,
then ``denoiser bench --model runs/cpu-now.safetensors --sets kodak24 --limit 4``.
"""

from __future__ import annotations

import argparse

from denoiser.checkpoints import device_minutes, model_from_checkpoint
from denoiser.modelfile import ModelInfo, save_model


def main() -> None:
    """Export the checkpoint's best (default) or current weights and print the run's validation history.

    Reads either checkpoint layout: ``checkpoint.json`` with its part files, or the single ``checkpoint.safetensors``
    of earlier versions."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="the run's --checkpoint folder")
    parser.add_argument("out", help="the .safetensors file to write")
    parser.add_argument("--weights", choices=("best", "model"), default="best")
    args = parser.parse_args()
    model, meta = model_from_checkpoint(args.checkpoint, args.weights)
    step, runs = meta["state"]["step"], meta["state"].get("runs", [])
    info = ModelInfo(name=f"checkpoint-step-{step}", family=model.family, config={},
                     training={**meta["config"], "steps_done": step, "device_minutes": device_minutes(runs),
                               "runs": runs, "exported": args.weights})
    path = save_model(model, args.out, info)
    history = [(r["step"], round(r["val_psnr"], 2)) for r in meta["state"]["history"] if "val_psnr" in r]
    print(f"step {step}: {args.weights} weights -> {path}\nvalidation (step, PSNR): {history}")


if __name__ == "__main__":
    main()
