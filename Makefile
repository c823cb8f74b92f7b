# hdf5-async build. `make` builds everything under build/, `make test` runs
# every test, `make run` starts the server with ./config.ini. The first step of
# each is `deps`, which installs any missing Debian package.
#   make test SANITIZE=1   same suite on an ASan/UBSan build (in build/asan/)
#   make test VALGRIND=1   same suite under valgrind memcheck (build/valgrind/):
#                          the C tests, and the server and the CLI the tests start

PY        ?= /usr/bin/python3
CONFIG    ?= config.ini
SANITIZE  ?= 0
VALGRIND  ?= 0

ifeq ($(SANITIZE),1)
BUILD     ?= build/asan
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT       := -O1 -g
else ifeq ($(VALGRIND),1)
BUILD     ?= build/valgrind
SANFLAGS  :=
OPT       := -O1 -g
else
BUILD     ?= build
SANFLAGS  :=
OPT       := -O2 -g
endif

# What the tests run. Under VALGRIND=1: the C test binaries through
# tests/valgrind.sh, and for the server and the CLI (which the tests start
# themselves, from $$H5A_SERVER and $$H5A_CLI) two-line scripts in
# $(BUILD)/vg/ that exec tests/valgrind.sh on the real binary. Each suite's
# servers and CLI runs log to $(BUILD)/valgrind-logs/SUITE/, checked after
# the suite: any memory error or lost block fails the run (see
# tests/valgrind.sh). Timeouts in the tests are scaled by
# $$H5A_TEST_TIMEOUT_SCALE.
ifeq ($(SANITIZE)$(VALGRIND),11)
$(error SANITIZE=1 and VALGRIND=1 do not mix: ASan binaries cannot run under valgrind)
endif
ifeq ($(VALGRIND),1)
VG          := $(CURDIR)/tests/valgrind.sh
VG_LOGS     := $(abspath $(BUILD))/valgrind-logs
TEST_SERVER := $(BUILD)/vg/hdf5-async-server
TEST_CLI    := $(BUILD)/vg/hdf5-async
export H5A_TEST_TIMEOUT_SCALE ?= 10
# $(call vg_suite,NAME,COMMAND): COMMAND with its valgrind logs in
# $(VG_LOGS)/NAME, then the logs checked (also when COMMAND failed)
vg_suite = rm -rf $(VG_LOGS)/$(1) && mkdir -p $(VG_LOGS)/$(1) && \
    { ( export H5A_VALGRIND_LOGDIR=$(VG_LOGS)/$(1); $(2) ); rc=$$?; \
      $(VG) --check-logs $(VG_LOGS)/$(1) && exit $$rc; }
else
VG          :=
TEST_SERVER := $(BUILD)/hdf5-async-server
TEST_CLI    := $(BUILD)/hdf5-async
vg_suite     = $(2)
endif

PKGS      := hdf5 libuv inih openssl
CC        ?= cc
# -MMD -MP: the compiler writes next to each output a .d file naming the
# headers it read (included at the end), so a header change rebuilds only
# what includes it
DEPFLAGS  := -MMD -MP
CFLAGS    := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
             -Wshadow -Wno-unused-parameter $(OPT) $(SANFLAGS) $(DEPFLAGS) -Isrc
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -llzf -lpthread -lm
# the HTTP port's parser (Debian's libhttp-parser-dev has no .pc file)
HTTP_LIBS  = -lhttp_parser
LDFLAGS   := $(SANFLAGS)

