/* The virtual module on the emulated Cortex-M7 (QEMU mps2-an500): the same replay as the desktop
 * build, over semihosting. Run QEMU in a directory holding
 *   events.txt    the event script (firmware/sim/replay.h)
 *   card.img      the SD card: "RVCARD 1\n" then per file "<size> <path>\n<bytes>\n" (may be absent)
 *   settings.bin  the EEPROM (created on the first save)
 * The log goes to the semihosting console (QEMU: -chardev stdio,id=log -semihosting-config
 * enable=on,target=native,chardev=log puts it on stdout); the exit status is the replay's (0, or 2 for
 * a malformed script).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "hal.h"
#include "replay.h"
#include "semihost.h"

#define CARD_CAPACITY (8u << 20)
#define SCRIPT_CAPACITY (2u << 20)
#define MODEL_BUFFER_SIZE (4u << 20)
#define SETTINGS_PATH "settings.bin"
#define CARD_MAGIC "RVCARD 1\n"

/* Large buffers live in the 16 MiB PSRAM region. */
__attribute__((section(".psram"))) static uint8_t card[CARD_CAPACITY];
__attribute__((section(".psram"))) static char script[SCRIPT_CAPACITY];
__attribute__((section(".psram"))) static uint8_t model_buffer[MODEL_BUFFER_SIZE];
static long card_size = -1;

void replay_write(const char *text) { sh_write0(text); }

static long read_host_file(const char *path, void *buffer, size_t capacity)
{
    int handle = sh_open_read(path);
    if (handle < 0) {
        return -1;
    }
    long size = sh_flen(handle);
    long result = size < 0 ? -1 : (size_t)size > capacity ? -2 : sh_read(handle, buffer, (size_t)size);
    sh_close(handle);
    return result == size || result < 0 ? result : -1;
}

/* Walks the card image: calls visit(path, data, size) per file until it returns true. */
typedef bool (*card_visitor)(const char *path, size_t path_length, const uint8_t *data, size_t size,
                             void *context);

static void walk_card(card_visitor visit, void *context)
{
    size_t magic_length = strlen(CARD_MAGIC);
    if (card_size < (long)magic_length || memcmp(card, CARD_MAGIC, magic_length) != 0) {
        return;
    }
    size_t at = magic_length, end = (size_t)card_size;
    while (at < end) {
        size_t size = 0;
        while (at < end && card[at] >= '0' && card[at] <= '9' && size < CARD_CAPACITY) {
            size = size * 10 + (size_t)(card[at++] - '0');
        }
        if (at >= end || card[at] != ' ') {
            return;
        }
        const char *path = (const char *)&card[++at];
        const uint8_t *newline = memchr(&card[at], '\n', end - at);
        if (newline == NULL) {
            return;
        }
        size_t path_length = (size_t)(newline - &card[at]);
        at += path_length + 1;
        if (size > end - at) {
            return;
        }
        if (visit(path, path_length, &card[at], size, context)) {
            return;
        }
        at += size + 1;
    }
}

typedef struct {
    const char *dir;
    hal_file_found found;
    void *context;
    int count;
} listing;

static bool list_visit(const char *path, size_t path_length, const uint8_t *data, size_t size, void *context)
{
    (void)data;
    (void)size;
    listing *list = context;
    size_t dir_length = strlen(list->dir);
    char name[128];
    size_t name_length = path_length - dir_length - 1;
    if (path_length > dir_length + 1 && strncmp(path, list->dir, dir_length) == 0 && path[dir_length] == '/' &&
        memchr(path + dir_length + 1, '/', name_length) == NULL && name_length < sizeof name) {
        memcpy(name, path + dir_length + 1, name_length);
        name[name_length] = '\0';
        list->found(name, list->context);
        ++list->count;
    }
    return false;
}

int hal_list_files(const char *dir, hal_file_found found, void *context)
{
    if (card_size < 0) {
        return -1;
    }
    listing list = {dir, found, context, 0};
    walk_card(list_visit, &list);
    return list.count;
}

typedef struct {
    const char *path;
    uint8_t *buffer;
    size_t capacity;
    long result;
} file_read;

static bool read_visit(const char *path, size_t path_length, const uint8_t *data, size_t size, void *context)
{
    file_read *request = context;
    if (path_length != strlen(request->path) || strncmp(path, request->path, path_length) != 0) {
        return false;
    }
    if (size > request->capacity) {
        request->result = -2;
    } else {
        memcpy(request->buffer, data, size);
        request->result = (long)size;
    }
    return true;
}

long hal_read_file(const char *path, uint8_t *buffer, size_t capacity)
{
    file_read request = {path, buffer, capacity, -1};
    walk_card(read_visit, &request);
    return request.result;
}

uint8_t *hal_model_buffer(size_t *capacity)
{
    *capacity = sizeof model_buffer;
    return model_buffer;
}

bool hal_settings_load(void *data, size_t size)
{
    uint8_t stored[1024];
    long length = read_host_file(SETTINGS_PATH, stored, sizeof stored);
    if (length != (long)size) {
        return false;
    }
    memcpy(data, stored, size);
    return true;
}

void hal_settings_save(const void *data, size_t size)
{
    int handle = sh_open_write(SETTINGS_PATH);
    if (handle < 0 || sh_write(handle, data, size) != 0) {
        sh_write0("warning: cannot write " SETTINGS_PATH "\n");
    }
    if (handle >= 0) {
        sh_close(handle);
    }
}

int main(void)
{
    card_size = read_host_file("card.img", card, sizeof card);
    long script_length = read_host_file("events.txt", script, sizeof script);
    if (script_length < 0) {
        sh_write0("error: cannot read events.txt\n");
        return 2;
    }
    return replay_run(script, (size_t)script_length);
}
