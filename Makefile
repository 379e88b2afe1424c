# Two commands on a fresh Debian/Ubuntu machine: `make demo` (set up + render the flagship), `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test setup system-deps clean

demo: $(STAMP)
	$(BIN)/manim -qh scenes/rope.py

test: $(STAMP)
	@scripts/system_deps.sh $(PYTHON) --test
	$(BIN)/python -m pytest

setup: $(STAMP)

system-deps:
	@scripts/system_deps.sh $(PYTHON)

# Reinstall when the dependencies change; the editable install picks up code changes by itself.
$(STAMP): pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) media/videos media/images media/Tex media/texts media/cache media/gifs media/shorts media/covers media/gallery
