# pgtide build. `make` builds build/release/pgtide; `make test` runs unit and
# integration tests; `make check` runs them again under ASan+UBSan.

PKGS      := libpq yaml-0.1 libmicrohttpd
CC        ?= cc
SANITIZE  ?=
BUILD     ?= $(if $(SANITIZE),build/sanitize,build/release)
PYTHON    ?= /usr/bin/python3
PYTEST_ARGS ?=

WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wvla -Wimplicit-fallthrough \
	-Wcast-qual -Wundef
CPPFLAGS += -D_GNU_SOURCE -Isrc -I$(BUILD)/gen $(shell pkg-config --cflags $(PKGS))
CFLAGS   ?= -O2 -g
CFLAGS   += $(WARN) -pthread -MMD -MP
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -pthread -lm
ifneq ($(SANITIZE),)
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

# One folder per stage of the data flow (docs/architecture.md); a header is
# included by its folder-qualified name, so every #include shows the layer.
SRCS      := $(wildcard src/*/*.c)
HDRS      := $(wildcard src/*/*.h)
OBJS      := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
LIB_OBJS  := $(filter-out $(BUILD)/obj/cmd/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/*/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
BIN       := $(BUILD)/pgtide

.PHONY: all deps unit integration test check tsan format format-check lint demo bench bench-cdc bench-cutover bench-validate bench-http bench-throttle bench-shard soak clean

all: $(BIN)

$(BIN): $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# the dashboard page, as one C string literal
$(BUILD)/gen/surface/dashboard.inc: src/surface/dashboard.html
	@mkdir -p $(@D)
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $< > $@

$(BUILD)/obj/surface/dashboard.o: $(BUILD)/gen/surface/dashboard.inc

$(BUILD)/unit/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(LIB_OBJS) \
		$(LDFLAGS) $(LDLIBS) -lcmocka

deps:
	@scripts/install-deps.sh

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# Tests run TEST_JOBS at a time (they wait on servers more than they
# compute), then those marked serial alone.
TEST_JOBS ?= 2

integration: $(BIN)
	PGTIDE_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q -x -n $(TEST_JOBS) \
		--durations=10 -m "not serial" tests/integration $(PYTEST_ARGS)
	PGTIDE_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q -x --durations=5 -m serial \
		tests/integration $(PYTEST_ARGS)

test: deps
	$(MAKE) unit
	$(MAKE) integration

check:
	PGTIDE_SANITIZED=1 $(MAKE) SANITIZE=address,undefined test

tsan:
	PGTIDE_SANITIZED=1 $(MAKE) SANITIZE=thread test

format:
	clang-format -i $(SRCS) $(HDRS) $(UNIT_SRCS)

format-check:
	clang-format --dry-run -Werror $(SRCS) $(HDRS) $(UNIT_SRCS)

lint:
	@! grep -nE '\b(strcpy|strcat|sprintf|strtok|atoi|gets)\s*\(' $(SRCS) $(HDRS) \
		|| (echo "lint: banned function (use the bounded variant)"; exit 1)
	@scripts/check-layers.sh

demo:
	scripts/demo.sh

bench: $(BIN)
	PGTIDE_BIN=$(abspath $(BIN)) bench/full_load.sh

bench-cdc: $(BIN)
	PGTIDE_BIN=$(abspath $(BIN)) bench/cdc.sh

bench-cutover: $(BIN)
	PGTIDE_BIN=$(abspath $(BIN)) bench/cutover.sh

bench-validate: $(BIN)
	PGTIDE_BIN=$(abspath $(BIN)) bench/validate.sh

bench-shard: $(BIN)
	PGTIDE_BIN=$(abspath $(BIN)) bench/shard.sh

bench-throttle: $(BIN)
	PGTIDE_BIN=$(abspath $(BIN)) bench/throttle.sh

# the full load with --http and the dashboard open in Chromium, against without
bench-http: $(BIN)
	PGTIDE_BIN=$(abspath $(BIN)) bench/http.sh

# minutes of random server crashes, cut connections and kill -9 under a
# writer, then cutover and an exact check (docs/faults.md); SOAK_MINUTES=5
soak: $(BIN)
	PGTIDE_BIN=$(abspath $(BIN)) bench/soak.sh

clean:
	rm -rf build

-include $(OBJS:.o=.d)
