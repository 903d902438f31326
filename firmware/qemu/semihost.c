#include "semihost.h"

#include <stdint.h>
#include <string.h>

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_FLEN = 0x0C,
    SYS_EXIT_EXTENDED = 0x20,
};

/* ADP_Stopped_ApplicationExit: with SYS_EXIT_EXTENDED the second word is the exit status. */
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

/* SYS_OPEN modes (ISO C fopen equivalents). */
#define OPEN_MODE_RB 1u
#define OPEN_MODE_WB 5u

static intptr_t semihost_call(uintptr_t operation, const void *argument)
{
    register uintptr_t r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (intptr_t)r0;
}

void sh_write0(const char *text) { semihost_call(SYS_WRITE0, text); }

int sh_fail(const char *what, const char *reason, int status)
{
    sh_write0(what);
    sh_write0(": ");
    sh_write0(reason);
    sh_write0("\n");
    return status;
}

static int open_mode(const char *path, uintptr_t mode)
{
    uintptr_t block[3] = {(uintptr_t)path, mode, strlen(path)};
    return (int)semihost_call(SYS_OPEN, block);
}

int sh_open_read(const char *path) { return open_mode(path, OPEN_MODE_RB); }

int sh_open_write(const char *path) { return open_mode(path, OPEN_MODE_WB); }

long sh_flen(int handle)
{
    uintptr_t block[1] = {(uintptr_t)handle};
    return (long)semihost_call(SYS_FLEN, block);
}

long sh_read(int handle, void *buffer, size_t size)
{
    uintptr_t block[3] = {(uintptr_t)handle, (uintptr_t)buffer, size};
    intptr_t not_read = semihost_call(SYS_READ, block);
    return not_read < 0 ? -1 : (long)(size - (size_t)not_read);
}

int sh_write(int handle, const void *buffer, size_t size)
{
    uintptr_t block[3] = {(uintptr_t)handle, (uintptr_t)buffer, size};
    return semihost_call(SYS_WRITE, block) == 0 ? 0 : -1;
}

void sh_close(int handle)
{
    uintptr_t block[1] = {(uintptr_t)handle};
    semihost_call(SYS_CLOSE, block);
}

void sh_exit(int status)
{
    uintptr_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uintptr_t)status};
    semihost_call(SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}
