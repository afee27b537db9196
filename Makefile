# The two commands of the README: `make demo` and `make test`. Both install what they need.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# Seconds each fuzz target runs: `make fuzz` 30; `make test` 22 (21 targets, each starting in
# 1-2 s: about 8.5 minutes in all).
FUZZ_SECONDS ?= 30
TEST_FUZZ_SECONDS ?= 22
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps test-deps build demo test asan-test fuzz fuzz-build bench bench-profile format-check \
	format clean install deb

all: build

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Boots two throwaway QEMU guests, shows what vcpumap answers about them, stops them.
demo: build test-deps
	@scripts/demo.sh $(BUILD)/src/cli/vcpumap

# Every tier: unit, fuzz-corpus and integration tests, then the same under ASan+UBSan, then
# coverage-guided fuzzing of every parser (bounded), then formatting.
test: test-deps build
	@ctest --test-dir $(BUILD) --output-on-failure
	@$(MAKE) --no-print-directory asan-test
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)
	@$(MAKE) --no-print-directory format-check

# `make install` (DESTDIR and PREFIX work): the binary, man pages, completions, the exporter unit
# and the examples under share/doc/vcpumap/examples/.
PREFIX ?= /usr/local
install: build
	@cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@cmake --install $(BUILD)

# The Debian package, into dist/ (debhelper, dh with the cmake build system; README.md).
deb: deps
	@dpkg-checkbuilddeps
	@mkdir -p dist
	@DEB_BUILD_OPTIONS="parallel=$(JOBS) $$DEB_BUILD_OPTIONS" CMAKE_CXX_COMPILER_LAUNCHER=$$(command -v ccache) \
	  CMAKE_C_COMPILER_LAUNCHER=$$(command -v ccache) \
	  debian/rules binary
	@ls dist/vcpumap_*.deb

# The benchmark of docs in BENCHMARKS.md: vcpumap against ps -L and minimal C floors, then the
# exporter's cost per scrape at 10,000 vCPUs (issue 14), serve against Debian's
# prometheus-libvirt-exporter over real libvirt domains (issue 13), and the delay split's (issue
# 12).
bench: build test-deps
	@bench/run.sh $(BUILD)
	@bench/serve_cost.sh $(BUILD)
	@bench/libvirt_exporters.sh $(BUILD)
	@bash bench/delay_cost.sh $(BUILD)/src/cli/vcpumap $(BUILD)/tests/fake_guest

# What dominates what the benchmark measures: perf and callgrind profiles over the same guests.
bench-profile: build test-deps
	@bench/profile.sh $(BUILD)

asan-test:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DVCPUMAP_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure

# The libFuzzer targets (tests/fuzz/), built with clang in $(FUZZ_BUILD): their seed corpus and
# regressions replayed, then each fuzzed for FUZZ_SECONDS. A crash fails it and its input is kept
# in $(FUZZ_BUILD)/crashes/ (tests/README.md says how to reproduce it).
fuzz-build: test-deps
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVCPUMAP_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets

fuzz: fuzz-build
	@ctest --test-dir $(FUZZ_BUILD) --output-on-failure
	@scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

format-check:
	@files=$$(git ls-files '*.cpp' '*.h'); clang-format --dry-run -Werror $$files && \
	  echo "clang-format: $$(echo $$files | wc -w) files formatted"

format:
	@clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) dist
	@[ ! -d obj-$$(dpkg-architecture -qDEB_HOST_GNU_TYPE) ] || debian/rules clean
