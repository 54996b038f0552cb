# Makefile - the one build of tally: the CLI, the example user jobs, the tests and the benchmarks.
#
#   make          build/tally and build/examples/*.so
#   make demo     generate a small sample and run the aggregate and wordcount jobs on it
#   make test     build, then run the whole suite twice: plain and under ASan+UBSan
#   make bench    the performance benchmarks (not tests)
#   make image    the container image (Containerfile) with podman or docker

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
DEFS    := -D_GNU_SOURCE
INC     := -Iinclude -Isrc
ALL_CFLAGS = -std=c11 $(WARN) $(DEFS) $(INC) -pthread -MMD -MP $(CFLAGS) $(EXTRA_CFLAGS)
LIBS    := -lxxhash -ljansson -lzookeeper_mt -lz -ldl -lm -pthread
# The CLI exports the tally_* API so that user jobs loaded with dlopen() resolve against it.
LDFLAGS_EXE := -rdynamic

BUILD   ?= build
SRC     := $(sort $(shell find src -name '*.c'))
MAIN    := src/cli/main.c
LIBSRC  := $(filter-out $(MAIN),$(SRC))
OBJ     := $(SRC:%.c=$(BUILD)/obj/%.o)
LIBOBJ  := $(LIBSRC:%.c=$(BUILD)/obj/%.o)
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%.so,$(wildcard examples/*.c))
UNIT    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/*.c))
BENCHBIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))

.PHONY: deps all demo test test-plain test-asan bench bench-cluster clean format fuzz image
all: $(BUILD)/tally $(EXAMPLES)

$(BUILD)/tally: $(OBJ)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_EXE) -o $@ $^ $(LIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/examples/%.so: examples/%.c include/tally/tally.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIBOBJ)
	@mkdir -p $(dir $@) $(BUILD)/obj/tests
	$(CC) $(ALL_CFLAGS) -MF $(BUILD)/obj/tests/$*.d -Wno-missing-prototypes -o $@ $(filter %.c %.o,$^) $(LIBS) -lcmocka

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O2 -o $@ $< $(LIBS)

# The yardstick of the word count benchmark, copied from shared/yardsticks: built as its
# author says (AVX2), outside our warning flags.
$(BUILD)/bench/wc_fast: bench/wc_fast.c
	@mkdir -p $(dir $@)
	$(CC) -O3 -march=native -o $@ $<

units: $(UNIT)

# The status page's files are assembled into the object with .incbin.
$(BUILD)/obj/src/obs/statuspage.o: $(wildcard web/*)

# The Debian packages tally needs (a no-op when they are installed).
deps:
	@./scripts/install-deps.sh

demo: deps
	$(MAKE) --no-print-directory all
	./scripts/demo.sh $(BUILD)/tally

# The suite runs against the plain build, then again against a sanitizer build in build-asan/.
test: deps
	$(MAKE) --no-print-directory all units
	$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	    all units
	./tests/run.sh build build-asan

test-plain: all units
	./tests/run.sh build

bench: all $(BENCHBIN)
	./bench/analytics.sh $(BUILD)
	./bench/run.sh $(BUILD)
	./bench/cluster.sh $(BUILD)
	./bench/small.sh $(BUILD)
	./bench/ha.sh $(BUILD)
	./bench/noisy.sh $(BUILD)
	./bench/fair.sh $(BUILD)
	./bench/scale.sh $(BUILD)

bench-cluster: all
	./bench/cluster.sh $(BUILD)
	./bench/small.sh $(BUILD)
	./bench/ha.sh $(BUILD)
	./bench/noisy.sh $(BUILD)
	./bench/fair.sh $(BUILD)

# libFuzzer targets (clang): every decoder of bytes from outside. FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 20
fuzz:
	$(MAKE) --no-print-directory CC=clang BUILD=build-fuzz OPT=-O1 \
	    EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer" $(SRC:%.c=build-fuzz/obj/%.o)
	for t in wire reader csv json; do \
	    clang -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -O1 -g -fsanitize=fuzzer,address,undefined \
	        -o build-fuzz/fuzz_$$t fuzz/fuzz_$$t.c $(filter-out build-fuzz/obj/src/cli/main.o,$(SRC:%.c=build-fuzz/obj/%.o)) $(LIBS) || exit 1; \
	done
	mkdir -p build-fuzz/corpus build-fuzz/corpus_reader build-fuzz/corpus_csv build-fuzz/corpus_json
	cp -n fuzz/seeds/* build-fuzz/corpus/ 2>/dev/null || true
	cp -n fuzz/seeds_reader/* build-fuzz/corpus_reader/ 2>/dev/null || true
	cp -n fuzz/seeds_csv/* build-fuzz/corpus_csv/ 2>/dev/null || true
	cp -n fuzz/seeds_json/* build-fuzz/corpus_json/ 2>/dev/null || true
	./build-fuzz/fuzz_wire -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build-fuzz/corpus
	./build-fuzz/fuzz_reader -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build-fuzz/corpus_reader
	./build-fuzz/fuzz_csv -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build-fuzz/corpus_csv
	./build-fuzz/fuzz_json -max_total_time=$(FUZZ_SECONDS) -max_len=4500 -dict=fuzz/json.dict build-fuzz/corpus_json

# The image deploy/k8s runs; IMAGE=NAME:TAG (default tally:latest). Says why when it cannot.
image:
	./scripts/image.sh

format:
	clang-format -i $(SRC) $(wildcard src/*/*.h include/tally/*.h)

clean:
	rm -rf build build-asan build-clang build-fuzz

-include $(OBJ:.o=.d) $(wildcard $(BUILD)/obj/tests/*.d)
