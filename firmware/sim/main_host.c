/* The virtual module on the desktop: replays an event script into the app and prints the output log.
 *
 * usage: rackvae-sim --card DIR --script FILE [--settings FILE]
 * DIR is the SD card's root (models in DIR/models/note and DIR/models/perc); FILE "-" reads stdin.
 * The settings file plays the board's EEPROM (default: none, so nothing is remembered).
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hal.h"
#include "replay.h"

#define MODEL_BUFFER_SIZE (4u << 20)
#define SCRIPT_CAPACITY (16u << 20)

static const char *card_root;
static const char *settings_path;
static uint8_t model_buffer[MODEL_BUFFER_SIZE];

void replay_write(const char *text) { fputs(text, stdout); }

static void card_path(char *path, size_t capacity, const char *name)
{
    snprintf(path, capacity, "%s%s", card_root, name);
}

int hal_list_files(const char *dir, hal_file_found found, void *context)
{
    if (card_root == NULL) {
        return -1;
    }
    char path[4096];
    card_path(path, sizeof path, dir);
    DIR *listing = opendir(path);
    if (listing == NULL) {
        return -1;
    }
    int count = 0;
    for (struct dirent *entry; (entry = readdir(listing)) != NULL;) {
        char file[4096 + 256];
        struct stat info;
        snprintf(file, sizeof file, "%s/%s", path, entry->d_name);
        if (stat(file, &info) == 0 && S_ISREG(info.st_mode)) {
            found(entry->d_name, context);
            ++count;
        }
    }
    closedir(listing);
    return count;
}

static long read_whole(const char *path, uint8_t *buffer, size_t capacity)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        return -1;
    }
    size_t size = fread(buffer, 1, capacity, file);
    int more = fgetc(file);
    int failed = ferror(file);
    fclose(file);
    if (failed) {
        return -1;
    }
    return more == EOF ? (long)size : -2;
}

long hal_read_file(const char *path, uint8_t *buffer, size_t capacity)
{
    if (card_root == NULL) {
        return -1;
    }
    char full[4096];
    card_path(full, sizeof full, path);
    return read_whole(full, buffer, capacity);
}

uint8_t *hal_model_buffer(size_t *capacity)
{
    *capacity = sizeof model_buffer;
    return model_buffer;
}

bool hal_settings_load(void *data, size_t size)
{
    if (settings_path == NULL) {
        return false;
    }
    uint8_t stored[1024];
    long length = read_whole(settings_path, stored, sizeof stored);
    if (length != (long)size) {
        return false;
    }
    memcpy(data, stored, size);
    return true;
}

void hal_settings_save(const void *data, size_t size)
{
    if (settings_path == NULL) {
        return;
    }
    FILE *file = fopen(settings_path, "wb");
    if (file == NULL || fwrite(data, 1, size, file) != size || fclose(file) != 0) {
        fprintf(stderr, "rackvae-sim: cannot write settings %s\n", settings_path);
    }
}

static int usage(void)
{
    fputs("usage: rackvae-sim --card DIR --script FILE [--settings FILE]\n", stderr);
    return 2;
}

int main(int argc, char **argv)
{
    const char *script_path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--card") == 0) {
            card_root = argv[i + 1];
        } else if (strcmp(argv[i], "--script") == 0) {
            script_path = argv[i + 1];
        } else if (strcmp(argv[i], "--settings") == 0) {
            settings_path = argv[i + 1];
        } else {
            return usage();
        }
    }
    if (script_path == NULL || argc % 2 == 0) {
        return usage();
    }
    static char script[SCRIPT_CAPACITY];
    FILE *file = strcmp(script_path, "-") == 0 ? stdin : fopen(script_path, "rb");
    if (file == NULL) {
        fprintf(stderr, "rackvae-sim: cannot open script %s\n", script_path);
        return 2;
    }
    size_t length = fread(script, 1, sizeof script, file);
    if (file != stdin) {
        fclose(file);
    }
    if (length == sizeof script) {
        fprintf(stderr, "rackvae-sim: script %s is larger than %u bytes\n", script_path, SCRIPT_CAPACITY);
        return 2;
    }
    return replay_run(script, length);
}