PROTO_SRC  := $(wildcard src/proto/*.c)
# src/common: small pieces the server and the CLI share
SERVER_SRC := $(wildcard src/server/*.c) $(wildcard src/common/*.c)
PROTO_OBJ  := $(PROTO_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

SERVER     := $(BUILD)/hdf5-async-server
CLI        := $(BUILD)/hdf5-async

.PHONY: all deps run test test-unit test-integration clean

all: $(SERVER) $(UNIT_BIN)

deps:
	@./scripts/install-deps.sh $(if $(filter 1,$(VALGRIND)),valgrind)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/libh5aproto.a: $(PROTO_OBJ)
	ar rcs $@ $^

$(SERVER): $(SERVER_OBJ) $(BUILD)/viewer_assets.o $(BUILD)/libh5aproto.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(HTTP_LIBS)

# ---- the viewer (viewer/): h5web bundled by esbuild into build/viewer/ ----
# `make` runs `npm ci` in viewer/ (once: viewer/node_modules is kept) and
# esbuild; the files go into the server binary ($(BUILD)/viewer_assets.c,
# .incbin). Without npm or the registry the build goes on: build/viewer/
# then holds one page saying how to build the viewer (scripts/viewer-build.sh).
VIEWER_SRC := viewer/package.json viewer/package-lock.json $(wildcard viewer/src/*) \
              viewer/index.html scripts/viewer-build.sh
.PHONY: viewer
viewer: build/viewer/.stamp

build/viewer/.stamp: $(VIEWER_SRC)
	@./scripts/viewer-build.sh build/viewer

# docs/viewer.png: the screenshot tests/integration/test_http_viewer.py takes
# (headless Chromium on the live viewer, a dataset plotted), kept in the docs
.PHONY: viewer-shot
viewer-shot: deps $(SERVER)
	H5A_SERVER=$(abspath $(SERVER)) H5A_VIEWER_SHOT=$(CURDIR)/docs/viewer.png \
	    $(PY) -m pytest -q tests/integration/test_http_viewer.py
	@test -s docs/viewer.png || { echo "viewer-shot: no screenshot (was the test skipped?)"; exit 1; }

$(BUILD)/viewer_assets.c: build/viewer/.stamp scripts/viewer-assets.sh
	@mkdir -p $(dir $@)
	./scripts/viewer-assets.sh build/viewer $@

$(BUILD)/viewer_assets.o: $(BUILD)/viewer_assets.c
	$(CC) $(CFLAGS) -c $< -o $@

# Unit tests of server modules link the module object too.
$(BUILD)/tests/test_h5types: tests/unit/test_h5types.c $(BUILD)/src/server/h5types.o $(BUILD)/libh5aproto.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o %.a,$^) $(PKG_LIBS)

# The write-ahead-log driver's crash tests (tests/unit/test_wal.c).
$(BUILD)/tests/test_wal: tests/unit/test_wal.c $(filter $(BUILD)/src/server/wal%,$(SERVER_OBJ))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o %.a,$^) $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libh5aproto.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o %.a,$^) $(PKG_LIBS)

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
# needs the servers tests/integration/test_cluster_c.py starts: not in test-client
CLUSTER_FOLLOW  := $(BUILD)/tests/client/cluster_follow
# what programs linking libhdf5async.a need besides it: OpenSSL, for TLS
LIB_DEPS         = $(shell pkg-config --libs openssl 2>/dev/null || echo -lssl -lcrypto)

all: $(LIB_A) $(LIB_SO) $(CLIENT_TEST_BIN) $(CLUSTER_FOLLOW)
test-unit: test-client
.PHONY: test-client install

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iinclude $(shell pkg-config --cflags openssl 2>/dev/null) -fPIC \
	    -fvisibility=hidden -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	ld -r -o $(BUILD)/libhdf5async.o $^
	objcopy --localize-hidden $(BUILD)/libhdf5async.o
	rm -f $@ && ar rcs $@ $(BUILD)/libhdf5async.o

$(LIB_SO): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libhdf5async.so.0 $(LDFLAGS) -o $@ $^ $(LIB_DEPS)
	ln -sf libhdf5async.so.0 $(BUILD)/libhdf5async.so

$(BUILD)/tests/client/%: tests/client/%.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iinclude $(PKG_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) \
	    $(shell pkg-config --libs libuv 2>/dev/null) $(LIB_DEPS)

test-client: $(CLIENT_TEST_BIN) $(TEST_SERVER)
	@$(call vg_suite,client,set -e; for t in $(CLIENT_TEST_BIN); do echo "== $$t"; \
	    H5A_SERVER=$(abspath $(TEST_SERVER)) $(VG) $$t; done)

# The .pc's Libs carry an rpath to $(PREFIX)/lib: a program built with
# `pkg-config --libs hdf5async` finds libhdf5async.so.0 from any prefix,
# without ldconfig or LD_LIBRARY_PATH.
install: $(LIB_A) $(LIB_SO) $(SERVER) $(CLI)
	install -d $(DESTDIR)$(PREFIX)/include/hdf5_async/adapters $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(SERVER) $(CLI) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 include/hdf5_async.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/hdf5_async/adapters/*.h $(DESTDIR)$(PREFIX)/include/hdf5_async/adapters/
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libhdf5async.so.0 $(DESTDIR)$(PREFIX)/lib/libhdf5async.so
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	    'Name: hdf5async' 'Description: C client library of hdf5-async' 'Version: $(LIB_VERSION)' \
	    'Requires.private: openssl' \
	    'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -Wl,-rpath,$${libdir} -lhdf5async' \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/hdf5async.pc

# the CLI too: the README uses it next to the running server
run: deps $(SERVER) $(CLI)
	./$(SERVER) --config $(CONFIG)

test: deps
	$(MAKE) all
	$(MAKE) test-unit test-integration test-cli

test-unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $(VG) $$t; done

# ASan's leak checker and Python's own allocations do not mix; the server
# runs under ASan in its own process, pytest itself is not instrumented.
# test_install.py runs `$$H5A_MAKE install` into a temporary prefix and
# builds a program with $$H5A_SANFLAGS against it: the library and the CLI
# are built first, so that make has nothing left to build.
test-integration: $(TEST_SERVER) $(TEST_CLI) $(LIB_A) $(LIB_SO) $(SERVER) $(CLI) $(CLUSTER_FOLLOW)
	$(call vg_suite,integration,H5A_SERVER=$(abspath $(TEST_SERVER)) H5A_CLI=$(abspath $(TEST_CLI)) \
	    H5A_CLUSTER_FOLLOW=$(abspath $(CLUSTER_FOLLOW)) \
	    H5A_MAKE="$(MAKE) -C $(CURDIR) BUILD=$(BUILD) SANITIZE=$(SANITIZE) VALGRIND=$(VALGRIND)" \
	    H5A_SANFLAGS="$(SANFLAGS)" $(PY) -m pytest -q tests/integration)

clean:
	rm -rf build

# the exec-under-valgrind scripts of VALGRIND=1 (see TEST_SERVER above)
$(BUILD)/vg/%: $(BUILD)/% tests/valgrind.sh
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nexec %s %s "$$@"\n' '$(VG)' '$(abspath $<)' > $@
	chmod +x $@

# ---- hdf5-async: the command-line tool (src/cli), linked against libhdf5async ----
# `make test` runs test-cli after the integration tests: its pytest suite
# (tests/cli) drives the built binary against a real server.
CLI_SRC := $(wildcard src/cli/*.c) $(wildcard src/common/*.c)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)

all: $(CLI)
.PHONY: test-cli

$(BUILD)/src/cli/%.o: src/cli/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iinclude $(shell pkg-config --cflags inih openssl 2>/dev/null) -c $< -o $@

$(CLI): $(CLI_OBJ) $(LIB_A)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs inih 2>/dev/null) $(LIB_DEPS) -lm

test-cli: $(TEST_CLI) $(TEST_SERVER)
	$(call vg_suite,cli,H5A_CLI=$(abspath $(TEST_CLI)) H5A_SERVER=$(abspath $(TEST_SERVER)) $(PY) -m pytest -q tests/cli)

# ---- make bench: the server against in-process libhdf5 and loopback TCP ----
# One run, one table of ratios (see bench/bench.c). Figures are for reading,
# never asserted in tests. `make bench BENCH_ARGS=--quick` for a short run.
BENCH      := $(BUILD)/hdf5-async-bench
BENCH_ARGS ?=

all: $(BENCH)
.PHONY: bench

# bench/bench_http.c: the HTTP row (a browser-like poller while 64 clients append);
# bench/bench_exactly.c: the exactly-once and batch rows
$(BENCH): bench/bench.c bench/bench_http.c bench/bench_exactly.c bench/bench_exactly.h $(LIB_A)
	$(CC) $(CFLAGS) -Iinclude $(PKG_CFLAGS) $(LDFLAGS) -o $@ bench/bench.c bench/bench_http.c bench/bench_exactly.c $(LIB_A) $(PKG_LIBS) -lhiredis

# bench/bench_python.py: the Python rows (hdf5_async.File and HDF5Client
# through the server against h5py on a local file), after the C table.
bench: deps
	$(MAKE) $(SERVER) $(BENCH)
	$(BENCH) --server $(SERVER) $(BENCH_ARGS)
	$(PY) bench/bench_python.py --server $(SERVER) $(filter --quick,$(BENCH_ARGS))
	$(PY) bench/bench_cluster.py --server $(SERVER) $(filter --quick,$(BENCH_ARGS))

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
                      -Wno-unused-parameter -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) \
                      $(DEPFLAGS) -Isrc
# everything but the event loop (net.c, conn.c), the storage thread and main()
FUZZ_LIB_SRC       := $(wildcard src/proto/*.c src/common/*.c) $(filter-out src/server/main.c \
                      src/server/net.c src/server/conn.c src/server/conn_accept.c src/server/conn_budget.c src/server/conn_tls.c src/server/conn_stream.c \
                      src/server/storage.c src/server/storage_group.c src/server/http.c \
                      src/server/http_h5grove.c src/server/http_json.c src/server/http_route.c \
                      src/server/http_data.c,$(wildcard src/server/*.c))
FUZZ_LIB_OBJ       := $(FUZZ_LIB_SRC:%.c=$(FUZZ_DIR)/%.o)
FUZZ_TARGETS       := decode engine tls
FUZZ_BINS          := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_RUN_FLAGS     ?= -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 -dict=fuzz/request.dict
FUZZ_MAXLEN_decode := 16384
FUZZ_MAXLEN_engine := 8192
FUZZ_MAXLEN_tls    := 4096

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-deps

fuzz-deps:
	@./fuzz/install-deps.sh

fuzz-build: fuzz-deps
	$(MAKE) $(FUZZ_BINS)

$(FUZZ_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/fuzz_decode: $(FUZZ_DIR)/fuzz/fuzz_decode.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(PKG_LIBS)

$(FUZZ_DIR)/fuzz_engine: $(FUZZ_DIR)/fuzz/fuzz_engine.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(PKG_LIBS)

$(FUZZ_DIR)/fuzz_tls: $(FUZZ_DIR)/fuzz/fuzz_tls.o $(FUZZ_DIR)/src/server/tls.o
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(PKG_LIBS)

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/corpus-$$t $(FUZZ_DIR)/artifacts; \
	    echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	    LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp:print_suppressions=0 \
	    nice -n 19 $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) $(FUZZ_RUN_FLAGS) \
	        -max_len=$$(case $$t in decode) echo $(FUZZ_MAXLEN_decode);; tls) echo $(FUZZ_MAXLEN_tls);; *) echo $(FUZZ_MAXLEN_engine);; esac) \
	        -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- $(FUZZ_DIR)/corpus-$$t fuzz/corpus/$$t; \
	done

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)

# ---- make soak: a long mixed load with misbehaving clients (tests/soak/) ----
# SOAK_SECONDS of load on SOAK_CONNS connections against $(SERVER) (or the
# binary in $H5A_SERVER), then an exact check of the file with h5py; ends with
# a summary and PASS/FAIL. `make soak-smoke` is the ~20 s run for CI. Extra
# options of tests/soak/soak.py go in SOAK_ARGS. See tests/soak/README.md.
SOAK_SECONDS       ?= 300
SOAK_CONNS         ?= 400
SOAK_ARGS          ?=
SOAK_SMOKE_SECONDS ?= 20
SOAK_SMOKE_CONNS   ?= 64
.PHONY: soak soak-smoke soak-leak

soak: deps
	$(MAKE) $(SERVER)
	H5A_SERVER=$${H5A_SERVER:-$(abspath $(SERVER))} $(PY) tests/soak/soak.py \
	    --seconds $(SOAK_SECONDS) --conns $(SOAK_CONNS) $(SOAK_ARGS)

# A server that leaks SOAK_LEAK_BYTES per request (-DH5A_DELIBERATE_LEAK),
# soaked for SOAK_LEAK_SECONDS: the memory rule must FAIL it (this target
# succeeds when the soak fails on memory; see tests/soak/README.md).
SOAK_LEAK_BYTES   ?= 64
SOAK_LEAK_SECONDS ?= 600
soak-leak: deps
	$(MAKE) BUILD=build/leak OPT="-O2 -g -DH5A_DELIBERATE_LEAK=$(SOAK_LEAK_BYTES)" build/leak/hdf5-async-server
	@if H5A_SERVER=$(abspath build/leak/hdf5-async-server) $(PY) tests/soak/soak.py \
	    --seconds $(SOAK_LEAK_SECONDS) --conns $(SOAK_CONNS) $(SOAK_ARGS) > build/leak/soak.log 2>&1; then \
	    tail -20 build/leak/soak.log; echo "soak-leak: the leaking server PASSED the soak: the memory rule missed it"; exit 1; \
	fi; tail -20 build/leak/soak.log; grep -q "NOT FLAT" build/leak/soak.log && echo "soak-leak: the memory rule caught the leak"

soak-smoke:
	$(MAKE) soak SOAK_SECONDS=$(SOAK_SMOKE_SECONDS) SOAK_CONNS=$(SOAK_SMOKE_CONNS)

# ---- make crashtest: kill -9 under load, restart, check (tests/crash/) ----
# CRASH_ROUNDS rounds on one file: a mixed load from several clients, kill -9
# of $(SERVER) (or $H5A_SERVER) at a random moment (some restarts are killed
# during their recovery too), restart, then every acknowledged operation must
# be in the file, read through the server and with h5py. CRASH_SEED replays a
# run's plan (empty: random, printed). `make crashtest-smoke` is the < 1 min run
# for CI. Extra options of tests/crash/crashtest.py go in CRASH_ARGS.
CRASH_ROUNDS       ?= 200
CRASH_SEED         ?=
CRASH_ARGS         ?=
CRASH_SMOKE_ROUNDS ?= 25
.PHONY: crashtest crashtest-smoke

crashtest: deps
	$(MAKE) $(SERVER)
	H5A_SERVER=$${H5A_SERVER:-$(abspath $(SERVER))} $(PY) tests/crash/crashtest.py \
	    --rounds $(CRASH_ROUNDS) $(if $(CRASH_SEED),--seed $(CRASH_SEED)) $(CRASH_ARGS)

crashtest-smoke:
	$(MAKE) crashtest CRASH_ROUNDS=$(CRASH_SMOKE_ROUNDS) CRASH_ARGS="--max-delay 0.5 --check-every 5 $(CRASH_ARGS)"

# ---- header dependencies (DEPFLAGS above) ----
# Every output the compiler makes from a .c file, each with its .d next to
# it. One built before -MMD has no .d: it is rebuilt once (FORCE), else a
# later header change would not reach it.
COMPILED  := $(SERVER_OBJ) $(PROTO_OBJ) $(LIB_OBJ) $(CLI_OBJ) $(UNIT_BIN) $(CLIENT_TEST_BIN) \
             $(BENCH) $(FUZZ_LIB_OBJ) $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz/fuzz_%.o)
DEP_FILES := $(addsuffix .d,$(basename $(COMPILED)))
-include $(wildcard $(DEP_FILES))
UNTRACKED := $(foreach o,$(COMPILED),$(if $(wildcard $(basename $(o)).d),,$(wildcard $(o))))
ifneq ($(UNTRACKED),)
$(UNTRACKED): FORCE
endif
.PHONY: FORCE
