"""What the bundle leaves out, read by ``denoiser.spec`` (kept here as plain Python so that ruff checks it).

The bundle denoises on ONNX Runtime; torch and everything only training, the tests or the benchmarks use stay out.
"""

from __future__ import annotations

import sys
from pathlib import Path, PurePath

__all__ = [
    "EXCLUDED_MODULES", "GTK_LIBRARIES", "IMAGECODECS_HIDDEN", "QT_DROPPED_PARTS", "dropped", "icon_for_platform",
]

EXCLUDED_MODULES: list[str] = [
    # Training and export only: inference in the bundle runs pre-exported ONNX graphs.
    "torch", "torchvision", "torchaudio", "triton", "onnx", "onnxscript", "sympy", "mpmath", "networkx",
    "functorch", "fsspec", "jinja2", "ml_dtypes", "cuda", "nvidia",
    # Batches over several machines (`denoiser denoise --ray`, `pip install .[ray]`): Ray and what it brings (grpc,
    # aiohttp, cryptography...) were 100 MB of the bundle, which runs on one machine.
    "ray",
    # Tests, benchmarks, fuzzing and tooling.
    "pytest", "_pytest", "pytestqt", "hypothesis", "atheris", "ruff", "build", "pip", "setuptools", "pkg_resources",
    "bm3d", "bm4d", "skimage", "scipy", "pywt", "imageio", "lazy_loader", "pygments",
    # Standard-library parts nothing here uses.
    "tkinter", "_tkinter", "unittest", "pydoc_data", "lib2to3", "idlelib", "test", "sqlite3", "_sqlite3", "readline",
    # pyqtgraph's optional back ends (its plots are the training dialog's, which the bundle cannot run anyway).
    "OpenGL", "pyqtgraph.opengl", "pyqtgraph.examples", "pyqtgraph.jupyter", "matplotlib", "IPython", "h5py",
    "colorama", "cupy", "numba", "pandas",
    # Qt bindings other than the one the app uses, and PySide6 modules it never imports.
    "PyQt5", "PyQt6", "PySide2",
    "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtQuickControls2", "PySide6.QtQuick3D",
    "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets", "PySide6.QtWebEngineQuick", "PySide6.QtWebChannel",
    "PySide6.QtWebSockets", "PySide6.Qt3DCore", "PySide6.Qt3DRender", "PySide6.Qt3DExtras", "PySide6.QtCharts",
    "PySide6.QtDataVisualization", "PySide6.QtGraphs", "PySide6.QtMultimedia", "PySide6.QtMultimediaWidgets",
    "PySide6.QtNetwork", "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtPdf", "PySide6.QtPdfWidgets",
    "PySide6.QtDesigner", "PySide6.QtUiTools", "PySide6.QtHelp", "PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets",
    "PySide6.QtSvgWidgets", "PySide6.QtPrintSupport", "PySide6.QtXml", "PySide6.QtConcurrent", "PySide6.QtDBus",
    "PySide6.QtStateMachine", "PySide6.QtBluetooth", "PySide6.QtPositioning", "PySide6.QtSerialPort",
    "PySide6.QtSpatialAudio", "PySide6.QtTextToSpeech", "PySide6.QtRemoteObjects", "PySide6.QtScxml",
    "PySide6.QtSensors", "PySide6.QtNfc", "PySide6.QtHttpServer", "PySide6.QtLocation", "PySide6.QtAxContainer",
]
"""Modules PyInstaller must not follow into (imported lazily or optionally by the app's dependencies)."""

IMAGECODECS_HIDDEN: list[str] = [
    f"imagecodecs.{name}" for name in (
        "_shared", "_shared_cython",  # what every codec module imports from C, unseen by PyInstaller
        "_imcd",  # LZW, PackBits, the horizontal and floating-point predictors
        "_zlib", "_deflate", "_zstd", "_lzma", "_jpeg8", "_ljpeg", "_jpegsof3", "_webp", "_jpeg2k",
    )
]
"""The imagecodecs modules tifffile decodes TIFFs with (it imports them lazily, by name): the compressions
cameras, scanners, Photoshop and GIMP write. The other 40-odd codecs (HDF5 filters, scientific formats) stay out."""

QT_DROPPED_PARTS: tuple[str, ...] = (
    "translations",  # Qt's own dialog strings in other languages: the app is in English
    "qml", "Qt6Quick", "Qt6Qml", "Qt6WebEngine", "Qt63D", "Qt6Pdf", "Qt6Network", "Qt6VirtualKeyboard",
    "Qt6Multimedia", "Qt6Designer", "Qt6Charts", "Qt6DataVisualization", "Qt6Graphs", "Qt6Sql", "Qt6Test",
    "libqpdf", "libqwebp.", "libqtiff", "libqicns", "libqtga", "libqwbmp", "libqmacheif", "libqmacjp2",
    "platforminputcontexts", "networkinformation", "tls", "sqldrivers", "qmltooling", "virtualkeyboard",
    # Framebuffer and embedded-device platforms (and their input plugins): a desktop app runs on X11 or Wayland.
    "libqvnc", "libqminimalegl", "libqeglfs", "libqlinuxfb", "egldeviceintegrations", "libqvkkhrdisplay",
    "Qt6EglFS", "Qt6EglFs", "generic",
    # GTK's platform theme would load the system's GTK against the bundle's GLib; Qt's own style is used anyway
    # (the app sets a dark Fusion style).
    "libqgtk3",
)
"""Pieces of a path in the collected files that mark a Qt part the app never loads (photo decoding is the
engine's, not Qt's image plugins'; Qt keeps PNG, JPEG, ICO, GIF and SVG for icons and the UI)."""

GTK_LIBRARIES: tuple[str, ...] = (
    "libgtk-3", "libgdk-3", "libgdk_pixbuf", "libatk-", "libatk-bridge", "libatspi", "libpango", "libcairo",
    "libthai", "libdatrie", "libfribidi", "libpixman", "libepoxy", "libgraphite2", "libharfbuzz",
)
"""Libraries only the GTK platform theme (dropped above) pulls in."""


_MACOS_FRAMEWORKS = tuple(f"Qt{piece[3:]}.framework" for piece in QT_DROPPED_PARTS if piece.startswith("Qt6"))
"""The same Qt libraries as macOS names them (``QtNetwork.framework`` for ``Qt6Network``)."""


def dropped(bundle_path: str) -> bool:
    """Whether a collected file (its path inside the bundle) is a Qt part :data:`QT_DROPPED_PARTS` names, or a
    library only such a part needs. Qt's libraries are ``libQt6X.so`` on Linux, ``Qt6X.dll`` on Windows and
    ``QtX.framework`` on macOS; PyInstaller links some of them from the top of the bundle too."""
    path = PurePath(bundle_path)
    if path.name.startswith(GTK_LIBRARIES) and len(path.parts) == 1:
        return True
    if "PySide6" not in path.parts and not path.name.startswith(("libQt6", "Qt6", "Qt")):
        return False
    pieces = QT_DROPPED_PARTS + _MACOS_FRAMEWORKS
    return any(piece in part for part in path.parts for piece in pieces)


def icon_for_platform(icons: Path) -> str | None:
    """The executables' icon: the largest PNG rendering on Windows and macOS (PyInstaller turns it into an .ico
    or .icns through Pillow); none on Linux, whose executables carry no icon (the .desktop file names one)."""
    if sys.platform.startswith("linux"):
        return None
    for name in ("denoiser-512.png", "denoiser-256.png", "denoiser.png"):
        if (icons / name).is_file():
            return str(icons / name)
    return None
