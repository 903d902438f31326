/* QEMU TCG plugin: counts guest instructions executed between calls of a marker function.
 *
 * Every executed instruction adds 1 to a counter (inline, no callback); instructions whose address lies
 * in `range=START:END` (e.g. one function, from the symbol table) also add 1 to a second counter. Each
 * time the instruction at address `mark=0x...` executes, both counters are recorded. At exit the plugin
 * writes to `out=FILE` (default stderr) "total <all> <in range>" and one line per marker hit,
 * "mark <n> <instructions since the previous mark> <of them in the range>". Deterministic: TCG
 * executes the same guest instructions on every run.
 *
 * Debian's QEMU ships no qemu-plugin.h, so the few declarations of the v1 plugin API used here are
 * written out below (they match include/qemu/qemu-plugin.h of QEMU 4.2 to 8.x).
 * Build: gcc -shared -fPIC -O2 -o libinsn_count.so insn_count.c
 * Run:   qemu-system-arm ... -plugin ./libinsn_count.so,mark=0x1234,range=0x2000:0x2100,out=counts.txt
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- v1 plugin API (declarations only) ---- */
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS = 0 };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 = 0 };
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;
/* ---- end of the API declarations ---- */

#define MAX_MARKS 4096

static uint64_t executed; /* single vCPU (Cortex-M): no atomics needed */
static uint64_t executed_in_range;
static uint64_t mark_address;
static uint64_t range_start, range_end;
static uint64_t mark_counts[MAX_MARKS];
static uint64_t mark_counts_in_range[MAX_MARKS];
static size_t mark_hits;
static bool marks_overflowed;
static const char *out_path;

static void on_mark(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (mark_hits < MAX_MARKS) {
        mark_counts_in_range[mark_hits] = executed_in_range;
        mark_counts[mark_hits++] = executed;
    } else {
        marks_overflowed = true;
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        /* The marker callback runs before this instruction is counted, so a segment between two marks
           counts the marker call's instructions once. */
        uint64_t address = qemu_plugin_insn_vaddr(insn);
        if (address == mark_address) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
        if (address >= range_start && address < range_end) {
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed_in_range, 1);
        }
    }
}

static void write_counts(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    FILE *out = out_path ? fopen(out_path, "w") : stderr;
    if (out == NULL) {
        fprintf(stderr, "insn_count: cannot write %s\n", out_path);
        return;
    }
    fprintf(out, "total %" PRIu64 " %" PRIu64 "\n", executed, executed_in_range);
    for (size_t i = 0; i < mark_hits; ++i) {
        fprintf(out, "mark %zu %" PRIu64 " %" PRIu64 "\n", i, mark_counts[i] - (i ? mark_counts[i - 1] : 0),
                mark_counts_in_range[i] - (i ? mark_counts_in_range[i - 1] : 0));
    }
    if (marks_overflowed) {
        fprintf(out, "overflow more than %d marks\n", MAX_MARKS);
    }
    if (out != stderr) {
        fclose(out);
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "mark=", 5) == 0) {
            /* Thumb function symbols carry bit 0; instruction addresses do not. */
            mark_address = strtoull(argv[i] + 5, NULL, 0) & ~(uint64_t)1;
        } else if (strncmp(argv[i], "range=", 6) == 0) {
            char *end;
            range_start = strtoull(argv[i] + 6, &end, 0) & ~(uint64_t)1;
            range_end = *end == ':' ? strtoull(end + 1, NULL, 0) : 0;
        } else if (strncmp(argv[i], "out=", 4) == 0) {
            out_path = argv[i] + 4;
        } else {
            fprintf(stderr, "insn_count: unknown argument %s (expected mark=ADDR, range=START:END, out=FILE)\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, write_counts, NULL);
    return 0;
}
