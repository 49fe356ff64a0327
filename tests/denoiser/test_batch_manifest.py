"""The manifest under failures, crashes, other writers and damage (issue 13, findings 1-3), in one process.

The drills with real processes (concurrent writers, kill -9 at random moments) are in tests/e2e/test_batch_drills.py.
A damaged record (random bytes, changed bytes, fields holding other JSON values) must be read or refused by name,
never end the batch in another exception: a hypothesis property, and the cases it found kept as tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image as PILImage

import denoiser.batch.single as batch_single
from denoiser.batch import BatchSettings, Manifest, file_sha256, run_batch
from denoiser.batch.manifest import JOURNAL_NAME, LOCK_NAME, MANIFEST_NAME, new_owner, owner_is_live
from denoiser.errors import DenoiserError
from denoiser.inference import TileSettings
from denoiser.models import create_model


@pytest.fixture
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("unet", {"widths": [4, 8], "blocks": 1})


def write_photo(path: Path, seed: int, size: tuple[int, int] = (40, 30)) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels).save(path)
    return path


def settings(src: Path, out: Path, **changes: object) -> BatchSettings:
    values: dict[str, object] = {"strength": 15.0, "tiles": TileSettings(tile=32, overlap=8), "device": "cpu"}
    values.update(changes)
    return BatchSettings(inputs=[src], output=out, **values)  # type: ignore[arg-type]


def fail_every_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> np.ndarray:
        raise RuntimeError("CUDA error: no kernel image is available")

    monkeypatch.setattr(batch_single, "denoise_array", broken)


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_failed_run_keeps_the_done_entries(tmp_path: Path, tiny_model: torch.nn.Module,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 2: a run where every file failed (a wrong device, other settings) made the rerun redo them all."""
    src, out = tmp_path / "in", tmp_path / "out"
    for i in range(3):
        write_photo(src / f"{i}.png", i)
    assert run_batch(settings(src, out), tiny_model, "tiny").done == 3
    with monkeypatch.context() as patch:
        fail_every_file(patch)
        assert run_batch(settings(src, out, strength=20.0, redo=True), tiny_model, "tiny").failed == 3
    entries = Manifest.load(out).entries
    assert {e["status"] for e in entries.values()} == {"done"}
    assert all("CUDA error" in e["last_failure"]["message"] for e in entries.values())
    rerun = run_batch(settings(src, out), tiny_model, "tiny")
    assert (rerun.done, rerun.skipped) == (0, 3)
    assert sorted(p.name for p in out.glob("*.png")) == ["0_denoised.png", "1_denoised.png", "2_denoised.png"]


def test_outputs_in_the_input_folder_are_never_taken_as_inputs_after_a_failed_run(
        tmp_path: Path, tiny_model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 2: output folder = input folder, a failed run, a rerun: x_denoised_denoised.png appeared."""
    src = tmp_path / "photos"
    write_photo(src / "x.png", 1)
    assert run_batch(settings(src, src), tiny_model, "tiny").done == 1
    with monkeypatch.context() as patch:
        fail_every_file(patch)  # a run that really fails the file (other settings, so it is not skipped as done)
        failed = run_batch(settings(src, src, strength=20.0, redo=True), tiny_model, "tiny")
    assert [(r.source.name, r.status) for r in failed.results] == [("x.png", "failed")]
    rerun = run_batch(settings(src, src), tiny_model, "tiny")
    assert [(r.source.name, r.status) for r in rerun.results] == [("x.png", "skipped")]
    redo = run_batch(settings(src, src, strength=20.0, redo=True), tiny_model, "tiny")
    assert [r.source.name for r in redo.results] == ["x.png"]
    assert sorted(p.name for p in src.glob("*.png")) == ["x.png", "x_denoised-2.png", "x_denoised.png"]


def test_a_stale_claim_whose_output_landed_is_adopted_not_redone(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """Finding 3: killed between an output's rename and the manifest save, the rerun wrote 6_denoised-2.tif."""
    src, out = tmp_path / "in", tmp_path / "out"
    photo = write_photo(src / "6.png", 6)
    whole = tmp_path / "whole"
    run_batch(settings(src, whole), tiny_model, "tiny")
    expected = (whole / "6_denoised.png").read_bytes()
    # What a process killed right after the rename leaves: its claim (with the output's hash) and the output.
    out.mkdir()
    (out / "6_denoised.png").write_bytes(expected)
    (out / ".6_denoised.tmp-0badc0de.png").write_bytes(b"half an encoded file")
    entry = dict(Manifest.load(whole).get(photo) or {})
    owner = {**new_owner("gone"), "pid": dead_pid()}
    assert not owner_is_live(owner)
    with Manifest(out).locked() as manifest:
        manifest.put(photo, {**entry, "status": "running", "owner": owner, "output": str(out / "6_denoised.png"),
                             "output_sha256": file_sha256(out / "6_denoised.png"), "previous": None})
    rerun = run_batch(settings(src, out), tiny_model, "tiny")
    assert (rerun.done, rerun.skipped) == (0, 1) and rerun.results[0].resumed
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "6_denoised.png", MANIFEST_NAME]
    assert Manifest.load(out).get(photo)["status"] == "done"


