# libadak — build, install and test.
#
#   make                 release build of the shared library and the CLI into build/
#   make lib             build/lib/libadak.so.X.Y.Z (SONAME libadak.so.X, Swift runtime linked
#                        statically, exports exactly the adak_* functions of include/adak.h)
#   make cli             build/bin/adak
#   make install PREFIX=/usr/local [DESTDIR=...]    make uninstall PREFIX=... [DESTDIR=...]
#   make setup           system packages (apt-get) and the demo model (SmolLM2-135M, from PyPI)
#   make demo            generate text from the demo model
#   make test            every test: Swift tests (release), export check, C programs built
#                        with pkg-config against a temporary install, Python binding (pytest)
#   make test-cpu-paths  the kernel and model-equality Swift tests under each lower kernel level
#                        (ADAK_CPU=scalar, avx2; CPU_LEVELS=all adds the best)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

SWIFT ?= swift
PYTHON ?= python3
CC ?= cc
PREFIX ?= /usr/local
DESTDIR ?=
LLVM_DIR ?= /usr/lib/llvm-19
export ADAK_LLVM_DIR := $(LLVM_DIR)
# libomp for static links (adak.pc's Libs.private): pkg-config's, when it knows one; else LLVM_DIR's.
OPENMP_LIBDIR ?= $(or $(shell pkg-config --variable=libdir openmp 2>/dev/null),$(LLVM_DIR)/lib)

VERSION_MAJOR := $(shell sed -n 's/^\#define ADAK_VERSION_MAJOR \([0-9]*\)$$/\1/p' include/adak.h)
VERSION_MINOR := $(shell sed -n 's/^\#define ADAK_VERSION_MINOR \([0-9]*\)$$/\1/p' include/adak.h)
VERSION_PATCH := $(shell sed -n 's/^\#define ADAK_VERSION_PATCH \([0-9]*\)$$/\1/p' include/adak.h)
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
SONAME := libadak.so.$(VERSION_MAJOR)
LIBFILE := libadak.so.$(VERSION)

BUILD := build
# A scratch path of its own: the release flags below differ from a plain `swift build`.
RELEASE_SCRATCH := .build-release
RELEASE_FLAGS := -c release --scratch-path $(RELEASE_SCRATCH) -Xswiftc -static-stdlib -Xswiftc -use-ld=lld
LIB_LINK_FLAGS := -Xlinker --no-undefined -Xlinker --version-script=$(CURDIR)/scripts/libadak.map \
                  -Xlinker -soname=$(SONAME)

ADAK_CACHE ?= $(CURDIR)/.cache
DEMO_MODEL := $(ADAK_CACHE)/models/SmolLM2-135M-Instruct.Q4_1.gguf
FIXTURES := $(CURDIR)/Tests/Fixtures
TEST_PREFIX := $(CURDIR)/$(BUILD)/test-prefix
VENV := $(CURDIR)/$(BUILD)/venv

SWIFT_SOURCES := $(shell find Sources -type f) Package.swift

.PHONY: all lib cli install uninstall setup system-packages model carved demo test test-swift \
        test-install test-c test-python test-cpu-paths test-scripts clean quant-models

all: lib cli

lib: $(BUILD)/lib/$(LIBFILE)

$(BUILD)/lib/$(LIBFILE): $(SWIFT_SOURCES) include/adak.h scripts/libadak.map
	$(SWIFT) build $(RELEASE_FLAGS) --product adak $(LIB_LINK_FLAGS)
	mkdir -p $(BUILD)/lib
	cp $(RELEASE_SCRATCH)/release/libadak.so $@
	ln -sfn $(LIBFILE) $(BUILD)/lib/$(SONAME)
	ln -sfn $(SONAME) $(BUILD)/lib/libadak.so

cli: $(BUILD)/bin/adak

$(BUILD)/bin/adak: $(SWIFT_SOURCES)
	$(SWIFT) build $(RELEASE_FLAGS) --product adak-cli
	mkdir -p $(BUILD)/bin
	cp $(RELEASE_SCRATCH)/release/adak-cli $@

$(BUILD)/adak.pc: pkgconfig/adak.pc.in include/adak.h
	mkdir -p $(BUILD)
	sed -e 's|@VERSION@|$(VERSION)|' -e 's|@OPENMP_LIBDIR@|$(OPENMP_LIBDIR)|' $< > $@

