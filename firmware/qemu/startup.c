/* Reset and fault handling for the mps2-an500 image (and firmware/m0's microbit image): enable the FPU,
   set up .data/.bss, run main and report its return value (or a fault) to the host as the exit status. */
#include <stdint.h>

#include "semihost.h"

extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end, __stack_top;

int main(void);

/* Exit status reported when the core takes a fault: distinct from any status main returns. */
#define EXIT_FAULT 99

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void) __attribute__((noreturn));
void Fault_Handler(void) __attribute__((noreturn));

void Reset_Handler(void)
{
#if defined(__ARM_FP)
    /* Full access to CP10/CP11 before any floating-point instruction runs (cores without an FPU, such
       as firmware/m0's Cortex-M0+, have no CPACR). */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif

    const uint32_t *load = &__data_load;
    for (uint32_t *word = &__data_start; word < &__data_end; ++word) {
        *word = *load++;
    }
    for (uint32_t *word = &__bss_start; word < &__bss_end; ++word) {
        *word = 0;
    }
    sh_exit(main());
}

void Fault_Handler(void)
{
    sh_write0("fault: the core took an exception\n");
    sh_exit(EXIT_FAULT);
}

/* Initial stack pointer, reset vector, then NMI, HardFault, MemManage, BusFault, UsageFault. */
__attribute__((section(".vectors"), used)) static const void *const vector_table[] = {
    &__stack_top, Reset_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler,
};
