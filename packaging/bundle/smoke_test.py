"""Smoke test of the built bundle (``make bundle`` runs it; ``make test`` does not: the bundle takes minutes).

    python packaging/bundle/smoke_test.py [--bundle dist/denoiser]

It runs the bundle's own executables in a clean environment (no PYTHONPATH, no virtual environment on PATH, HOME,
the XDG folders and DENOISER_HOME in a temporary folder), as a user who never installed Python would:

- ``denoiser --version``, ``denoiser formats``;
- ``denoiser denoise`` on a folder of photos made from a bundled sample, one per native reader (8-bit PNG with
  Pillow, 16-bit PNG with OpenCV, 16-bit LZW and float TIFFs with tifffile and imagecodecs, a DNG with rawpy),
  then one photo into HEIC (pillow-heif) and into AVIF (Pillow); every result must have its photo's size;
- ``denoiser-gui --version``, then the app offscreen on a sample until it says its window shows the photo
  (``DENOISER_SMOKE_QUIT_AFTER_SHOW=1``, see :data:`WINDOW_SHOWN`), timed;
- what is inside: the resources with the exported ONNX models, the Qt platform plugins, no torch; on Linux every
  library each one needs resolves.

It runs under the build's Python (it reads the results with Pillow, tifffile and OpenCV, and writes the DNG with
the tests' helper) and prints the unpacked size with its largest parts and the start-to-window time. The closing
line is ``N passed, N failed``; the exit status is 1 when a check failed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
WINDOWS = sys.platform == "win32"
SAMPLE = ROOT / "resources" / "samples" / "real_building.png"
WINDOW_SHOWN = re.compile(r"window shown after (?P<seconds>[0-9.]+) s")
"""The line the app prints on stdout, with ``DENOISER_SMOKE_QUIT_AFTER_SHOW=1``, once its window shows the first
photo (seconds from its start), before it quits with status 0."""
SMOKE_VARIABLE = "DENOISER_SMOKE_QUIT_AFTER_SHOW"
FROM_THE_DESKTOP = re.compile(r"^lib(wayland-|EGL|GL|OpenGL|vulkan|gtk-|gdk-)")
"""Libraries a Linux desktop provides and the bundle leaves to it (Wayland's client libraries, GL and Vulkan
drivers): missing on a build machine without a desktop, and not a failure there."""

BUILD_MACHINE_PACKAGES = ("libxcb-cursor0", "libxkbcommon-x11-0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0",
                          "libxcb-render-util0", "libxcb-xinerama0", "libxcb-shape0")
"""Debian packages with the xcb libraries Qt's xcb plugin needs and a headless build machine may lack."""


