/* A small stand-in for libFuzzer where Clang's is missing (built under ASan + UBSan): accepts the
 * libFuzzer command line used here. With files only, runs each once (regression inputs). With
 * -max_total_time=N, loads every file of the given directories as a corpus and, for N seconds, runs
 * random mutations of them (byte and bit changes, 32-bit "interesting" values, truncation, insertion,
 * deletion, splices). The input being run is first saved as <artifact_prefix>last-input, so a crash
 * leaves it behind. Mutations come from a fixed-seed generator: runs are reproducible. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUTS 256
#define MAX_SIZE (4u << 20)

typedef struct input {
    uint8_t *data;
    size_t size;
} input;

static input corpus[MAX_INPUTS];
static size_t corpus_count;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static char artifact[1024] = "./";

static uint64_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t random_below(size_t n) { return n == 0 ? 0 : (size_t)(next_random() % n); }

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

static int read_file(const char *path, input *out) {
    FILE *f = fopen(path, "rb");
    long size;
    if (f == NULL) {
        return 0;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        (size_t)size > MAX_SIZE) {
        fclose(f);
        return 0;
    }
    out->data = (uint8_t *)malloc((size_t)size + 1);
    out->size = fread(out->data, 1, (size_t)size, f);
    fclose(f);
    return 1;
}

static void add_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        struct dirent *entry;
        while (dir != NULL && (entry = readdir(dir)) != NULL) {
            char child[2048];
            if (entry->d_name[0] == '.') {
                continue;
            }
            snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
            add_path(child);
        }
        if (dir != NULL) {
            closedir(dir);
        }
    } else if (corpus_count < MAX_INPUTS && read_file(path, &corpus[corpus_count])) {
        corpus_count++;
    }
}

static void run(const uint8_t *data, size_t size) {
    char path[1100];
    FILE *f;
    snprintf(path, sizeof path, "%slast-input", artifact);
    f = fopen(path, "wb");
    if (f != NULL) {
        fwrite(data, 1, size, f);
        fclose(f);
    }
    LLVMFuzzerTestOneInput(data, size);
}

static size_t mutate(uint8_t *buf, size_t size, size_t capacity) {
    static const uint32_t interesting[] = {0u, 1u, 4u, 0x7fu, 0x80u, 0xffu, 0x7fffu, 0xffffu,
                                           0x7fffffffu, 0x80000000u, 0xffffffffu, 16u, 1024u};
    const int rounds = 1 + (int)random_below(4);
    int r;
    for (r = 0; r < rounds; r++) {
        const size_t pos = random_below(size);
        switch (random_below(8)) {
        case 0:
            if (size > 0) buf[pos] = (uint8_t)next_random();
            break;
        case 1:
            if (size > 0) buf[pos] ^= (uint8_t)(1u << random_below(8));
            break;
        case 2:
            if (size >= 4) {
                const uint32_t v = random_below(2) ? interesting[random_below(13)] : (uint32_t)random_below(size + 64);
                const size_t at = random_below(size - 3) & ~(size_t)3;
                memcpy(buf + at, &v, 4);
            }
            break;
        case 3:
            size = random_below(size + 1); /* truncate */
            break;
        case 4: /* delete a range */
            if (size > 0) {
                const size_t n = 1 + random_below(min_size(size - pos, 64));
                memmove(buf + pos, buf + pos + n, size - pos - n);
                size -= n;
            }
            break;
        case 5: /* insert bytes */
            if (size + 16 <= capacity) {
                memmove(buf + pos + 16, buf + pos, size - pos);
                memset(buf + pos, (int)random_below(256), 16);
                size += 16;
            }
            break;
        case 6: /* splice from another input */
            if (corpus_count > 0) {
                const input *other = &corpus[random_below(corpus_count)];
                const size_t from = random_below(other->size);
                size_t n = random_below(min_size(other->size - from, 256) + 1);
                n = min_size(n, size - pos);
                memcpy(buf + pos, other->data + from, n);
            }
            break;
        default:
            if (size > 0) buf[pos] = (uint8_t)(buf[pos] + 1 - 2 * (int)random_below(2));
            break;
        }
    }
    return size;
}

int main(int argc, char **argv) {
    double seconds = 0.0;
    int i;
    uint8_t *buf;
    size_t k, runs = 0;
    time_t start;
    for (i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-max_total_time=", 16) == 0) {
            seconds = atof(argv[i] + 16);
        } else if (strncmp(argv[i], "-seed=", 6) == 0) {
            rng_state ^= (uint64_t)strtoull(argv[i] + 6, NULL, 10) * 0x2545f4914f6cdd1dull;
        } else if (strncmp(argv[i], "-artifact_prefix=", 17) == 0) {
            snprintf(artifact, sizeof artifact, "%s", argv[i] + 17);
        } else if (argv[i][0] != '-') {
            add_path(argv[i]);
        }
    }
    for (k = 0; k < corpus_count; k++) {
        run(corpus[k].data, corpus[k].size);
    }
    printf("fuzz_driver: ran %zu inputs\n", corpus_count);
    if (seconds <= 0.0 || corpus_count == 0) {
        return 0;
    }
    buf = (uint8_t *)malloc(MAX_SIZE + 64);
    start = time(NULL);
    while (difftime(time(NULL), start) < seconds) {
        const input *seed = &corpus[random_below(corpus_count)];
        size_t size;
        memcpy(buf, seed->data, seed->size);
        size = mutate(buf, seed->size, MAX_SIZE + 64);
        run(buf, size);
        runs++;
    }
    printf("fuzz_driver: %zu mutated runs in %.0f s, no crash\n", runs, seconds);
    free(buf);
    return 0;
}
