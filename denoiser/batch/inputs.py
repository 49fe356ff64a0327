"""A batch's inputs: the image files it covers, each once, never its own outputs; and which inputs share a folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

from denoiser.batch.manifest import Manifest
from denoiser.batch.settings import DEFAULT_PATTERN, BatchSettings
from denoiser.io import find_images, is_image_path
from denoiser.io.formats import FORMAT_NAMES


def _is_under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def collect_inputs(settings: BatchSettings, manifest: Manifest | None = None) -> list[tuple[Path, Path | None]]:
    """The image files of the batch, each once, as (file, the folder its tree is kept relative to or None).

    Left out: files inside the output folder when that folder lies inside an input folder, files the manifest
    records as outputs, so a rerun never denoises its own results, and in an input folder the results that lie
    beside their photos (:func:`results_beside_their_photos`). A missing input raises ImageReadError.
    """
    out_dir = settings.output.resolve() if settings.output is not None else None
    skip = manifest.outputs() if manifest is not None else set()
    found: dict[Path, Path | None] = {}
    seen: set[Path] = set()  # resolved paths: a file named twice (itself and through its folder) runs once
    for item in settings.inputs:
        root = Path(item)
        is_folder = root.is_dir()
        # An output folder inside an input folder holds results, not photos to denoise again.
        nested_output = None
        if is_folder and out_dir is not None and out_dir != root.resolve() and _is_under(out_dir, root.resolve()):
            nested_output = out_dir
        images = find_images([root], recursive=settings.recursive)
        results = results_beside_their_photos(images, settings.pattern) if is_folder else set()
        for file in images:
            resolved = file.resolve()
            if resolved in skip or resolved in seen or file in results:
                continue
            if nested_output is not None and _is_under(resolved, nested_output):
                continue
            seen.add(resolved)
            found[file] = root if is_folder else None
    return list(found.items())


_NUMBERED = re.compile(r"-\d+$")


def results_beside_their_photos(files: list[Path], pattern: str = DEFAULT_PATTERN) -> set[Path]:
    """The files among ``files`` named as a result of a photo in the same folder: ``a_denoised.png`` (or
    ``a_denoised-2.jpg``) beside ``a.png``, as the app's Save and a batch into the photos' own folder name them
    (``pattern`` and the default). A batch over that folder would otherwise denoise them a second time."""
    # A pattern adds text to the stem ("{stem}" alone makes no new name), so a photo is never its own result.
    patterns = {p for p in (pattern, DEFAULT_PATTERN) if p.format(stem="") != ""}
    stems: dict[Path, set[str]] = {}
    for file in files:
        stems.setdefault(file.parent, set()).add(file.stem)
    made = {folder: {p.format(stem=stem) for stem in names for p in patterns} for folder, names in stems.items()}
    return {file for file in files if _NUMBERED.sub("", file.stem) in made[file.parent]}


def named_non_images(inputs: list[Path]) -> list[Path]:
    """The files among ``inputs`` (each once) that are not images by their extension. :func:`collect_inputs` leaves
    them out as it leaves out a folder's other files, but a file named on its own was asked for: it is to be
    reported (:func:`not_an_image`), not skipped without a word."""
    found: dict[Path, Path] = {}
    for item in inputs:
        path = Path(item)
        if path.is_file() and not is_image_path(path):
            found.setdefault(path.resolve(), path)
    return list(found.values())


def not_an_image(path: Path) -> str:
    """Why ``path``, named on its own, is not denoised: its extension is no image format's."""
    what = f"{path.suffix} is not an image extension" if path.suffix else "its name has no extension"
    return f"{path}: not an image file: {what} (supported: {FORMAT_NAMES}; 'denoiser formats' lists the extensions)"


class InputFolders:
    """The batch's inputs by folder, so each write checks only the inputs that could share its folder.

    write_image compares its target with every protected path (following links); with all the inputs of
    a 10,000-photo batch that would be 10^8 comparisons. An input is filed under its own folder and under
    the folder its links resolve to, so an output beside the real file is still checked against it. (A hard
    link elsewhere needs no check: the atomic write replaces the output's directory entry, not the shared
    data.)
    """

    def __init__(self, files: list[Path]) -> None:
        self.by_folder: dict[Path, list[Path]] = {}
        for file in files:
            for folder in {file.parent.absolute(), file.resolve().parent}:
                self.by_folder.setdefault(folder, []).append(file)

    def near(self, target: Path) -> list[Path]:
        """The inputs in ``target``'s folder (by path or by identity: links, case-insensitive names)."""
        parent = target.parent.absolute()
        found: list[Path] = []
        for folder, files in self.by_folder.items():
            if folder == parent or _same_folder(folder, parent):
                found.extend(files)
        return found


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # a folder that does not exist (yet) holds no input
        return False
