# Basalt — top-level entry points. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
NPROC := $(shell nproc 2>/dev/null || echo 2)
HOST ?= 127.0.0.1
PORT ?= 8090
DATA_DIR ?= ./basalt_data

.PHONY: run test bench deps build release fuzz clean help

help:
	@echo "make run      install deps, build the release preset, serve on http://$(HOST):$(PORT) (data in $(DATA_DIR))"
	@echo "make test     install deps, build with ASan+UBSan+coverage, run every test, fuzz briefly, smoke-test the release binary, print coverage"
	@echo "make bench    benchmark Basalt against nginx on loopback (bench/results/latest.jsonl)"
	@echo "make build    dev preset (Debug, ASan+UBSan)   make release   -O2 LTO"
	@echo "make fuzz     build libFuzzer targets (clang)  make clean     remove build/"

deps:
	scripts/install-deps.sh

# Sequential on purpose (safe under make -j): deps, then build, then replace make's shell with Basalt.
run:
	scripts/install-deps.sh
	cmake --preset release && cmake --build --preset release -j$(NPROC)
	exec build/release/basalt serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

test:
	scripts/test.sh

# Rebuild first so the numbers describe the current code (a no-op when up to date).
bench:
	cmake --preset release && cmake --build --preset release -j$(NPROC)
	bench/run.sh

build:
	cmake --preset dev && cmake --build --preset dev -j$(NPROC)

release:
	cmake --preset release && cmake --build --preset release -j$(NPROC)

fuzz:
	cmake --preset fuzz && cmake --build --preset fuzz -j$(NPROC)

clean:
	rm -rf build
