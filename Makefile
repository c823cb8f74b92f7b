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
SERVER_SRC := $(wildcard src/server/*.c)
PROTO_OBJ  := $(PROTO_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

SERVER     := $(BUILD)/hdf5-async-server

.PHONY: all deps run test test-unit test-integration clean

all: $(SERVER) $(UNIT_BIN)

deps:
	@./scripts/install-deps.sh

$(BUILD)/%.o: %.c $(wildcard src/proto/*.h src/server/*.h)
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

run: deps $(SERVER)
	./$(SERVER) --config $(CONFIG)

test: deps
	$(MAKE) all
	$(MAKE) test-unit test-integration

test-unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; ./$$t; done

# ASan's leak checker and Python's own allocations do not mix; the server
# runs under ASan in its own process, pytest itself is not instrumented.
test-integration: $(SERVER)
	H5A_SERVER=$(abspath $(SERVER)) $(PY) -m pytest -q tests/integration

clean:
	rm -rf build
