# hdf5-async build. `make` builds everything under build/, `make test` runs
# every test, `make run` starts the server with ./config.ini. The first step of
# each is `deps`, which installs any missing Debian package.
#   make test SANITIZE=1   same suite on an ASan/UBSan build (in build/asan/)

PY        ?= /usr/bin/python3
CONFIG    ?= config.ini
SANITIZE  ?= 0

ifeq ($(SANITIZE),1)
BUILD     ?= build/asan
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT       := -O1 -g
else
BUILD     ?= build
SANFLAGS  :=
OPT       := -O2 -g
endif

PKGS      := hdf5 libuv inih
CC        ?= cc
CFLAGS    := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
             -Wshadow -Wno-unused-parameter $(OPT) $(SANFLAGS) -Isrc
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -llzf -lpthread -lm
LDFLAGS   := $(SANFLAGS)

PROTO_SRC  := $(wildcard src/proto/*.c)
# src/common: small pieces the server and the CLI share
SERVER_SRC := $(wildcard src/server/*.c) $(wildcard src/common/*.c)
PROTO_OBJ  := $(PROTO_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

SERVER     := $(BUILD)/hdf5-async-server

.PHONY: all deps run test test-unit test-integration clean

all: $(SERVER) $(UNIT_BIN)

deps:
	@./scripts/install-deps.sh

$(BUILD)/%.o: %.c $(wildcard src/proto/*.h src/server/*.h src/common/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/libh5aproto.a: $(PROTO_OBJ)
	ar rcs $@ $^

$(SERVER): $(SERVER_OBJ) $(BUILD)/libh5aproto.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Unit tests of server modules link the module object too.
$(BUILD)/tests/test_h5types: tests/unit/test_h5types.c $(BUILD)/src/server/h5types.o $(BUILD)/libh5aproto.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libh5aproto.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# ---- libhdf5async: the C client library (src/client + src/proto) ----
# Compiled position-independent with hidden visibility, so only HDF5A_API
# functions are exported. The static library is made the same way: its
# objects are merged with `ld -r` and the hidden (src/proto) symbols turned
# local, so they cannot clash with an application's own. Its tests start a
# real server, so they need it built; `make test-unit` runs them too.
PREFIX          ?= /usr/local
DESTDIR         ?=
CLIENT_SRC      := $(wildcard src/client/*.c)
LIB_OBJ         := $(patsubst %.c,$(BUILD)/pic/%.o,$(CLIENT_SRC) $(PROTO_SRC))
LIB_A           := $(BUILD)/libhdf5async.a
LIB_SO          := $(BUILD)/libhdf5async.so.0
LIB_HEADERS     := include/hdf5_async.h $(wildcard include/hdf5_async/adapters/*.h)
LIB_VERSION     := $(shell sed -n 's/^\#define HDF5A_VERSION "\(.*\)"/\1/p' include/hdf5_async.h)
CLIENT_TEST_BIN := $(patsubst tests/client/%.c,$(BUILD)/tests/client/%,$(wildcard tests/client/test_*.c))

all: $(LIB_A) $(LIB_SO) $(CLIENT_TEST_BIN)
test-unit: test-client
.PHONY: test-client install

$(BUILD)/pic/%.o: %.c $(wildcard src/proto/*.h src/client/*.h) include/hdf5_async.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iinclude -fPIC -fvisibility=hidden -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	ld -r -o $(BUILD)/libhdf5async.o $^
	objcopy --localize-hidden $(BUILD)/libhdf5async.o
	rm -f $@ && ar rcs $@ $(BUILD)/libhdf5async.o
# The write-ahead-log driver's crash tests (tests/unit/test_wal.c).
$(BUILD)/tests/test_wal: tests/unit/test_wal.c $(BUILD)/src/server/wal.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)


$(LIB_SO): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libhdf5async.so.0 $(LDFLAGS) -o $@ $^
	ln -sf libhdf5async.so.0 $(BUILD)/libhdf5async.so

$(BUILD)/tests/client/%: tests/client/%.c $(LIB_A) $(LIB_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iinclude $(PKG_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) \
	    $(shell pkg-config --libs libuv 2>/dev/null)

test-client: $(CLIENT_TEST_BIN) $(SERVER)
	@set -e; for t in $(CLIENT_TEST_BIN); do echo "== $$t"; H5A_SERVER=$(abspath $(SERVER)) $$t; done

install: $(LIB_A) $(LIB_SO)
	install -d $(DESTDIR)$(PREFIX)/include/hdf5_async/adapters $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/hdf5_async.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/hdf5_async/adapters/*.h $(DESTDIR)$(PREFIX)/include/hdf5_async/adapters/
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libhdf5async.so.0 $(DESTDIR)$(PREFIX)/lib/libhdf5async.so
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	    'Name: hdf5async' 'Description: C client library of hdf5-async' 'Version: $(LIB_VERSION)' \
	    'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lhdf5async' \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/hdf5async.pc

run: deps $(SERVER)
	./$(SERVER) --config $(CONFIG)

test: deps
	$(MAKE) all
	$(MAKE) test-unit test-integration test-cli

test-unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# ASan's leak checker and Python's own allocations do not mix; the server
# runs under ASan in its own process, pytest itself is not instrumented.
test-integration: $(SERVER)
	H5A_SERVER=$(abspath $(SERVER)) $(PY) -m pytest -q tests/integration

clean:
	rm -rf build

# ---- hdf5-async: the command-line tool (src/cli), linked against libhdf5async ----
# `make test` runs test-cli after the integration tests: its pytest suite
# (tests/cli) drives the built binary against a real server.
CLI_SRC := $(wildcard src/cli/*.c) $(wildcard src/common/*.c)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
CLI     := $(BUILD)/hdf5-async

all: $(CLI)
.PHONY: test-cli

$(BUILD)/src/cli/%.o: src/cli/%.c $(wildcard src/cli/*.h) include/hdf5_async.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iinclude $(shell pkg-config --cflags inih 2>/dev/null) -c $< -o $@

$(CLI): $(CLI_OBJ) $(LIB_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs inih 2>/dev/null) -lm

test-cli: $(CLI) $(SERVER)
	H5A_CLI=$(abspath $(CLI)) H5A_SERVER=$(abspath $(SERVER)) $(PY) -m pytest -q tests/cli

# ---- make bench: the server against in-process libhdf5 and loopback TCP ----
# One run, one table of ratios (see bench/bench.c). Figures are for reading,
# never asserted in tests. `make bench BENCH_ARGS=--quick` for a short run.
BENCH      := $(BUILD)/hdf5-async-bench
BENCH_ARGS ?=

all: $(BENCH)
.PHONY: bench

$(BENCH): bench/bench.c include/hdf5_async.h $(LIB_A)
	$(CC) $(CFLAGS) -Iinclude $(PKG_CFLAGS) $(LDFLAGS) -o $@ bench/bench.c $(LIB_A) $(PKG_LIBS)

bench: deps
	$(MAKE) $(SERVER) $(BENCH)
	./$(BENCH) --server $(SERVER) $(BENCH_ARGS)

# ---- fuzzing (fuzz/): libFuzzer targets, built with clang into build/fuzz/ ----
# `make fuzz FUZZ_SECONDS=60` builds them and runs each for that long, seeded
# from fuzz/corpus/<target>/ (read only); what they learn goes to
# build/fuzz/corpus-<target>/, crashes to build/fuzz/artifacts/. `make
# fuzz-smoke` is the short run CI does. Only these targets need clang
# (fuzz/install-deps.sh installs it). See fuzz/README.md.
FUZZ_CC            ?= clang
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_DIR           := build/fuzz
FUZZ_SAN           := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS        := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra \
                      -Wno-unused-parameter -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) -Isrc
# everything but the event loop, the storage thread and main()
FUZZ_LIB_SRC       := $(wildcard src/proto/*.c src/common/*.c) $(filter-out src/server/main.c \
                      src/server/net.c src/server/storage.c,$(wildcard src/server/*.c))
FUZZ_LIB_OBJ       := $(FUZZ_LIB_SRC:%.c=$(FUZZ_DIR)/%.o)
FUZZ_TARGETS       := decode engine
FUZZ_BINS          := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_RUN_FLAGS     ?= -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 -dict=fuzz/request.dict
FUZZ_MAXLEN_decode := 16384
FUZZ_MAXLEN_engine := 8192

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-deps

fuzz-deps:
	@./fuzz/install-deps.sh

fuzz-build: fuzz-deps
	$(MAKE) $(FUZZ_BINS)

$(FUZZ_DIR)/%.o: %.c $(wildcard src/proto/*.h src/server/*.h src/common/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/fuzz_decode: $(FUZZ_DIR)/fuzz/fuzz_decode.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(PKG_LIBS)

$(FUZZ_DIR)/fuzz_engine: $(FUZZ_DIR)/fuzz/fuzz_engine.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(PKG_LIBS)

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/corpus-$$t $(FUZZ_DIR)/artifacts; \
	    echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	    LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp:print_suppressions=0 \
	    nice -n 19 $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) $(FUZZ_RUN_FLAGS) \
	        -max_len=$$(case $$t in decode) echo $(FUZZ_MAXLEN_decode);; *) echo $(FUZZ_MAXLEN_engine);; esac) \
	        -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- $(FUZZ_DIR)/corpus-$$t fuzz/corpus/$$t; \
	done

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)