@dataclass
class Report:
    """The checks' outcomes and the measurements, printed as they come."""

    passed: int = 0
    failed: list[str] = field(default_factory=list)
    measurements: dict[str, str] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record one check; print it with what went wrong, if anything."""
        if ok:
            self.passed += 1
            print(f"ok    {name}")
        else:
            self.failed.append(name)
            print(f"FAIL  {name}" + (f"\n      {detail.strip()}" if detail else ""))
        return ok

    def measure(self, name: str, value: str) -> None:
        """Record a measurement (printed again in the summary)."""
        self.measurements[name] = value
        print(f"      {name}: {value}")


@dataclass
class Bundle:
    """The built folder and its two executables."""

    folder: Path

    @property
    def internal(self) -> Path:
        """Where PyInstaller put the libraries and data (``_internal``)."""
        return self.folder / "_internal"

    def executable(self, name: str) -> Path:
        """``denoiser`` or ``denoiser-gui`` (with ``.exe`` on Windows)."""
        return self.folder / (f"{name}.exe" if WINDOWS else name)

    @property
    def resources(self) -> Path:
        """The bundled ``resources`` folder, where ``denoiser.resources.resources_dir()`` finds it."""
        return self.internal / "denoiser" / "_resources"


def clean_environment(root: Path) -> dict[str, str]:
    """An environment with nothing from the build: a system PATH, and HOME, the XDG folders, the temporary folder
    and DENOISER_HOME under ``root``."""
    folders = {name: root / name.lower() for name in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME",
                                                       "XDG_STATE_HOME", "XDG_RUNTIME_DIR", "DENOISER_HOME", "TMPDIR")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    folders["XDG_RUNTIME_DIR"].chmod(0o700)  # Qt refuses a runtime folder others can read
    env = {name: str(folder) for name, folder in folders.items()}
    env["LANG"] = env["LC_ALL"] = "C.UTF-8"
    if WINDOWS:
        system_root = os.environ.get("SYSTEMROOT", r"C:\Windows")
        env.update(SYSTEMROOT=system_root, WINDIR=system_root, PATH=rf"{system_root}\System32;{system_root}",
                   USERPROFILE=env["HOME"], APPDATA=env["XDG_CONFIG_HOME"], LOCALAPPDATA=env["XDG_DATA_HOME"],
                   TEMP=env["TMPDIR"], TMP=env["TMPDIR"])
    else:
        env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    return env


def run(command: Sequence[str | Path], env: dict[str, str], timeout: float = 300) -> tuple[subprocess.CompletedProcess,
                                                                                           float]:
    """Run a command; its completed process (text output) and the seconds it took."""
    started = time.perf_counter()
    try:
        done = subprocess.run([str(part) for part in command], env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        done = subprocess.CompletedProcess(err.cmd, returncode=-1, stdout=str(err.stdout or ""),
                                           stderr=f"timed out after {timeout:.0f} s\n{err.stderr or ''}")
    return done, time.perf_counter() - started


def output_of(done: subprocess.CompletedProcess) -> str:
    """The last lines of a command's output, for a failure message."""
    text = (done.stdout or "") + (done.stderr or "")
    return "\n      ".join(text.strip().splitlines()[-15:])


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image the bundle wrote, read by the build's libraries."""
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        shape = tifffile.imread(path).shape
        return shape[1], shape[0]
    from PIL import Image

    if path.suffix.lower() in (".heic", ".heif"):
        import pillow_heif

        pillow_heif.register_heif_opener()
    with Image.open(path) as image:
        return image.size


def make_inputs(folder: Path) -> dict[str, tuple[int, int]]:
    """Photos for the denoise run, one per native reader, made from a bundled sample: name -> (width, height)."""
    import cv2
    import tifffile
    from PIL import Image

    folder.mkdir(parents=True)
    shutil.copy(SAMPLE, folder / SAMPLE.name)
    with Image.open(SAMPLE) as image:
        rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    deep = rgb.astype(np.uint16) * 257
    cv2.imwrite(str(folder / "deep16.png"), np.ascontiguousarray(deep[..., ::-1]))
    tifffile.imwrite(folder / "lzw16.tif", deep, photometric="rgb", compression="lzw", predictor=True)
    tifffile.imwrite(folder / "float32.tif", rgb.astype(np.float32) / 255, photometric="rgb",
                     compression="zlib", predictor=3)  # the floating-point predictor: imagecodecs' floatpred
    sizes = {name: (width, height) for name in (SAMPLE.name, "deep16.png", "lzw16.tif", "float32.tif")}
    sys.path.insert(0, str(ROOT / "tests" / "denoiser"))
    from dng import Camera, mosaic_of, write_dng  # the tests' DNG writer: no RAW sample can be shipped

    scene = np.full((96, 128, 3), 0.35)
    scene[:, :64] = (0.6, 0.3, 0.2)
    write_dng(folder / "shot.dng", mosaic_of(scene, Camera().as_shot_neutral), Camera())
    sizes["shot.dng"] = (128, 96)
    return sizes


