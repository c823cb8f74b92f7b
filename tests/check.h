/* The assertions and the test runner the C test programs share (tests/unit/,
 * tests/client/). Header-only: each program includes it once.
 *
 * CHECK(cond) counts a pass or prints FILE:LINE and the condition and
 * counts a failure; the program goes on either way. CHECK_MSG(cond, fmt,
 * ...) prints fmt instead: the programs build their CHECK_RC-style macros
 * on it. A failure names the test that was running and check_detail, which
 * a test may point at what it is checking ("struct with padding").
 *
 * Each program lists its tests, functions void f(void), in one table:
 *
 *     static const check_test tests[] = {CHECK_TEST(test_errors), ...};
 *     int main(int argc, char **argv)
 *     {
 *         check_select(argc, argv, tests, CHECK_COUNT(tests));
 *         ... setup ...
 *         check_run();
 *         ... teardown ...
 *         return check_summary();
 *     }
 *
 * `prog` runs every test in table order; `prog NAME...` runs those, in that
 * order, where NAME is the function's name with or without its `test_`
 * prefix; `prog --list` prints the names. An unknown name is an error
 * (exit status 2) that lists them, before any setup. A run's last line of
 * output is "N passed, M failed" (check_summary), its exit status 1 on any
 * failure. Tests run in one process, as before: a test may rely on
 * the program's setup, never on another test. */
#ifndef H5A_TESTS_CHECK_H
#define H5A_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct check_test {
    const char *name;
    void (*fn)(void);
} check_test;

#define CHECK_TEST(fn) {#fn, fn}
#define CHECK_COUNT(table) (sizeof(table) / sizeof(table)[0])

static int check_passed, check_failed;
static const char *check_detail = "";

static const char *check_running_ = "";
static const check_test *check_tests_;
static size_t check_ntests_;
static int check_argc_;
static char **check_argv_;

static inline void check_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void check_fail_at(const char *file, int line, const char *fmt, ...)
{
    check_failed++;
    fprintf(stderr, "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " [%s%s%s]\n", check_running_, *check_detail ? ": " : "", check_detail);
}

#define CHECK_MSG(cond, ...)                                                                   \
    do {                                                                                       \
        if (cond)                                                                              \
            check_passed++;                                                                    \
        else                                                                                   \
            check_fail_at(__FILE__, __LINE__, __VA_ARGS__);                                    \
    } while (0)

#define CHECK(cond) CHECK_MSG(cond, "CHECK(%s) failed", #cond)

static inline const char *check_name_(const check_test *t)
{
    return strncmp(t->name, "test_", 5) == 0 ? t->name + 5 : t->name;
}

static inline const check_test *check_find_(const char *name)
{
    for (size_t i = 0; i < check_ntests_; i++)
        if (strcmp(name, check_name_(&check_tests_[i])) == 0 ||
            strcmp(name, check_tests_[i].name) == 0)
            return &check_tests_[i];
    return NULL;
}

static inline void check_list_(FILE *out)
{
    for (size_t i = 0; i < check_ntests_; i++)
        fprintf(out, "  %s\n", check_name_(&check_tests_[i]));
}

/* Remembers which tests argv names; exits on --list or an unknown name. */
static inline void check_select(int argc, char **argv, const check_test *tests, size_t n)
{
    check_tests_ = tests;
    check_ntests_ = n;
    check_argc_ = argc;
    check_argv_ = argv;
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        check_list_(stdout);
        exit(0);
    }
    for (int i = 1; i < argc; i++) {
        if (!check_find_(argv[i])) {
            fprintf(stderr, "%s: no test named '%s'; usage: %s [--list | NAME...], NAME one of:\n",
                    argv[0], argv[i], argv[0]);
            check_list_(stderr);
            exit(2);
        }
    }
}

static inline void check_run_one_(const check_test *t)
{
    check_running_ = check_name_(t);
    check_detail = "";
    t->fn();
    check_running_ = "";
    check_detail = "";
}

static inline void check_run(void)
{
    if (check_argc_ < 2) {
        for (size_t i = 0; i < check_ntests_; i++)
            check_run_one_(&check_tests_[i]);
    } else {
        for (int i = 1; i < check_argc_; i++)
            check_run_one_(check_find_(check_argv_[i]));
    }
}

/* Prints the closing "N passed, M failed" line; returns the exit status. */
static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
