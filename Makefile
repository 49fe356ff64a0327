# Two commands do all set-up: `make run` (the app, on the bundled samples with the bundled model) and
# `make test` (the whole suite). Both create and reuse a local virtual environment in .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out/samples

.PHONY: run test denoise-samples lint screenshot clean-venv bundle

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: the newest build these machines carry locally (never above 2.14.1).
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/denoiser-gui --samples

denoise-samples: $(STAMP)
	$(VENV)/bin/denoiser denoise resources/samples -o $(OUT)
	@echo "Denoised copies of the bundled samples are in $(OUT)/"

screenshot: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) packaging/screenshot.py --out docs/screenshot.png --zoom 2

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check denoiser ui tests benchmarks packaging fuzz

# The desktop bundle (packaging/bundle/README.md): dist/denoiser/ with `denoiser-gui` and `denoiser`, no Python
# needed to run it and no torch inside (inference on ONNX Runtime). The models are exported to ONNX first (with
# torch, here), PyInstaller packs the folder, and the smoke test runs the result in a clean environment.
BUNDLE_ASSETS := build/bundle-assets
BUNDLE_TOOLS := $(VENV)/.bundle-tools

$(BUNDLE_TOOLS): $(STAMP)
	$(PY) -m pip install --quiet pyinstaller==6.22.3
	touch $(BUNDLE_TOOLS)

bundle: $(BUNDLE_TOOLS)
	rm -rf $(BUNDLE_ASSETS)
	$(PY) packaging/bundle_assets.py $(BUNDLE_ASSETS)
	DENOISER_BUNDLE_ASSETS=$(BUNDLE_ASSETS) $(PY) -m PyInstaller --noconfirm --log-level WARN \
		--distpath dist --workpath build/pyinstaller packaging/bundle/denoiser.spec
	$(PY) packaging/bundle/smoke_test.py --bundle dist/denoiser

clean-venv:
	rm -rf $(VENV)