def check_cli(bundle: Bundle, env: dict[str, str], work: Path, report: Report) -> None:
    """The ``denoiser`` executable: version, formats, and denoising one photo of each kind."""
    cli = bundle.executable("denoiser")
    version = re.search(r'__version__ = "([^"]+)"', (ROOT / "denoiser" / "__init__.py").read_text()).group(1)
    done, seconds = run([cli, "--version"], env, timeout=60)
    report.check("denoiser --version", done.returncode == 0 and version in done.stdout, output_of(done))
    report.measure("CLI start (denoiser --version)", f"{seconds:.2f} s")

    done, _ = run([cli, "formats"], env, timeout=60)
    report.check("denoiser formats", done.returncode == 0 and "camera RAW" in done.stdout
                 and "not available" not in done.stdout.lower(), output_of(done))

    sizes = make_inputs(work / "in")
    out = work / "out"
    done, seconds = run([cli, "denoise", work / "in", "-o", out, "--json"], env)
    report.check("denoiser denoise (PNG 8/16-bit, TIFF LZW 16-bit and float, DNG)", done.returncode == 0,
                 output_of(done))
    report.measure("denoise of 5 photos (incl. start)", f"{seconds:.1f} s")
    for name, size in sizes.items():
        found = sorted(out.glob(f"{Path(name).stem}_denoised.*"))
        if not found:
            report.check(f"  result of {name}", False, f"no {Path(name).stem}_denoised.* in {out}")
            continue
        got = image_size(found[0])
        near = name.endswith(".dng") and all(abs(a - b) <= 16 for a, b in zip(got, size, strict=True))
        report.check(f"  result of {name}: {found[0].name} {got[0]}x{got[1]}", got == size or near,
                     f"expected {size[0]}x{size[1]}")

    for suffix in (".heic", ".avif"):
        target = work / f"single{suffix}"
        done, _ = run([cli, "denoise", work / "in" / SAMPLE.name, "-o", target], env)
        ok = done.returncode == 0 and target.is_file()
        detail = output_of(done)
        if ok and image_size(target) != sizes[SAMPLE.name]:
            ok, detail = False, f"{target.name} is {image_size(target)}, expected {sizes[SAMPLE.name]}"
        report.check(f"denoiser denoise into {suffix[1:].upper()}", ok, detail)


def watch_for_window(command: Sequence[str | Path], env: dict[str, str], timeout: float
                     ) -> tuple[float | None, float | None, int | None, str]:
    """Start the app and wait for its window line: (seconds from launch to the line, the app's own figure, exit
    status or None when it was killed at ``timeout``, its output)."""
    lines: list[tuple[float, str]] = []
    started = time.perf_counter()
    process = subprocess.Popen([str(part) for part in command], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.perf_counter() - started, line.rstrip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        status: int | None = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        status = None
    reader.join(timeout=5)
    for at, line in lines:
        if match := WINDOW_SHOWN.search(line):
            return at, float(match["seconds"]), status, "\n".join(text for _, text in lines)
    return None, None, status, "\n".join(text for _, text in lines)


def check_gui(bundle: Bundle, env: dict[str, str], work: Path, report: Report, timeout: float, target_s: float,
              ) -> None:
    """The ``denoiser-gui`` executable: its version, then its window on a sample, offscreen."""
    gui = bundle.executable("denoiser-gui")
    done, _ = run([gui, "--version"], env, timeout=60)
    report.check("denoiser-gui --version", done.returncode == 0 and "denoiser-gui" in done.stdout + done.stderr,
                 output_of(done))
    photos = work
    photos.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE, photos / SAMPLE.name)
    gui_env = dict(env, QT_QPA_PLATFORM="offscreen", **{SMOKE_VARIABLE: "1"})
    for attempt in ("first start", "second start"):  # the first also fills the OS file cache
        at, own, status, output = watch_for_window([gui, photos / SAMPLE.name], gui_env, timeout)
        if status is None and at is None:
            detail = (f"still running after {timeout:.0f} s without printing 'window shown after N s': does the app "
                      f"honour {SMOKE_VARIABLE}=1 (print that line once the first photo is shown, then quit)?\n"
                      + output[-1500:])
        else:
            detail = f"exit status {status}\n{output[-1500:]}"
        if not report.check(f"denoiser-gui offscreen shows a photo ({attempt})", at is not None and status == 0,
                            detail):
            return
        report.measure(f"start to window, {attempt}", f"{at:.2f} s (the app's own figure: {own:.2f} s)")
    verdict = "within" if at <= target_s else "OVER"
    report.measure("start-to-window target", f"{verdict} {target_s:.1f} s")


