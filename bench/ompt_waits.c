/*
 * Where the threads wait: an OMPT tool (the OpenMP tools interface of LLVM's libomp) that sums,
 * per parallel region (by the function that opens it), the threads' time in the region, the
 * calling thread's (primary's) time waiting at its barriers, the other threads' waits, and how
 * late the other threads start after the fork; plus the time between regions (the other threads
 * idle while the calling thread runs serial code). The primary's waits are on the critical path
 * (a thread that finished early holds it up); the others' include leaving the join barrier after
 * the primary has gone on, which costs nothing unless it delays their start in the next region.
 * Thread-time ratios, so they hold on a host whose speed drifts between runs, where wall-clock A/B
 * comparisons of a few percent do not.
 *
 *   clang -O2 -shared -fPIC -idirafter /usr/lib/llvm-19/lib/clang/19/include bench/ompt_waits.c \
 *     -ldl -o /tmp/ompt_waits.so
 *   LD_PRELOAD=/tmp/ompt_waits.so build/bin/adak bench -m MODEL -t 2 --rounds 10 --gen-tokens 1 --no-probe
 *
 * Prints at exit (stderr) the regions of more than 2 ms of wall time in all.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <omp-tools.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define N_REGIONS 64
static struct {
    const void *code; /* return address of the region's fork: its function */
    double wall, task, wait, wait0, late; /* wait0: the primary's; late: the others' start after the fork */
    long n;
} regions[N_REGIONS];
static volatile int lock;
static double t_fork, t_join, t_first, serial;
static _Thread_local double t_task, t_wait;
static _Thread_local const void *t_code;
static _Thread_local unsigned t_index; /* the thread's number in its region */

static void acquire(void) { while (__sync_lock_test_and_set(&lock, 1)) {} }
static void release(void) { __sync_lock_release(&lock); }

/* (under the lock) the slot of a region's code address; the last slot takes the overflow */
static int slot(const void *code) {
    for (int i = 0; i < N_REGIONS - 1; i++)
        if (regions[i].code == code || !regions[i].code) {
            regions[i].code = code;
            return i;
        }
    return N_REGIONS - 1;
}

static void on_parallel_begin(ompt_data_t *task, const ompt_frame_t *frame, ompt_data_t *parallel,
                              unsigned int n, int flags, const void *code) {
    (void)task, (void)frame, (void)n, (void)flags;
    const double t = now();
    if (t_join > 0) serial += t - t_join;
    else t_first = t;
    t_fork = t;
    parallel->ptr = (void *)code;
}

static void on_parallel_end(ompt_data_t *parallel, ompt_data_t *task, int flags, const void *code) {
    (void)task, (void)flags, (void)code;
    const double t = now();
    acquire();
    const int i = slot(parallel->ptr);
    regions[i].n++;
    regions[i].wall += t - t_fork;
    release();
    t_join = t;
}

static void on_implicit_task(ompt_scope_endpoint_t end, ompt_data_t *parallel, ompt_data_t *task,
                             unsigned int n, unsigned int index, int flags) {
    (void)task, (void)n;
    if (flags & ompt_task_initial) return;
    if (end == ompt_scope_begin) {
        t_task = now();
        t_code = parallel ? parallel->ptr : NULL;
        t_index = index;
        if (index != 0 && t_code) {
            acquire();
            regions[slot(t_code)].late += t_task - t_fork;
            release();
        }
    } else if (t_code) {
        const double d = now() - t_task;
        acquire();
        regions[slot(t_code)].task += d;
        release();
    }
}

static void on_sync_wait(ompt_sync_region_t kind, ompt_scope_endpoint_t end, ompt_data_t *parallel,
                         ompt_data_t *task, const void *code) {
    (void)kind, (void)parallel, (void)task, (void)code;
    if (end == ompt_scope_begin) t_wait = now();
    else if (t_code) {
        const double d = now() - t_wait;
        acquire();
        const int i = slot(t_code);
        regions[i].wait += d;
        if (t_index == 0) regions[i].wait0 += d;
        release();
    }
}

static int init(ompt_function_lookup_t lookup, int device, ompt_data_t *data) {
    (void)device, (void)data;
    ompt_set_callback_t set = (ompt_set_callback_t)lookup("ompt_set_callback");
    set(ompt_callback_parallel_begin, (ompt_callback_t)on_parallel_begin);
    set(ompt_callback_parallel_end, (ompt_callback_t)on_parallel_end);
    set(ompt_callback_implicit_task, (ompt_callback_t)on_implicit_task);
    set(ompt_callback_sync_region_wait, (ompt_callback_t)on_sync_wait);
    return 1;
}

static void fini(ompt_data_t *data) {
    (void)data;
    double task = 0, wait = 0, wait0 = 0;
    fprintf(stderr, "ompt_waits: %.3f s from the first fork to the last join, %.3f s between regions\n",
            t_join - t_first, serial);
    for (int i = 0; i < N_REGIONS && regions[i].code; i++) {
        Dl_info info;
        const char *name = dladdr(regions[i].code, &info) && info.dli_sname ? info.dli_sname : "?";
        task += regions[i].task;
        wait += regions[i].wait;
        wait0 += regions[i].wait0;
        if (regions[i].wall > 0.002)
            fprintf(stderr, "  %-30s %6ld regions  wall %.3f s  in them %.3f thread-s  primary waits %.3f s"
                            "  others wait %.3f s, start %.1f us late\n",
                    name, regions[i].n, regions[i].wall, regions[i].task, regions[i].wait0,
                    regions[i].wait - regions[i].wait0, 1e6 * regions[i].late / regions[i].n);
    }
    fprintf(stderr, "  all regions: %.3f thread-s; the primary waits %.3f s (%.1f%% of the span), the others %.3f s\n", task,
            wait0, 100 * wait0 / (t_join - t_first + 1e-12), wait - wait0);
}

ompt_start_tool_result_t *ompt_start_tool(unsigned int version, const char *runtime) {
    (void)version, (void)runtime;
    static ompt_start_tool_result_t result = {init, fini, {0}};
    return &result;
}
