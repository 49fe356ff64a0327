"""Photos whose colour is stored at a lower resolution than their brightness (chroma subsampling), told from their
pixels, and the noise level auto reads in them.

Nearly every JPEG (4:2:0 or 4:2:2), most HEICs and AVIFs keep the two colour (chroma) planes at half the
resolution and interpolate them back when the photo is opened. Whatever colour noise the photo held loses its
pixel-scale part, and the noise left at that scale is the same in red, green and blue: luminance noise only. Both
of auto's readers tell noise from picture detail by its being independent between the colour channels (the PCA
estimate takes the smallest eigenvalues of 7 x 7 x 3 patches, the noise-map network learnt noise that is), so both
read such a photo as nearly clean: a CBSD432 photo with noise of sigma 20, saved as a 4:2:0 JPEG of quality 92, read
0.4 (the network) and 0.6 (PCA) where the same photo saved 4:4:4 read 21.

:func:`check_chroma` measures, in the same 7 x 7 patches, the luminance's noise on its own (the weak-textured
patches' PCA estimate, :func:`~denoiser.noise_estimation.weak_texture_noise`, which grass and fur do not fool as
they fool the plain estimate of one channel) and the chroma's (the PCA estimate of the two opponent colour channels). A
photo whose chroma holds under :data:`SUBSAMPLED_SHARE` of the luminance's noise level has had its colour
subsampled (or its colour noise otherwise smoothed away, as a low JPEG quality does), and
:func:`luminance_only_levels` gives the map the model should be given for the luminance noise it holds. Photos
whose chroma holds its noise (PNGs, 4:4:4 JPEGs, 16-bit files, RAW developments) are not subsampled by this
test, and auto's reading of them does not change. The test needs no file format: it covers any decoded photo,
whatever decoder upsampled its chroma and however it did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from denoiser.noise import MAX_SIGMA
from denoiser.noise_estimation import (
    PATCH,
    patch_matrix,
    pca_noise,
    to_255,
    unclipped_sigma,
    weak_texture_noise,
    workable_patch,
)

__all__ = ["CLEAN_LUMINANCE", "LUMINANCE_ONLY_MAP", "SUBSAMPLED_SHARE", "ChromaCheck", "check_chroma",
           "luminance_only_levels"]

SUBSAMPLED_SHARE = 0.5
"""A photo's chroma counts as subsampled when its PCA noise level is under this share of the luminance's
(:attr:`ChromaCheck.luminance_noise`). White noise of sigma ``s`` reads ``s`` in the chroma and ``s / sqrt(3)`` in
the luminance, a ratio of 1.7. Measured on the 13 photos held out of CBSD432 with noise of sigma 5 to 30: 1.5 to
3.3 for PNGs and 4:4:4 JPEGs of quality 92 (once 0.64: a textured photo at sigma 5, whose JPEG took a third of the
colour noise); 0.02 to 0.33 for 4:2:0 and 4:2:2 JPEGs of quality 92 and 75, HEICs and AVIFs of quality 90 at
sigma 10 to 30, up to 0.74 at sigma 5."""

LUMINANCE_ONLY_MAP = (1.75, 1.5)
"""The (luminance, colour) map the model is given for a subsampled photo whose luminance noise reads ``g`` (less
:data:`CLEAN_LUMINANCE`): ``(1.75 g, 1.5 g)``, at least (the reader's own map is kept where it is higher).

White noise of sigma ``s`` leaves ``g = 0.67 s`` in the luminance of a 4:2:0 photo (Rec. 601 luma's share; the
chroma's noise is averaged away, and JPEG's coarse chroma quantisation takes most of the rest), and the bundled
model cleans such photos best when told about ``(1.2 s, 1 s)``, the level of the noise before the JPEG, as it learnt
JPEG'd camera photos. Measured with the bundled default on photos held out of CBSD432 (sigma 10, 20 and 30, saved
as 4:2:0 JPEGs of quality 75 and 92; PSNR against the clean photo, averaged over the six cases): told the true
sigma's ``(a s, b s)`` for a in 0.75-2 and b in 0.5-2 (7 photos), ``(1.25 s, 1 s)`` was best (30.19 dB; auto before,
25.8); told ``(a g, b g)`` of the reading (the other 6 photos), ``(1.75 g, 1.5 g)`` gave 31.80 dB (auto before,
25.94), ``(1.75 g, 1.75 g)`` 31.85, ``(1.9 g, 1.5 g)`` 31.74, ``(1.6 g, 1.5 g)`` 31.68, ``(2 g, 1.25 g)`` (the
grey photos' map) 31.54, ``(1.5 g, 1.5 g)`` 31.41: a flat top."""

CLEAN_LUMINANCE = 2.0
"""What the luminance of a clean subsampled photo reads (sigma, 0-255 units): its grain and finest texture, which
the luminance alone cannot tell from noise. :func:`luminance_only_levels` takes it away from the reading (in
quadrature, as independent noises add) before scaling it, so a clean photo is left to the reader's own map.

It is about the median reading (2.1) of the clean CBSD432 training photos found subsampled (7 of 80 drawn at random,
as they are; 15 of the 80 once saved again as 4:2:0 JPEGs of quality 92). On those 80 photos it halves what auto
changes in a clean photo (PSNR of the result against the photo, averaged over all 80: -0.26 dB without it, -0.12
with it; saved again, -1.28 and -0.79), and costs at most 0.1 dB on noisy photos (6 held-out photos; 4:2:0 JPEGs of
quality 92 and 75 and HEICs of quality 90, at sigma 5 and 10: 37.94 -> 37.84 dB at sigma 5 and quality 92, where auto
before gave 36.33)."""


@dataclass(frozen=True)
class ChromaCheck:
    """What :func:`check_chroma` read: the noise of a colour photo's luminance and of its chroma, apart."""

    luminance_noise: float
    """The luminance's (the channels' mean) noise level, sigma in 0-255 units, read in weak-textured patches;
    white noise of sigma ``s`` reads ``s / sqrt(3)``, and ``0.67 s`` once its chroma was subsampled."""
    chroma_noise: float
    """The PCA noise level of the two opponent colour channels (``(R - B) / sqrt 2``, ``(R - 2G + B) / sqrt 6``),
    0-255 units: ``s`` for white noise, about 0 when the chroma was subsampled."""

    @property
    def subsampled(self) -> bool:
        """Whether the chroma holds far less noise than the luminance: its colour was subsampled."""
        return self.chroma_noise < SUBSAMPLED_SHARE * self.luminance_noise


_SQRT2, _SQRT6 = math.sqrt(2.0), math.sqrt(6.0)
_CHROMA = np.array([[1 / _SQRT2, 0.0, -1 / _SQRT2], [1 / _SQRT6, -2 / _SQRT6, 1 / _SQRT6]])


def check_chroma(pixels: np.ndarray, *, max_patches: int = 60000, seed: int = 0) -> ChromaCheck | None:
    """The luminance and chroma noise of a colour photo (H x W x 3 or more channels, the first three RGB; uint8,
    uint16 or float in 0-1), read in the same seeded 7 x 7 patches (at most ``max_patches``; a photo of any size
    costs the same). None for a photo too small for the 7 x 7 patches of
    :func:`~denoiser.noise_estimation.estimate_noise`.

    Only the patches are converted to floats: a float copy of a 24-megapixel photo would cost 576 MB.
    """
    rgb = pixels[:, :, :3]
    if workable_patch(rgb.shape[0], rgb.shape[1], 3) != (PATCH, PATCH):
        return None
    patches = to_255(patch_matrix(rgb, (PATCH, PATCH), max_patches, seed)).reshape(-1, PATCH, PATCH, 3)
    grey = patches.mean(axis=3)
    luminance = weak_texture_noise(grey)
    if rgb.dtype.kind != "f" or (rgb.min() >= 0 and rgb.max() <= 1):  # clipped at black and white: undo it
        luminance = unclipped_sigma(luminance, grey.reshape(len(grey), -1).mean(axis=1))
    chroma = pca_noise((patches @ _CHROMA.T).reshape(len(patches), -1))
    return ChromaCheck(float(luminance), float(chroma))


def luminance_only_levels(check: ChromaCheck) -> np.ndarray | None:
    """The 1 x 1 x 2 (luminance, colour) map, sigma in 0-255 units, that :data:`LUMINANCE_ONLY_MAP` makes of a
    subsampled photo's luminance noise less :data:`CLEAN_LUMINANCE`, at most :data:`~denoiser.noise.MAX_SIGMA`;
    None when the photo is not subsampled or its luminance reads no more than a clean photo's."""
    if not check.subsampled or check.luminance_noise <= CLEAN_LUMINANCE:
        return None
    noise = math.sqrt(check.luminance_noise**2 - CLEAN_LUMINANCE**2)
    levels = np.array(LUMINANCE_ONLY_MAP, np.float32) * np.float32(noise)
    return np.minimum(levels, np.float32(MAX_SIGMA)).reshape(1, 1, 2)