def check_gui_on_x11(bundle: Bundle, env: dict[str, str], work: Path, report: Report, timeout: float,
                     screenshot: Path | None) -> None:
    """Linux with Xvfb and xdotool: the app on a virtual X display, through Qt's xcb plugin and the X libraries
    the bundle carries (offscreen exercises neither), until a window titled with the photo is mapped; timed, and a
    screenshot taken when ImageMagick's ``import`` is there. Skipped without those tools."""
    tools = {name: shutil.which(name) for name in ("Xvfb", "xdotool")}
    if not sys.platform.startswith("linux") or not all(tools.values()):
        print("skip  denoiser-gui on X11 (needs Xvfb and xdotool)")
        return
    photos = work / "x11"
    photos.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE, photos / SAMPLE.name)
    read_end, write_end = os.pipe()
    server = subprocess.Popen([tools["Xvfb"], "-displayfd", str(write_end), "-screen", "0", "1600x1000x24",
                               "-nolisten", "tcp"], pass_fds=(write_end,), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as displays:
        display = f":{displays.readline().strip()}"
    app = None
    try:
        x_env = dict(env, DISPLAY=display)
        started = time.perf_counter()
        app = subprocess.Popen([str(bundle.executable("denoiser-gui")), str(photos / SAMPLE.name)], env=x_env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        found = None
        while time.perf_counter() - started < timeout and app.poll() is None:
            search = subprocess.run([tools["xdotool"], "search", "--onlyvisible", "--name", SAMPLE.name],
                                    env=x_env, capture_output=True, text=True, check=False)
            if search.stdout.strip():
                found = time.perf_counter() - started
                break
            time.sleep(0.05)
        output = "" if app.poll() is None else app.communicate()[0]
        if not report.check("denoiser-gui on X11 (Xvfb) maps a window titled with the photo", found is not None,
                            f"exit status {app.returncode}\n{output[-1500:]}" if app.returncode is not None
                            else f"no such window after {timeout:.0f} s"):
            return
        report.measure("start to a mapped window on X11 (title set when the photo opens)", f"{found:.2f} s")
        if screenshot is not None and shutil.which("import"):
            time.sleep(3)  # the photo decoded and denoised on screen
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["import", "-window", "root", str(screenshot)], env=x_env, capture_output=True,
                           check=False)
            report.measure("screenshot", str(screenshot))
    finally:
        for process in (app, server):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def apparent_size(path: Path) -> int:
    """Bytes of the files under ``path`` (links not followed, each file once)."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(entry.lstat().st_size for entry in path.rglob("*") if entry.is_symlink() or entry.is_file())


def check_contents(bundle: Bundle, report: Report, max_mb: float) -> None:
    """What is inside: resources and exported models, Qt plugins, no torch; the size and its largest parts."""
    resources = bundle.resources
    wanted = ["models/default.safetensors", "models/default.json", "estimator/noise-map.safetensors",
              "samples/real_building.png", "icons/denoiser.png", "icons/denoiser.svg", "icons/denoiser-256.png"]
    missing = [name for name in wanted if not (resources / name).is_file()]
    report.check("resources in denoiser/_resources", not missing, f"missing: {missing}")
    models = sorted(path.name for path in (resources / "models").glob("*.onnx"))
    estimators = sorted(path.name for path in (resources / "estimator").glob("*.onnx"))
    report.check(f"exported ONNX graphs merged in (models {models}, estimator {estimators})",
                 bool(models) and bool(estimators),
                 "run `python packaging/bundle_assets.py build/bundle-assets` before PyInstaller")
    unwanted = [name for name in ("torch", "torchvision", "triton", "nvidia", "scipy", "onnx", "skimage", "pytest")
                if (bundle.internal / name).exists()]
    report.check("no torch, triton, nvidia, scipy, onnx, test packages", not unwanted, f"found: {unwanted}")
    plugins = bundle.internal / "PySide6" / ("plugins" if WINDOWS else "Qt/plugins")
    platform_plugins = {"linux": ["libqxcb.so", "libqwayland.so", "libqoffscreen.so"],
                        "win32": ["qwindows.dll", "qoffscreen.dll"],
                        "darwin": ["libqcocoa.dylib", "libqoffscreen.dylib"]}
    expected = platform_plugins.get("linux" if sys.platform.startswith("linux") else sys.platform, [])
    absent = [name for name in expected if not (plugins / "platforms" / name).is_file()]
    report.check("Qt platform plugins", not absent, f"missing from {plugins / 'platforms'}: {absent}")
    report.check("no Qt translations", not any(bundle.internal.glob("PySide6/**/translations/*.qm")))

    total = apparent_size(bundle.folder)
    report.measure("unpacked size", f"{total / 2**20:.0f} MB")
    report.check(f"unpacked size under {max_mb:.0f} MB", total <= max_mb * 2**20, f"{total / 2**20:.0f} MB")
    parts = sorted(((apparent_size(entry), entry.name) for entry in bundle.internal.iterdir()), reverse=True)
    print("      largest parts of _internal:")
    for size, name in parts[:15]:
        print(f"      {size / 2**20:8.1f} MB  {name}")


def check_libraries(bundle: Bundle, report: Report) -> None:
    """Linux: every shared library in the bundle finds what it needs, in the bundle (as the bootloader sets the
    search path) or on the system, except what a desktop provides (:data:`FROM_THE_DESKTOP`)."""
    if not sys.platform.startswith("linux") or shutil.which("ldd") is None:
        return
    env = dict(os.environ, LD_LIBRARY_PATH=str(bundle.internal))
    unresolved: set[str] = set()
    for path in bundle.internal.rglob("*.so*"):
        if path.is_symlink() or not path.is_file():
            continue
        done = subprocess.run(["ldd", str(path)], env=env, capture_output=True, text=True, check=False)
        for line in done.stdout.splitlines():
            if "not found" in line and not FROM_THE_DESKTOP.match(line.split()[0]):
                unresolved.add(f"{path.relative_to(bundle.internal)}: {line.split()[0]}")
    hint = ("\n      PyInstaller carries the libraries it finds on the build machine: install these there and build "
            "again (Debian and Ubuntu: " + " ".join(BUILD_MACHINE_PACKAGES) + ")")
    report.check("every bundled library's dependencies resolve", not unresolved,
                 "\n      ".join(sorted(unresolved)) + hint)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every check on the bundle; 0 when all passed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist" / "denoiser", help="the built folder")
    parser.add_argument("--max-mb", type=float, default=600, help="largest unpacked size that passes (MB)")
    parser.add_argument("--target-start-s", type=float, default=5, help="start-to-window target, reported (s)")
    parser.add_argument("--gui-timeout", type=float, default=60, help="seconds the app gets to show its window")
    parser.add_argument("--screenshot", type=Path, default=ROOT / "build" / "bundle-smoke" / "x11-window.png",
                        help="where the X11 check saves a screenshot of the window")
    args = parser.parse_args(argv)
    bundle = Bundle(args.bundle.resolve())
    report = Report()
    if not report.check(f"bundle at {bundle.folder}", bundle.executable("denoiser").is_file()
                        and bundle.executable("denoiser-gui").is_file(), "build it first: make bundle"):
        print(f"{report.passed} passed, {len(report.failed)} failed")
        return 1
    steps: list[Callable[[Path, dict[str, str]], None]] = [
        lambda _work, _env: check_contents(bundle, report, args.max_mb),
        lambda _work, _env: check_libraries(bundle, report),
        lambda work, env: check_cli(bundle, env, work / "cli", report),
        lambda work, env: check_gui(bundle, env, work / "gui", report, args.gui_timeout, args.target_start_s),
        lambda work, env: check_gui_on_x11(bundle, env, work, report, args.gui_timeout, args.screenshot),
    ]
    with tempfile.TemporaryDirectory(prefix="denoiser-smoke-") as temporary:
        root = Path(temporary)
        env = clean_environment(root / "env")
        for step in steps:
            work = root / "work"
            work.mkdir(exist_ok=True)
            step(work, env)
    print("\nmeasurements:")
    for name, value in report.measurements.items():
        print(f"  {name}: {value}")
    if report.failed:
        print("failed: " + "; ".join(report.failed))
    print(f"{report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
