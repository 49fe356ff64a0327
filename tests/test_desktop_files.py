"""The Linux desktop files (``packaging/linux``), the icon set and the release metadata agree with the app.

The .desktop entry must start the installed GUI with the files it is given and claim the MIME type of every
extension the formats table reads (through ``packaging/linux/mime-types.txt``, the extension -> MIME table kept
beside it); the AppStream metainfo must name the same app, the MIT licence, screenshots that exist and the
package's version; the PNG icons must be renderings of the SVG at their sizes.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import denoiser
from denoiser.io.formats import FORMAT_TABLE
from denoiser.resources import app_icon_path

ROOT = Path(__file__).resolve().parent.parent
LINUX = ROOT / "packaging" / "linux"
APP_ID = "io.github.denoiser.Denoiser"
DESKTOP_FILE = LINUX / f"{APP_ID}.desktop"
METAINFO_FILE = LINUX / f"{APP_ID}.metainfo.xml"
MIME_TABLE = LINUX / "mime-types.txt"
SHARED_MIME_GLOBS = Path("/usr/share/mime/globs2")
SHARED_MIME_ALIASES = Path("/usr/share/mime/aliases")


def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign] - keys are case-sensitive in .desktop files
    parser.read(DESKTOP_FILE, encoding="utf-8")
    return parser["Desktop Entry"]


def listed(value: str) -> list[str]:
    """A .desktop list value (``a;b;c;``) as its items."""
    return [item for item in value.split(";") if item]


def mime_table() -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for line in MIME_TABLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            extension, *types = line.split()
            assert extension not in table, f"{extension} twice in {MIME_TABLE.name}"
            assert types, f"{extension} has no MIME type in {MIME_TABLE.name}"
            table[extension] = types
    return table


# --- the .desktop entry ---------------------------------------------------------------------------------------------


def test_the_desktop_entry_starts_the_installed_gui_with_the_files_it_is_given() -> None:
    entry = desktop_entry()
    assert entry["Type"] == "Application" and entry["Name"] == "Denoiser" and entry["Terminal"] == "false"
    program, *arguments = entry["Exec"].split()
    assert arguments == ["%F"]  # any number of files, as local paths: what `denoiser-gui PATH...` takes
    assert entry["TryExec"] == program
    gui_scripts = {point.name: point.value for point in importlib.metadata.entry_points(group="gui_scripts")}
    assert gui_scripts.get(program) == "ui.app:main"  # the launcher this package installs
    assert {"Graphics", "Photography"} <= set(listed(entry["Categories"]))


def test_the_desktop_entry_names_the_icon_that_the_icon_set_installs_as() -> None:
    from ui.icon import ICON_SIZES

    assert desktop_entry()["Icon"] == APP_ID  # docs/packaging.md installs denoiser-N.png under this name
    icons = app_icon_path().parent
    assert (icons / "denoiser.svg").is_file()
    assert all((icons / f"denoiser-{size}.png").is_file() for size in ICON_SIZES)


def test_every_extension_the_app_reads_has_its_mime_types_claimed() -> None:
    table = mime_table()
    readable = {extension for info in FORMAT_TABLE for extension in info.extensions}
    assert readable - table.keys() == set(), f"extensions without a line in {MIME_TABLE.name}"
    assert table.keys() - readable == set(), f"{MIME_TABLE.name} names extensions the app does not read"
    claimed = listed(desktop_entry()["MimeType"])
    assert len(claimed) == len(set(claimed))
    wanted = {mime for types in table.values() for mime in types}
    assert set(claimed) == wanted  # no type missing, and none the app would refuse
    assert all(re.fullmatch(r"image/[a-z0-9.+-]+", mime) for mime in claimed)


def test_the_system_mime_database_types_our_extensions_as_we_claim() -> None:
    """Where shared-mime-info is installed, the type it gives each extension is one the entry claims (else a file
    manager would not offer Denoiser for those files)."""
    if not SHARED_MIME_GLOBS.is_file():
        pytest.skip("shared-mime-info is not installed")
    aliases = {}
    if SHARED_MIME_ALIASES.is_file():
        aliases = dict(line.split() for line in SHARED_MIME_ALIASES.read_text().splitlines() if line.strip())
    system: dict[str, set[str]] = {}
    for line in SHARED_MIME_GLOBS.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        _weight, mime, glob = line.split(":")[:3]
        if glob.startswith("*.") and not any(c in glob[2:] for c in "*?["):
            system.setdefault(glob[1:].lower(), set()).add(aliases.get(mime, mime))
    claimed = {aliases.get(mime, mime) for mime in listed(desktop_entry()["MimeType"])}
    known = {extension: types for extension, types in system.items() if extension in mime_table()}
    assert len(known) >= 20  # the common formats and most RAW ones are in any recent shared-mime-info
    missed = {extension: types for extension, types in known.items() if not types & claimed}
    assert missed == {}


# --- the AppStream metainfo -----------------------------------------------------------------------------------------


def metainfo() -> ET.Element:
    return ET.parse(METAINFO_FILE).getroot()


def test_the_metainfo_names_the_app_its_licence_and_its_launcher() -> None:
    component = metainfo()
    assert component.tag == "component" and component.get("type") == "desktop-application"
    assert component.findtext("id") == APP_ID
    assert component.findtext("name") == desktop_entry()["Name"]
    assert component.findtext("project_license") == "MIT"
    (launchable,) = component.findall("launchable")
    assert launchable.get("type") == "desktop-id" and launchable.text == DESKTOP_FILE.name
    assert {b.text for b in component.iter("binary")} >= {"denoiser-gui", "denoiser"}


def test_the_metainfo_screenshots_are_the_ones_in_docs() -> None:
    screenshots = metainfo().findall("screenshots/screenshot")
    assert [s.get("type") for s in screenshots].count("default") == 1
    for screenshot in screenshots:
        url = screenshot.findtext("image") or ""
        assert url.startswith("https://") and screenshot.findtext("caption")
        in_repo = url.split("/main/", 1)[1]  # .../main/docs/screenshot.png -> docs/screenshot.png
        assert (ROOT / in_repo).is_file(), url


# --- one version, one licence ---------------------------------------------------------------------------------------


def test_one_version_for_the_package_the_changelog_and_the_metainfo() -> None:
    version = denoiser.__version__
    assert importlib.metadata.version("denoiser") == version  # pyproject reads it from denoiser/__init__.py
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    heading = re.search(rf"^## \[{re.escape(version)}\] - (\d{{4}}-\d{{2}}-\d{{2}})", changelog, re.MULTILINE)
    assert heading, f"CHANGELOG.md has no section for {version}"
    newest = metainfo().find("releases/release")
    assert newest is not None and newest.get("version") == version and newest.get("date") == heading.group(1)


def test_the_licence_is_mit_in_the_file_and_the_package_metadata() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Copyright (c) 2026 The Denoiser authors" in text
    assert importlib.metadata.metadata("denoiser")["License-Expression"] == "MIT"


# --- the icon set ---------------------------------------------------------------------------------------------------


def test_each_png_icon_is_its_size_with_transparent_corners() -> None:
    from ui.icon import ICON_SIZES

    for size in ICON_SIZES:
        with PILImage.open(app_icon_path().parent / f"denoiser-{size}.png") as png:
            assert png.size == (size, size) and png.mode == "RGBA"
            alpha = np.asarray(png)[..., 3]
        assert alpha[0, 0] == 0 and alpha[-1, -1] == 0  # rounded corners
        assert alpha[size // 2, size // 4] == 255 and alpha[size // 4, size // 2] == 255
    assert app_icon_path().read_bytes() == (app_icon_path().parent / "denoiser-128.png").read_bytes()


def test_the_png_icons_are_renderings_of_the_svg(qapp: object) -> None:
    """Someone who edits the drawing (packaging/linux/make_icons.py) renders the PNGs again."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    svg = app_icon_path().parent / "denoiser.svg"
    assert ET.parse(svg).getroot().get("viewBox") == "0 0 128 128"
    renderer = QSvgRenderer(str(svg))
    assert renderer.isValid()
    image = QImage(64, 64, QImage.Format.Format_RGBA8888)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    rendered = np.frombuffer(image.constBits(), np.uint8).reshape(64, image.bytesPerLine() // 4, 4)[:, :64]
    with PILImage.open(app_icon_path().parent / "denoiser-64.png") as png:
        stored = np.asarray(png.convert("RGBA"))
    assert np.abs(rendered.astype(int) - stored.astype(int)).mean() < 2.0


def test_the_window_icon_carries_every_size(qapp: object) -> None:
    from ui.icon import ICON_SIZES, app_icon

    icon = app_icon()
    assert {size.width() for size in icon.availableSizes()} == set(ICON_SIZES)
    assert icon.pixmap(48, 48).width() == 48
