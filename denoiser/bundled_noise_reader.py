"""The noise reader auto uses: the shipped estimator through torch where torch is installed, else its exported
graph through ONNX Runtime (the desktop bundle, which leaves torch out)."""

from __future__ import annotations

import functools
import json

from denoiser.exported import sidecar_path, torch_available
from denoiser.noise_reader import NoiseReader, read_noise_map
from denoiser.resources import bundled_estimator_dir

__all__ = ["EXPORTED_ESTIMATOR", "bundled_noise_reader"]

EXPORTED_ESTIMATOR = "noise-map.onnx"


def bundled_noise_reader() -> NoiseReader | None:
    """The shipped estimator as a reader: the torch network where torch is installed, else its exported graph;
    None when this installation has neither."""
    if torch_available():
        from denoiser import estimator

        network = estimator.bundled_estimator()
        if network is None:
            return None
        return NoiseReader(functools.partial(estimator.estimate_map, network), network.reads_grey,
                           network.smallest_side)
    return _exported_reader()


@functools.lru_cache(maxsize=1)
def _exported_reader() -> NoiseReader | None:
    from denoiser.onnx_runtime import OnnxGraph, onnxruntime_available

    graph = bundled_estimator_dir() / EXPORTED_ESTIMATOR
    if not graph.is_file() or not onnxruntime_available():
        return None
    sidecar = sidecar_path(graph)
    reads_grey = bool(json.loads(sidecar.read_text(encoding="utf-8")).get("reads_grey")) if sidecar.is_file() \
        else False
    run = OnnxGraph(graph)
    return NoiseReader(functools.partial(read_noise_map, lambda tile: run(image=tile)), reads_grey)
