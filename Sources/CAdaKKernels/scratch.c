/*
 * Per-thread scratch memory of the row kernels (akk_thread_scratch, akk_internal.h): one buffer
 * per thread, kept between calls and grown when a call needs more, so prefill products (many per
 * layer, each thread's unpacked tiles) allocate nothing on the hot path. The buffer is freed when
 * its thread exits (a pthread key's destructor); the key is deleted when the library is unloaded,
 * so an exiting thread never calls into unmapped code (its buffer is then left behind).
 */
#include "akk_internal.h"
#include <pthread.h>
#include <stdlib.h>

static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static int g_key_ok;
static _Thread_local void *t_buf;
static _Thread_local size_t t_cap;

static void make_key(void) { g_key_ok = pthread_key_create(&g_key, free) == 0; }

__attribute__((destructor)) static void delete_key(void) {
    if (g_key_ok) pthread_key_delete(g_key);
}

void *akk_thread_scratch(size_t bytes) {
    if (bytes <= t_cap) return t_buf;
    const size_t cap = (bytes + bytes / 4 + 4095) & ~(size_t)4095; /* some room to grow, whole pages */
    void *p = aligned_alloc(64, cap);
    if (!p) return NULL;
    pthread_once(&g_key_once, make_key);
    if (g_key_ok) pthread_setspecific(g_key, p);
    free(t_buf);
    t_buf = p;
    t_cap = cap;
    return p;
}
