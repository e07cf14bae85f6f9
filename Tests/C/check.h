/*
 * check.h — the pass/fail counters and assertion macros shared by the C tests.
 * Each test prints "NAME: P passed, F failed" at the end and exits nonzero when F > 0.
 */
#ifndef ADAK_TESTS_CHECK_H
#define ADAK_TESTS_CHECK_H

#include <adak.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            passed++;                                                                \
        } else {                                                                     \
            failed++;                                                                \
            fprintf(stderr, "FAIL %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, \
                    #cond, adak_last_error());                                       \
        }                                                                            \
    } while (0)

/* The call returns `code` and leaves a non-empty message naming the function. */
#define EXPECT(code, call, fname)                                                        \
    do {                                                                                 \
        int st_ = (call);                                                                \
        if (st_ == (code) && strstr(adak_last_error(), fname) != NULL) {                 \
            passed++;                                                                    \
        } else {                                                                         \
            failed++;                                                                    \
            fprintf(stderr, "FAIL %s:%d: %s returned %d (%s), expected %d; message: %s\n", \
                    __FILE__, __LINE__, #call, st_, adak_status_string(st_), (code),     \
                    adak_last_error());                                                  \
        }                                                                                \
    } while (0)

#endif
