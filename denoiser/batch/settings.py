"""What a denoise does to each photo and what a batch covers: strength, tiles, output name pattern, format, policy.

The settings that shape an output (:meth:`DenoiseSettings.output_signature`) are what a rerun compares with the
manifest; the others (:meth:`BatchSettings.run_options`) are only recorded.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from denoiser.errors import DenoiserError, UnknownNameError
from denoiser.inference import TileSettings
from denoiser.io.formats import result_extension
from denoiser.strength import Strength

DEFAULT_PATTERN = "{stem}_denoised"
MANIFEST_NAME = "denoiser-manifest.json"
MANIFEST_VERSION = 1

COLLISION_POLICIES = ("unique", "skip", "overwrite")
"""What to do when an output file already exists: number a new name, leave the file alone, or replace it."""

OUTPUT_FORMATS: dict[str, tuple[str | None, int | None]] = {
    "same": (None, None),
    "png": (".png", None),
    "jpeg": (".jpg", None),
    "tiff": (".tif", None),
    "tiff16": (".tif", 16),
    "webp": (".webp", None),
    "bmp": (".bmp", None),
    "heic": (".heic", None),
    "avif": (".avif", None),
}
"""Output format name -> (file extension, forced bit depth); None keeps the input's extension / depth (camera RAW
inputs, which are never written, give 16-bit TIFF)."""

FORMAT_ALIASES = {"jpg": "jpeg", "tif": "tiff", "heif": "heic"}

def normalize_format(name: str) -> str:
    """The canonical output format name for ``name`` (``jpg`` -> ``jpeg``, ``tif`` -> ``tiff``)."""
    key = FORMAT_ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in OUTPUT_FORMATS:
        raise UnknownNameError("output format", name, [*OUTPUT_FORMATS, *FORMAT_ALIASES])
    return key



PATTERN_FIELDS = ("stem",)
"""The fields an output name pattern may use: ``{stem}``, the input's name without its extension."""
SAMPLE_STEM = "IMG_0001"
"""The stem a pattern is tried with before any work, so that a pattern giving no usable name is refused up front."""


def output_name(pattern: str, stem: str) -> str:
    """The result's name (without extension) ``pattern`` gives for a photo named ``stem``; DenoiserError when that
    is not one file name inside the output folder: empty, ``.`` or ``..``, or holding a path separator
    (``{stem}/x``, ``../{stem}``, ``/tmp/{stem}``)."""
    name = pattern.format(stem=stem)
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise DenoiserError(f"output name pattern {pattern!r} gives {name!r} for a photo named {stem!r}: a "
                            "result's name holds no folder ('/' or '\\') and is not '.' or '..' (-o names the "
                            "folder)")
    return name


def check_pattern(pattern: str) -> None:
    """Refuse a name pattern that uses anything but the documented fields (``{stem.__class__}``, ``{0}``,
    ``{stem!r}``...), or that gives a name outside the output folder (:func:`output_name`), with a message
    that says what is allowed."""
    try:
        parts = list(string.Formatter().parse(pattern))
    except ValueError as err:
        raise DenoiserError(f"output name pattern {pattern!r} is invalid ({err}); use {{stem}}") from err
    for _literal, name, spec, conversion in parts:
        if name is not None and (name not in PATTERN_FIELDS or spec or conversion):
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise DenoiserError(f"output name pattern {pattern!r} uses {shown}; the only field is {{stem}} "
                                "(the photo's name without its extension)")
    output_name(pattern, SAMPLE_STEM)


SIGNATURE_DEFAULTS: dict[str, Any] = {"passes": 1}
"""What an output signature leaves out when it is the default (see :meth:`DenoiseSettings.output_signature`)."""


def setting(signature: dict[str, Any], key: str) -> Any:
    """One value of an output signature, the default where the signature leaves it out."""
    return signature.get(key, SIGNATURE_DEFAULTS.get(key))


