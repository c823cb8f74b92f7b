#!/bin/sh
# Valgrind memcheck for `make test VALGRIND=1`.
#
#   tests/valgrind.sh PROGRAM [ARGS...]   exec PROGRAM under memcheck
#   tests/valgrind.sh --check-logs DIR    fail (and print them) if any log in
#                                         DIR reports an error or a leak
#
# Any invalid access, use of an uninitialised value, bad free or syscall
# param error, and any definitely, indirectly or possibly lost block, is an
# error and makes the program exit 99 instead of its own status. "Possibly
# lost" counts too: no process of the suite has one, so it costs nothing and
# an interior-pointer-only leak cannot hide there. "Still reachable" does not:
# at exit libhdf5's own atexit handler (H5_term_library) allocates its
# thread-local error stack again (1,864 bytes in 3 blocks, every server),
# and src/server/bigbuf.c keeps up to 4 big buffers for reuse by design.
# tests/valgrind.supp holds the few suppressions of library internals.
#
# With $H5A_VALGRIND_LOGDIR set (the pytest suites), the report goes to
# DIR/vg.PID.*.log instead of stderr: the servers' and the CLI's stderr stay
# what the tests compare, the fixtures read the log of a server that did
# not exit 0 into their failure message (PID is the program's own: exec
# keeps it), and `--check-logs` afterwards fails the run on any report,
# even of a process whose exit status no test looked at.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" = "--check-logs" ]; then
    dir=$2
    bad=0
    for f in "$dir"/vg.*.log; do
        [ -e "$f" ] || continue
        # no summary: killed by a signal (tests that SIGKILL a server), nothing to check
        grep -q "ERROR SUMMARY:" "$f" || continue
        if ! grep -q "ERROR SUMMARY: 0 errors" "$f"; then
            echo "valgrind: errors in $f:" >&2
            cat "$f" >&2
            bad=1
        fi
    done
    n=$(ls "$dir" 2>/dev/null | grep -c '^vg\..*\.log$' || true)
    if [ "$bad" -ne 0 ]; then
        echo "valgrind: FAILED, see the reports above (logs in $dir)" >&2
        exit 1
    fi
    echo "valgrind: $n process logs in $dir, no errors, no leaks"
    exit 0
fi

# Children are not traced: a program exec'd by a test under valgrind (the
# server tests/client starts) gets its own wrapper through $H5A_SERVER.
set -- --tool=memcheck --error-exitcode=99 \
    --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --num-callers=30 \
    --suppressions="$here/valgrind.supp" "$@"
if [ -n "${H5A_VALGRIND_LOGDIR:-}" ]; then
    mkdir -p "$H5A_VALGRIND_LOGDIR"
    exec valgrind --log-file="$H5A_VALGRIND_LOGDIR/vg.$$.$(date +%s%N).log" "$@"
fi
exec valgrind -q "$@"
