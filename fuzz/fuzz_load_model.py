"""Fuzz target for atheris (libFuzzer for Python): :func:`denoiser.modelfile.load_model_file` on arbitrary files.

An input is a model file and, optionally, the JSON description beside it: the first byte says which (even: the
weights file alone, description in its header; odd: the next 4 bytes, little-endian, give the length of a JSON
description that follows, and the rest is the weights file). A finding is any exception other than
:class:`~denoiser.errors.ModelLoadError`, a model returned with NaN or infinite weights, a crash, an input that runs
past ``-timeout``, or memory beyond ``-rss_limit_mb`` (a description must never make the loader allocate what the
file does not hold). See ``docs/fuzzing.md``::

    pip install atheris
    python fuzz/fuzz_load_model.py --write-seeds fuzz/corpus/models
    python fuzz/fuzz_load_model.py fuzz/corpus/models -max_total_time=3600 -timeout=20 -rss_limit_mb=2048

Importing this module needs neither atheris nor a fuzzing run: ``check`` is what the tests call on the seeds.
"""

from __future__ import annotations

import functools
import sys
import tempfile
from pathlib import Path


@functools.lru_cache(maxsize=1)
def _folder() -> Path:
    """A private temporary folder the inputs are written into (made on first use, not on import)."""
    return Path(tempfile.mkdtemp(prefix="denoiser-fuzz-"))


def encode(weights: bytes, description: bytes | None) -> bytes:
    """One fuzz input from a weights file and an optional JSON description (the layout :func:`decode` reads)."""
    if description is None:
        return b"\0" + weights
    return b"\1" + len(description).to_bytes(4, "little") + description + weights


def decode(data: bytes) -> tuple[bytes, bytes | None]:
    """The weights file and the JSON description (None: none) an input stands for."""
    if not data or data[0] % 2 == 0:
        return data[1:], None
    length = int.from_bytes(data[1:5], "little")
    return data[5 + length :], data[5 : 5 + length]


def seeds() -> dict[str, bytes]:
    """Tiny valid model files of every family, alone and with their JSON description."""
    import torch

    from denoiser.modelfile import ModelInfo, weights_bytes
    from denoiser.models import create_model, families

    found = {}
    for family in families():
        torch.manual_seed(0)
        config: dict = {"widths": [4, 8], "blocks": 1}
        if family not in ("unet", "nafnet"):
            config["latent_channels"] = 4
        model = create_model(family, config)
        info = ModelInfo(name=family, family=family, config=model.config.to_dict(), description="fuzz seed")
        tensors = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
        weights = weights_bytes(tensors, info)
        found[f"{family}-alone"] = encode(weights, None)
        found[f"{family}-with-json"] = encode(weights, (info.to_json_text() + "\n").encode())
    return found


def check(data: bytes, folder: Path | None = None) -> None:
    """Load the model ``data`` stands for (written into ``folder``, default a private temporary one): it must load
    with finite weights, or raise a ModelLoadError naming the file or its description; anything else raises, which
    atheris reports as a finding."""
    import torch

    from denoiser.errors import ModelLoadError
    from denoiser.modelfile import load_model_file

    weights, description = decode(data)
    path = (folder or _folder()) / "input.safetensors"
    sidecar = path.with_suffix(".json")
    path.write_bytes(weights)
    sidecar.unlink(missing_ok=True)
    if description is not None:
        sidecar.write_bytes(description)
    try:
        model, _info = load_model_file(path)
    except ModelLoadError as err:
        if err.path not in (path, sidecar):
            raise AssertionError(f"the error names {err.path}, not the file read") from err
        return
    for name, value in model.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise AssertionError(f"a model with non-finite weights ({name}) was loaded")


def write_seeds(folder: Path) -> None:
    """Write :func:`seeds` into ``folder`` (a corpus to start fuzzing from)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (folder / name).write_bytes(data)


def main(argv: list[str] | None = None) -> None:
    """``--write-seeds FOLDER``, or fuzz with libFuzzer's arguments (a corpus folder, ``-max_total_time``...)."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) == 3 and argv[1] == "--write-seeds":
        write_seeds(Path(argv[2]))
        return
    import atheris  # only needed to fuzz: pip install atheris
    import torch

    torch.set_num_threads(1)
    with atheris.instrument_imports():
        import denoiser.modelfile  # noqa: F401  (instrumented)
    atheris.Setup(argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