@dataclass
class DenoiseSettings:
    """What to do to each file."""

    strength: float | None = None
    """Noise level sigma in 0-255 units; None estimates it per image ("auto")."""
    amount: float = 1.0
    """Multiplies the noise level (auto's estimate or the fixed sigma): 1.0 is 100 %, at most 2.0."""
    luminance: float = 1.0
    """Multiplies the luminance noise level."""
    color: float = 1.0
    """Multiplies the colour noise level."""
    tiles: TileSettings = field(default_factory=TileSettings)
    device: str = "auto"
    pattern: str = DEFAULT_PATTERN
    """Output file name without extension; ``{stem}`` is the input's name without extension."""
    format: str = "same"
    """One of :data:`OUTPUT_FORMATS` (or an alias): ``same`` keeps each input's format and bit depth;
    ``tiff16`` writes 16-bit TIFF whatever the input's depth."""
    quality: int = 95
    """JPEG/WebP quality, 1-100."""
    keep_metadata: bool = True

    def __post_init__(self) -> None:
        self.format = normalize_format(self.format)
        check_pattern(self.pattern)
        self.strength_setting()  # refuses out-of-range amounts now, not at the first file

    def strength_setting(self) -> Strength:
        """The strength fields as one :class:`~denoiser.strength.Strength`."""
        return Strength(self.strength, self.amount, self.luminance, self.color)

    @property
    def bit_depth(self) -> int | None:
        """The bit depth the format forces (16 for ``tiff16``), None to keep the input's."""
        return OUTPUT_FORMATS[self.format][1]

    def extension_for(self, source: Path) -> str:
        """The output extension for ``source``: the format's, or the input's own for ``same`` (``.tif`` for a
        camera RAW file, which is never written)."""
        return OUTPUT_FORMATS[self.format][0] or result_extension(source)

    def output_signature(self) -> dict[str, Any]:
        """The settings that shape an output file's pixels, name or encoding, as plain JSON values.

        A file is only skipped as done when its manifest entry holds the same signature. Device, engine and
        batch size are left out: they change the speed, not the result (beyond float rounding). Passes (the
        self-ensemble) are in it when more than one, so that the manifests of single-pass batches, written before
        passes were recorded, still match.
        """
        passes = {"passes": self.tiles.passes} if self.tiles.passes != SIGNATURE_DEFAULTS["passes"] else {}
        return {
            **self.strength_setting().signature(),
            "tile": self.tiles.tile,
            "overlap": self.tiles.overlap,
            **passes,
            "pattern": self.pattern,
            "format": self.format,
            "quality": int(self.quality),
            "keep_metadata": bool(self.keep_metadata),
        }


@dataclass
class BatchSettings(DenoiseSettings):
    """A whole batch: what to denoise, where the results go, and how (the :class:`DenoiseSettings` fields)."""

    inputs: list[Path] = field(default_factory=list)
    """Image files and folders."""
    output: Path | None = None
    """Folder for the results and the manifest (created when missing)."""
    recursive: bool = True
    """Search folders' sub-folders too (their tree is kept under ``output``)."""
    collision: str = "unique"
    """One of :data:`COLLISION_POLICIES`. Whatever the policy, an input is never written over."""
    redo: bool = False
    """Denoise again files the manifest says were done with another model or other settings (else the batch
    stops before any work with :class:`~denoiser.errors.SettingsChanged`, saying what differs)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.inputs = [Path(p) for p in self.inputs]
        self.output = Path(self.output) if self.output is not None else None
        if self.collision not in COLLISION_POLICIES:
            raise UnknownNameError("collision policy", self.collision, COLLISION_POLICIES)

    def run_options(self) -> dict[str, Any]:
        """The settings that do not shape an output (recorded in the manifest, never compared)."""
        return {"device": self.device, "batch_size": self.tiles.batch_size, "collision": self.collision,
                "recursive": self.recursive, "redo": self.redo}