install: lib cli $(BUILD)/adak.pc
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/lib/$(LIBFILE) $(DESTDIR)$(PREFIX)/lib/$(LIBFILE)
	ln -sfn $(LIBFILE) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sfn $(SONAME) $(DESTDIR)$(PREFIX)/lib/libadak.so
	install -m 644 include/adak.h $(DESTDIR)$(PREFIX)/include/adak.h
	install -m 644 examples/cpp/adak.hpp $(DESTDIR)$(PREFIX)/include/adak.hpp
	# the installed .pc names the prefix itself: pkg-config prints normalised paths
	sed -e 's|^prefix=.*|prefix=$(abspath $(PREFIX))|' $(BUILD)/adak.pc > $(DESTDIR)$(PREFIX)/lib/pkgconfig/adak.pc
	chmod 644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/adak.pc
	install -m 755 $(BUILD)/bin/adak $(DESTDIR)$(PREFIX)/bin/adak

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/$(LIBFILE) $(DESTDIR)$(PREFIX)/lib/$(SONAME) \
	      $(DESTDIR)$(PREFIX)/lib/libadak.so $(DESTDIR)$(PREFIX)/include/adak.h $(DESTDIR)$(PREFIX)/include/adak.hpp \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/adak.pc $(DESTDIR)$(PREFIX)/bin/adak

setup: system-packages model

system-packages:
	scripts/install-system-packages.sh

model:
	scripts/fetch-model.sh

# The demo MoE: SmolLM2 carved into 16 experts + a shared expert (native top-8), rebuilt in
# seconds from the committed carving plan; decoded with the committed Ada-K allocator under a
# FLOPs budget, printing the routing statistics.
CARVED_MODEL := $(ADAK_CACHE)/models/SmolLM2-135M-carved-e16s25.gguf
CARVE_PLAN := assets/plans/smollm2-135m-e16-s25.plan.gguf
DEMO_ALLOCATOR := assets/allocators/smollm2-e16s25-lambda1.0.gguf
DEMO_PROMPT := The three most important things to know about the ocean are

$(CARVED_MODEL): $(BUILD)/bin/adak $(CARVE_PLAN) | model
	$(BUILD)/bin/adak carve $(DEMO_MODEL) $@ --plan $(CARVE_PLAN)

carved: $(CARVED_MODEL)

demo: all model $(CARVED_MODEL)
	@echo "== dense SmolLM2-135M (Q4_1), greedy"
	$(BUILD)/bin/adak generate -m $(DEMO_MODEL) --temp 0 -n 48 --echo --verbose -p "$(DEMO_PROMPT)"
	@echo "== carved MoE (16 experts, native top-8), trained Ada-K allocator, expert-FLOPs budget 0.75 of static top-8, one price for all layers"
	$(BUILD)/bin/adak generate -m $(CARVED_MODEL) --temp 0 -n 48 --echo --verbose --stats \
	    --repeat-penalty 1.15 --routing adak --allocator $(DEMO_ALLOCATOR) --budget 0.75 --budget-mode global -p "$(DEMO_PROMPT)"

# Quantized models other tests read: $(ADAK_CACHE)/quant/<base>.<TYPE>.gguf for SmolLM2 (from the
# demo Q4_1) and the moe256 fixture, written by `adak quantize` and checked against the hash of
# llama.cpp's quantizer output (Tests/Fixtures/quant); files with the right hash are kept.
quant-models: $(BUILD)/bin/adak | model
	scripts/quant-models.sh $(BUILD)/bin/adak "$(ADAK_CACHE)/quant" "$(FIXTURES)" "$(DEMO_MODEL)"

# Every group runs even when an earlier one fails; the exit status says whether all passed.
TEST_GROUPS := quant-models test-swift test-cpu-paths test-install test-c test-python test-scripts
test:
	@passed=0; failed=0; failures=""; \
	for t in $(TEST_GROUPS); do \
	    echo "=== $$t"; \
	    if $(MAKE) --no-print-directory $$t; then passed=$$((passed + 1)); \
	    else failed=$$((failed + 1)); failures="$$failures $$t"; fi; \
	done; \
	if [ $$failed -ne 0 ]; then echo "failed groups:$$failures"; fi; \
	echo "make test: $$passed passed, $$failed failed"; \
	[ $$failed -eq 0 ]

test-swift:
	$(SWIFT) test -c release

