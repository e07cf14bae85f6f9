/*
 * fuzz_replay.c — replays GGUF inputs through the fuzz harness's checks (fuzz/gguf_loader.c)
 * against the normal library: the committed regression corpus (fuzz/regress/gguf: inputs that
 * once crashed or found a bug, plus a sample of the fuzzer's corpus) and any model files given.
 * A crash or a broken contract fails the run.
 *
 *   ./fuzz_replay FILE_OR_DIR...
 */
#include "../../fuzz/gguf_loader.c"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

static int replayed;

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_replay: cannot open %s\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
    size_t got = n > 0 ? fread(data, 1, (size_t)n, f) : 0;
    fclose(f);
    LLVMFuzzerTestOneInput(data, got);
    free(data);
    replayed++;
    return 0;
}

static int replay(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fuzz_replay: %s does not exist\n", path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) return replay_file(path);
    DIR *d = opendir(path);
    if (!d) return 1;
    int errors = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        errors += replay(full);
    }
    closedir(d);
    return errors;
}

int main(int argc, char **argv) {
    int errors = 0;
    for (int i = 1; i < argc; i++) errors += replay(argv[i]);
    printf("fuzz_replay: %d inputs replayed, %s\n", replayed, errors ? "with errors" : "no crash, no broken contract");
    return errors ? 1 : 0;
}
