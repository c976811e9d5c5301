# a2k — common tasks. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch pinned to the build this project is tested with
TORCH_PINS ?= torch==2.14.1

.PHONY: install test test-slow lint format demo distill train bench clean

$(BIN)/a2k: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PINS)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/a2k

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check a2k_cli tests bench
	$(BIN)/ruff format --check a2k_cli tests bench

format: install
	$(BIN)/ruff format a2k_cli tests bench
	$(BIN)/ruff check --fix a2k_cli tests bench

# Paint an example photo in a built-in style with the bundled model.
demo: install
	$(BIN)/a2k stylize examples/photos/lighthouse.jpg --style great-wave -o examples/out.png --overwrite

# Distil the lite encoder from the teacher (needs ../shared), then train the bundled model.
distill: install
	$(BIN)/a2k distill --teacher ../shared/teacher/vgg19_x16_teacher.safetensors \
		--data ../shared/datasets/content --data ../shared/datasets/style --out runs/distill-lite

train: install
	$(BIN)/a2k train --data ../shared/datasets/content --styles ../shared/datasets/style \
		--encoder runs/distill-lite/encoder.safetensors --out runs/lite

# The standing benchmarks, then bench/RESULTS.md; one-off studies: bench/README.md.
bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache
