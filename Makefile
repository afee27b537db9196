# The two commands of the README: `make demo` and `make test`. Both install what they need.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps test-deps build demo test asan-test bench bench-profile format-check format clean

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

# Every tier: unit, fuzz and integration tests, then the same under ASan+UBSan, then formatting.
test: test-deps build
	@ctest --test-dir $(BUILD) --output-on-failure
	@$(MAKE) --no-print-directory asan-test
	@$(MAKE) --no-print-directory format-check

# The benchmark of docs in BENCHMARKS.md: vcpumap against ps -L and minimal C floors.
bench: build
	@bench/run.sh $(BUILD)

# What dominates what the benchmark measures: perf and callgrind profiles over the same guests.
bench-profile: build test-deps
	@bench/profile.sh $(BUILD)

asan-test:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DVCPUMAP_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure

format-check:
	@files=$$(git ls-files '*.cpp' '*.h'); clang-format --dry-run -Werror $$files && \
	  echo "clang-format: $$(echo $$files | wc -w) files formatted"

format:
	@clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