# The kernel suites and model-equality suites again under each lower kernel level this CPU has
# (ADAK_CPU=scalar|avx2|avx512, dispatch.c), so one AVX-512 machine tests every path; test-swift
# ran them at the best level. SmolLM2's logits take minutes on the scalar kernels, so the scalar
# level runs the tiny models only. CPU_LEVELS=all runs the best level here too.
CPU_PATH_KERNEL_TESTS := KernelTests|OpsTests|QuantizeTests|TinyModelTests
CPU_PATH_TESTS := $(CPU_PATH_KERNEL_TESTS)|SmolLM2Tests/logitsAreLlamaCppsToTheBit
CPU_LEVELS ?= lower
test-cpu-paths:
	@best=scalar; \
	if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && grep -qw f16c /proc/cpuinfo; then best=avx2; fi; \
	if [ $$best = avx2 ] && grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && \
	   grep -qw avx512vl /proc/cpuinfo && grep -qw avx512_vnni /proc/cpuinfo; then best=avx512; fi; \
	for level in scalar avx2 avx512; do \
	    if [ "$(CPU_LEVELS)" != all ] && [ $$level = $$best ]; then break; fi; \
	    filter='$(CPU_PATH_TESTS)'; if [ $$level = scalar ]; then filter='$(CPU_PATH_KERNEL_TESTS)'; fi; \
	    echo "== ADAK_CPU=$$level (best on this CPU: $$best)"; \
	    ADAK_CPU=$$level $(SWIFT) test -c release --filter "$$filter"; \
	    if [ $$level = $$best ]; then break; fi; \
	done

# A temporary install, as a user would make it; the C and Python tests use only this.
$(TEST_PREFIX)/.installed: $(BUILD)/lib/$(LIBFILE) $(BUILD)/bin/adak $(BUILD)/adak.pc
	rm -rf $(TEST_PREFIX)
	$(MAKE) --no-print-directory install PREFIX=$(TEST_PREFIX)
	touch $@

test-install: $(TEST_PREFIX)/.installed
	scripts/check-exports.sh $(TEST_PREFIX)/lib/$(LIBFILE) include/adak.h
	scripts/check-install.sh $(TEST_PREFIX)

test-c: $(TEST_PREFIX)/.installed
	scripts/test-c.sh $(TEST_PREFIX) "$(FIXTURES)" "$(DEMO_MODEL)"

test-python: $(TEST_PREFIX)/.installed
	scripts/test-python.sh $(TEST_PREFIX) "$(VENV)" "$(FIXTURES)" "$(DEMO_MODEL)"

# The evaluation protocol's own tests (scripts/tests: the split, no test text before the choices
# are frozen); plain python3, no packages.
test-scripts:
	python3 -m unittest discover -s scripts/tests

clean:
	rm -rf $(BUILD) $(RELEASE_SCRATCH)

# ---------------------------------------------------------------------------------------------
# Reliability (issue 8): sanitizers, fuzzing, soak. The library's code is compiled straight into
# each test program with the sanitizer (scripts/build-instrumented.sh), so no sanitizer runtime
# has to be preloaded into a host.
#
#   make sanitize        C kernels with ASan+UBSan, Swift core with ASan: misuse suites, threads,
#                        fuzz-corpus replays, Swift loader/tokenizer tests (swift test --sanitize)
#   make tsan            4 threads, each with its own session on one shared model, under TSan
#   make fuzz [FUZZ_SECONDS=600]   libFuzzer on the GGUF loader and the tokenizers (scripts/fuzz.sh)
#   make soak            20,000 decoded tokens, reset every 500, RSS within 1% of the warm-up's
.PHONY: sanitize tsan fuzz soak
FUZZ_SECONDS ?= 600

sanitize:
	FIXTURES="$(FIXTURES)" scripts/sanitize.sh asan

tsan:
	FIXTURES="$(FIXTURES)" scripts/sanitize.sh tsan

fuzz:
	FIXTURES="$(FIXTURES)" scripts/fuzz.sh $(FUZZ_SECONDS) both

soak: $(TEST_PREFIX)/.installed
	mkdir -p $(BUILD)/c
	PKG_CONFIG_PATH=$(TEST_PREFIX)/lib/pkgconfig; export PKG_CONFIG_PATH; \
	$(CC) -std=c11 -Wall -Wextra -Werror -O2 -D_GNU_SOURCE Tests/C/soak.c -o $(BUILD)/c/soak \
	    $$(pkg-config --cflags --libs adak)
	env -i $(BUILD)/c/soak $(FIXTURES)/models/tiny-mixtral.f32.gguf 20000 500
