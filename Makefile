# citer: one library (lib/), thin tools (tools/), tests (tests/), benchmarks (bench/).
# Everything is built into $(BUILD); tools land in $(BINDIR).

PREFIX  ?= /usr/local
BUILD   ?= build
BINDIR  ?= bin
CC      ?= cc
OPT     ?= -O2 -g
WERROR  ?=
CFLAGS  ?= $(OPT)
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra $(WERROR) -pthread
CPPFLAGS += -Ilib
LDLIBS  += -ljson-c -lxxhash -lopenblas -lm -pthread

LIB_SRC   := $(sort $(wildcard lib/*.c))
LIB_OBJ   := $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
LIB       := $(BUILD)/libciter.a
TOOL_SRC  := $(sort $(wildcard tools/citer-*.c))
TOOLS     := $(TOOL_SRC:tools/%.c=$(BINDIR)/%)
TEST_SRC  := $(sort $(wildcard tests/t_*.c))
TESTS     := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))
BENCHES   := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
MAN1      := $(sort $(wildcard man/man1/*.1))
MAN5      := $(sort $(wildcard man/man5/*.5))
MAN7      := $(sort $(wildcard man/man7/*.7))

.PHONY: all test check-asan install bench clean unicode-tables demo demo-models
all: $(LIB) $(TOOLS) lib/libciter.a

# The brief promises lib/libciter.a; the real archive lives in $(BUILD).
lib/libciter.a: $(LIB)
	@if [ "$(BUILD)" = build ]; then ln -sf ../$(LIB) $@; fi

$(BUILD)/lib/%.o: lib/%.c $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BINDIR)/%: tools/%.c $(LIB) $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(LIB) $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB) $(wildcard lib/*.h) $(wildcard bench/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

test: all $(TESTS)
	@CITER_BIN=$(abspath $(BINDIR)) CITER_TESTBIN=$(abspath $(BUILD)/tests) sh tests/run.sh

# The whole suite again under AddressSanitizer and UndefinedBehaviorSanitizer.
check-asan:
	$(MAKE) BUILD=build-asan BINDIR=build-asan/bin \
	  OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDLIBS="-ljson-c -lxxhash -lopenblas -lm -pthread -fsanitize=address,undefined" test

bench: all $(BENCHES)
	@for b in $(BENCHES); do $$b || exit 1; done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(MAN1) $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 $(MAN5) $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 644 $(MAN7) $(DESTDIR)$(PREFIX)/share/man/man7

# The CITER experiment of examples/Makefile on the demo model pair (examples/README).
# >>> DEMO: the demo's settings: the committed pair was trained on easy two-step problems
# (citer-gen --easy --steps 2) through the short template; the test split is disjoint.
DEMO_SLM  ?= models/slm
DEMO_LLM  ?= models/llm
DEMO_ARGS ?= OUT=out/demo FORMAT=math STEPS=2 GEN_FLAGS=--easy TEMPLATE=templates/math-short.tpl \
    TRAIN_N=4000 TEST_N=300 MAX_TOKENS=96 THREADS=1 ROUTE_FLAGS="-j 2" \
    TAUS="0.9 0.95 0.98" R1_TAUS=0.95 RANDOM_PS="0.1 0.25 0.5" CONFIDENCES="0.8 0.9 0.95" \
    QUERY_TAUS="0.5 0.99"
# <<< DEMO
demo: all
	@for f in $(foreach m,$(DEMO_SLM) $(DEMO_LLM),$(addprefix examples/$(m)/,config.json model.safetensors tokenizer.json)); do \
	  [ -f $$f ] || { echo "make demo: $$f is missing: train the demo pair with 'make demo-models'" >&2; exit 1; }; done
	$(MAKE) -C examples BIN=$(abspath $(BINDIR)) SLM=$(DEMO_SLM) LLM=$(DEMO_LLM) $(DEMO_ARGS) PRINT=0
	@$(MAKE) -s -C examples BIN=$(abspath $(BINDIR)) $(DEMO_ARGS) summary

# Trains the demo pair into examples/models (the recipe is the DEMO MODELS block of examples/Makefile).
demo-models: all
	$(MAKE) -C examples BIN=$(abspath $(BINDIR)) models

# Regenerate lib/unicode_tables.c from Debian's unicode-data package.
unicode-tables:
	python3 tools/gen-unicode-tables.py /usr/share/unicode > lib/unicode_tables.c.tmp
	mv lib/unicode_tables.c.tmp lib/unicode_tables.c

clean:
	rm -rf build build-asan $(BINDIR)/citer-* lib/libciter.a
