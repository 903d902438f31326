/* The core on an ATmega2560 (Arduino Mega 2560, 16 MHz) in simavr, driven by tests/test_mcu_families.py
 * and bench/bench_mcu.py. int is 16 bits and double 32 here. The model is compiled in (the exporter's
 * C arrays, descriptor rv_mcu_model, weights in program memory), as are the latents
 * (rv_mcu_latents[rv_mcu_latent_count * latent_dim] in program memory, written by the test). Each latent
 * is decoded with rv_decode; the program prints over USART0 (simavr shows it on its console):
 *   p <index> <hex float bits of probabilities[8 k .. 8 k + 7]>   per 8 outputs of every latent
 *   cycles <n>     CPU cycles of the first decode (Timer1 at the CPU clock, overflows counted)
 *   scratch <n>    rv_scratch_size of the model
 *   stack <n>      the deepest stack of the first decode (painted bytes overwritten below RAMEND)
 *   done <status>  0, or the rv_status of a failed decode
 * then sleeps with interrupts off, which ends the simulation. */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/pgmspace.h>
#include <avr/sleep.h>
#include <stdint.h>

#include "rackvae.h"

extern const rv_model rv_mcu_model;
extern const float rv_mcu_latents[];
extern const uint16_t rv_mcu_latent_count;
extern uint8_t __heap_start;

#define STACK_PAINT 0xA5u

static uint32_t scratch[256] __attribute__((aligned(4))); /* rv_decode asks 4 (avr-gcc aligns to 1) */
static float probabilities[256]; /* the demo size, 16 ticks x 12 rows, and some */
static volatile uint16_t timer_overflows;

ISR(TIMER1_OVF_vect) { timer_overflows++; }

static void put(char c)
{
    while (!(UCSR0A & (1 << UDRE0))) {
    }
    UDR0 = (uint8_t)c;
}

static void put_text(const char *text)
{
    while (*text != '\0') {
        put(*text++);
    }
}

static void put_uint(uint32_t value)
{
    char text[11];
    uint8_t n = 0;
    do {
        text[n++] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    while (n > 0) {
        put(text[--n]);
    }
}

static void put_hex32(uint32_t value)
{
    int8_t shift;
    for (shift = 28; shift >= 0; shift -= 4) {
        put("0123456789abcdef"[(value >> shift) & 0xFu]);
    }
}

static void put_line(const char *name, uint32_t value)
{
    put_text(name);
    put(' ');
    put_uint(value);
    put('\n');
}

/* CPU cycles since Timer1 started (prescaler 1), overflows included. */
static uint32_t cycles_now(void)
{
    uint16_t low, high;
    cli();
    low = TCNT1;
    high = timer_overflows;
    if ((TIFR1 & (1 << TOV1)) && low < 0x8000u) { /* an overflow not yet counted */
        high++;
    }
    sei();
    return ((uint32_t)high << 16) | low;
}

/* Paints the free RAM between the heap start and this frame; stack_used() finds the deepest byte a
   later call overwrote. */
__attribute__((noinline)) static void paint_stack(void)
{
    uint8_t here;
    uint8_t *byte = &__heap_start;
    while (byte < &here - 64) {
        *byte++ = STACK_PAINT;
    }
}

static uint16_t stack_used(void)
{
    const uint8_t *byte = &__heap_start;
    while (*byte == STACK_PAINT) {
        byte++;
    }
    return (uint16_t)(RAMEND + 1 - (uint16_t)byte);
}

int main(void)
{
    const rv_model *model = &rv_mcu_model;
    const uint16_t latent_dim = rv_model_latent_dim(model), outputs = rv_model_output_size(model);
    float latent[RV_MAX_LATENT];
    rv_status status = RV_OK;
    uint16_t n, i, k;

    UBRR0 = 0; /* 2 Mbit/s with U2X at 16 MHz */
    UCSR0A = 1 << U2X0;
    UCSR0B = 1 << TXEN0;
    UCSR0C = 3 << UCSZ00;
    TCCR1A = 0;
    TCCR1B = 1 << CS10;
    TIMSK1 = 1 << TOIE1;
    sei();

    if (outputs > sizeof probabilities / sizeof probabilities[0] || rv_scratch_size(model) > sizeof scratch) {
        status = RV_ERR_BUFFER_TOO_SMALL;
    }
    for (n = 0; n < rv_mcu_latent_count && status == RV_OK; n++) {
        for (i = 0; i < latent_dim; i++) {
            latent[i] = pgm_read_float(&rv_mcu_latents[n * latent_dim + i]);
        }
        if (n == 0) {
            uint32_t start;
            paint_stack();
            start = cycles_now();
            status = rv_decode(model, latent, 1, probabilities, scratch, sizeof scratch);
            put_line("cycles", cycles_now() - start);
            put_line("scratch", (uint32_t)rv_scratch_size(model));
            put_line("stack", stack_used());
        } else {
            status = rv_decode(model, latent, 1, probabilities, scratch, sizeof scratch);
        }
        for (k = 0; k < outputs && status == RV_OK; k++) {
            uint32_t bits;
            if (k % 8u == 0) {
                put_text("p ");
                put_uint(n);
            }
            __builtin_memcpy(&bits, &probabilities[k], sizeof bits);
            put(' ');
            put_hex32(bits);
            if (k % 8u == 7u || k + 1u == outputs) {
                put('\n');
            }
        }
    }
    put_line("done", (uint32_t)status);
    while (!(UCSR0A & (1 << TXC0))) {
    }
    cli();
    sleep_mode();
    return 0;
}
