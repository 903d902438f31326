/* ARM semihosting calls used by the QEMU target (bkpt 0xAB; QEMU: -semihosting-config enable=on). */
#ifndef RV_SEMIHOST_H
#define RV_SEMIHOST_H

#include <stddef.h>

/* Writes a NUL-terminated string to the host's stdout. */
void sh_write0(const char *text);

/* Writes "what: reason" and a newline to the host's stdout; returns status (for `return sh_fail(...)`). */
int sh_fail(const char *what, const char *reason, int status);

/* Opens a host file for binary reading; returns a handle >= 0 or -1. */
int sh_open_read(const char *path);

/* Opens (truncates) a host file for binary writing; returns a handle >= 0 or -1. */
int sh_open_write(const char *path);

/* Length of an open file in bytes, or -1. */
long sh_flen(int handle);

/* Reads up to size bytes; returns the number of bytes read, or -1. */
long sh_read(int handle, void *buffer, size_t size);

/* Writes size bytes; returns 0 on success. */
int sh_write(int handle, const void *buffer, size_t size);

void sh_close(int handle);

/* Ends the emulation with the given exit status (SYS_EXIT_EXTENDED). */
void sh_exit(int status) __attribute__((noreturn));

#endif
