# Switchyard: the two commands of the README, and their parts.
#   make run    install dependencies, build, start the gateway on the quick-start config
#   make test   install dependencies, build, run every test (unit, integration, real SDKs)
#   make check-sanitizers   the tests under ASan+UBSan and TSan, and every fuzzer (CI runs it too)

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2

.PHONY: all deps build run test check-sanitizers bench fuzz clean

all: build

deps:
	./scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD_DIR)/build.ninja
	ninja -C $(BUILD_DIR) -j$(JOBS)

# Only what it runs: the gateway and the demo provider (not the tests and benchmarks).
run: deps $(BUILD_DIR)/build.ninja
	ninja -C $(BUILD_DIR) -j$(JOBS) switchyard switchyard-fake-provider
	./scripts/run-demo.sh

test: build
	ninja -C $(BUILD_DIR) -j$(JOBS) check-headers
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 900

bench: build
	./scripts/install-deps.sh --bench
	./bench/run.sh

check-sanitizers: deps
	JOBS=$(JOBS) ./scripts/check-sanitizers.sh

fuzz: deps
	./tests/fuzz/run.sh

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan build-fuzz