def test_a_stale_claim_without_its_output_is_done_again_under_the_name_it_reserved(
        tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    photo = write_photo(src / "a.png", 2)
    out.mkdir()
    (out / ".a_denoised.tmp-12345678.png").write_bytes(b"killed while encoding")
    with Manifest(out).locked() as manifest:
        manifest.put(photo, {"status": "running", "owner": {**new_owner("gone"), "pid": dead_pid()},
                             "output": str(out / "a_denoised.png"), "output_sha256": None, "previous": None})
    result = run_batch(settings(src, out), tiny_model, "tiny").results[0]
    assert result.status == "done" and result.output == out / "a_denoised.png"
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "a_denoised.png", MANIFEST_NAME]


def test_an_input_another_live_process_claimed_is_left_to_it(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    taken, free = write_photo(src / "a.png", 1), write_photo(src / "b.png", 2)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Manifest(out).locked() as manifest:
            manifest.put(taken, {"status": "running", "owner": {**new_owner("theirs"), "pid": other.pid},
                                 "output": str(out / "b_denoised.png"), "previous": None})
        report = run_batch(settings(src, out), tiny_model, "tiny")
    finally:
        other.kill()
        other.wait()
    by_name = {r.source.name: r for r in report.results}
    assert by_name["a.png"].status == "skipped" and f"process {other.pid}" in by_name["a.png"].message
    # The name the other process reserved is not taken by this one either.
    assert by_name["b.png"].output == out / "b_denoised-2.png"
    assert Manifest.load(out).get(taken)["status"] == "running"  # still theirs
    assert Manifest.load(out).get(free)["status"] == "done"


def test_a_torn_last_journal_line_is_ignored_and_later_lines_still_count(tmp_path: Path) -> None:
    out = tmp_path / "out"
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    with Manifest(out).locked() as manifest:
        manifest.put(a, {"status": "done", "output": None})
    with open(out / JOURNAL_NAME, "ab") as journal:
        journal.write(b'{"key": "half a li')  # a writer killed while appending
    assert set(Manifest.load(out).entries) == {str(a.resolve())}
    with Manifest(out).locked() as manifest:
        manifest.put(b, {"status": "failed", "output": None})
    assert set(Manifest.load(out).entries) == {str(a.resolve()), str(b.resolve())}
    Manifest(out).compact()
    assert not (out / JOURNAL_NAME).exists()
    data = json.loads((out / MANIFEST_NAME).read_text())
    assert set(data["files"]) == {str(a.resolve()), str(b.resolve())} and data["version"] == 2


def test_a_version_1_manifest_still_resumes(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write_photo(src / "a.png", 1)
    run_batch(settings(src, out), tiny_model, "tiny")
    data = json.loads((out / MANIFEST_NAME).read_text())
    data["version"] = 1
    del data["outputs"]
    (out / MANIFEST_NAME).write_text(json.dumps(data))
    assert run_batch(settings(src, out), tiny_model, "tiny").skipped == 1


def test_leftover_manifest_temporaries_are_cleaned(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """Finding 3: hidden temporary files of killed runs were never cleaned."""
    src, out = tmp_path / "in", tmp_path / "out"
    write_photo(src / "a.png", 1)
    out.mkdir()
    (out / ".denoiser-manifest.tmp-0a1b2c3d.json").write_text("{")
    run_batch(settings(src, out), tiny_model, "tiny")
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "a_denoised.png", MANIFEST_NAME]


# --- damaged records: the manifest's reader and the batch that trusts it ----------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
"""Any JSON value: what a hand edit, another program or a damaged disk may leave where the manifest has a field."""
SEARCH_EXAMPLES = int(os.environ.get("DENOISER_FUZZ_EXAMPLES") or 0)
"""As in test_fuzz.py: to search harder for a while, that many new examples per run (never in CI)."""
DAMAGED_RECORDS = hypothesis_settings(
    max_examples=SEARCH_EXAMPLES or 60, deadline=None, database=None,
    derandomize=not SEARCH_EXAMPLES,  # the same examples on every run: CI stays stable
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def replaced_field(draw: st.DrawFn, document: object) -> object:
    """``document`` (parsed JSON) with one value anywhere in it, or the whole, replaced by any JSON value."""
    document = json.loads(json.dumps(document))
    parent: Any = None
    key: Any = None
    node = document
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        parent = node
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        node = node[key]
    value = draw(JSON_VALUES)
    if parent is None:
        return value
    parent[key] = value
    return document


@st.composite
def damaged_records(draw: st.DrawFn, snapshot: bytes) -> tuple[bytes | None, bytes | None]:
    """A snapshot and a journal (None: no such file) as a finished batch left them, damaged: random bytes, a few
    bytes changed, a field holding another JSON value, or a journal line whose entry is another value."""
    data = json.loads(snapshot)
    lines = b"".join(json.dumps({"key": k, "entry": e}).encode() + b"\n" for k, e in data["files"].items())
    kind = draw(st.sampled_from(["random", "bytes", "field", "journal-bytes", "journal-field"]))
    if kind == "random":
        return draw(st.binary(max_size=200)), draw(st.none() | st.binary(max_size=200))
    if kind == "bytes":
        raw = bytearray(snapshot)
        for _ in range(draw(st.integers(1, 4))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        return bytes(raw), None
    if kind == "field":
        return json.dumps(draw(replaced_field(data))).encode(), None
    if kind == "journal-bytes":
        raw = bytearray(lines)
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        return None, bytes(raw)
    (key, entry), = data["files"].items()
    return None, json.dumps({"key": key, "entry": draw(replaced_field(entry))}).encode() + b"\n"


@pytest.fixture
def finished_batch(tmp_path: Path, tiny_model: torch.nn.Module) -> tuple[Path, bytes]:
    """A one-photo batch's input folder and the manifest its run left."""
    src, out = tmp_path / "in", tmp_path / "out"
    write_photo(src / "a.png", 3, size=(16, 12))
    run_batch(settings(src, out), tiny_model, "tiny")
    return src, (out / MANIFEST_NAME).read_bytes()


def with_paths(data: bytes, photo: Path, output: Path) -> bytes:
    """``data`` with ``@PHOTO@`` and ``@OUTPUT@`` standing for the input's and its output's paths (an output named
    is made, so that the batch finds the entry done and reads on)."""
    if b"@OUTPUT@" in data:
        output.write_bytes(b"an earlier output")
    for mark, path in ((b"@PHOTO@", photo), (b"@OUTPUT@", output)):
        data = data.replace(mark, json.dumps(str(path.resolve()))[1:-1].encode())
    return data


def check_damaged_record(src: Path, model: torch.nn.Module, snapshot: bytes | None, journal: bytes | None) -> None:
    """Reading the damaged record, and a rerun of the batch over it, end in a result or the project's typed error
    naming the record or its folder: never another exception. The input is never touched."""
    photo = (src / "a.png").read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for name, data in ((MANIFEST_NAME, snapshot), (JOURNAL_NAME, journal)):
            if data is not None:
                (out / name).write_bytes(with_paths(data, src / "a.png", out / "a_denoised.png"))
        try:
            manifest = Manifest.load(out)
            manifest.outputs(), manifest.reserved_outputs(), manifest.get(src / "a.png")
            report = run_batch(settings(src, out), model, "tiny")
        except DenoiserError as err:
            assert str(out) in str(err), err  # the record, or the folder whose record says something else
        else:
            assert [r.source.name for r in report.results] == ["a.png"]
    assert (src / "a.png").read_bytes() == photo


@DAMAGED_RECORDS
@given(data=st.data())
def test_a_damaged_record_gives_a_result_or_the_typed_error(finished_batch: tuple[Path, bytes],
                                                            tiny_model: torch.nn.Module, data: st.DataObject) -> None:
    src, snapshot = finished_batch
    check_damaged_record(src, tiny_model, *data.draw(damaged_records(snapshot)))


@pytest.mark.parametrize(
    ("snapshot", "journal"),
    [
        ('{"version": 2, "files": {}, "outputs": 5}', None),
        ("[" * 100_000 + "]" * 100_000, None),
        ('{"version": ' + "9" * 5000 + ', "files": {}}', None),
        (None, '{"key": "k", "entry": 5}\n'),
        (None, "[" * 100_000 + "]" * 100_000 + "\n"),
        ('{"version": 2, "files": {"k": {"status": "running", "output": "o", "owner": [1]}}}', None),
        ('{"version": 2, "files": {"k": {"status": "done", "output": "a\\u0000b"}}}', None),
        (None, '{"key": "k", "entry": {"status": "done", "output": "o", "sigma": Infinity}}\n'),
        ('{"version": 2, "files": {"@PHOTO@": {"status": "done", "output": "@OUTPUT@", "settings": 5}}}', None),
        ('{"version": 2, "files": {"k": {"status": "done", "output": 5}}}', None),
        ('{"version": true, "files": {}}', None),
        (None, '{"key": "k", "entry": {"status": "done", "output": 3}}\n'),
    ],
    ids=["outputs-number", "nested-snapshot", "5000-digits", "journal-entry-number", "nested-journal",
         "owner-list", "output-nul", "journal-infinity", "settings-number", "output-number", "version-true",
         "journal-output-number"],
)
def test_a_damaged_record_found_by_the_property_is_read_or_refused_by_name(
        finished_batch: tuple[Path, bytes], tiny_model: torch.nn.Module, snapshot: str | None,
        journal: str | None) -> None:
    src, _ = finished_batch
    check_damaged_record(src, tiny_model, snapshot and snapshot.encode(), journal and journal.encode())
