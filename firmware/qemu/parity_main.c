/* Numeric parity on the emulated Cortex-M7 (QEMU mps2-an500), driven by tests/test_m7_parity.py.
 * Run QEMU in a directory holding
 *   model.tflite  the decoder file
 *   latents.bin   N x latent_dim float32, little endian
 * and it writes the outputs (N x rv_model_output_size float32, little endian: channels * ticks * rows,
 * every channel of a groove model, docs/groove_format.md) of both ways the core runs a file:
 *   probabilities.bin           weights repacked (rv_model_repack), as the module decodes
 *   probabilities_in_place.bin  weights read where the file holds them
 * and, for an int8 file given latents_s8.bin (N x latent_dim int8), the integer graph's int8 outputs
 * (rv_decode_s8) both ways: quantized.bin, quantized_in_place.bin.
 * The exit status is 0, the rv_status of a failed load, repack or decode, or 1 for a file error.
 */
#include <stdint.h>
#include <string.h>

#include "rackvae.h"
#include "semihost.h"

#define FILE_CAPACITY (4u << 20)
#define LATENT_CAPACITY (1u << 20)
#define OUTPUT_CAPACITY (2u << 20)

/* Large buffers live in the 16 MiB PSRAM region. */
__attribute__((section(".psram"), aligned(16))) static uint8_t file_bytes[FILE_CAPACITY];
__attribute__((section(".psram"), aligned(16))) static uint8_t aux[1u << 20];
__attribute__((section(".psram"), aligned(16))) static uint8_t repacked[FILE_CAPACITY];
__attribute__((section(".psram"), aligned(16))) static uint8_t scratch[1u << 20];
__attribute__((section(".psram"), aligned(16))) static float latents[LATENT_CAPACITY / sizeof(float)];
__attribute__((section(".psram"), aligned(16))) static float probabilities[OUTPUT_CAPACITY / sizeof(float)];
__attribute__((section(".psram"), aligned(16))) static int8_t latents_s8[LATENT_CAPACITY];

/* Reads a whole host file; returns its size, or -1 when it is missing, unreadable or too large. */
static long read_host_file(const char *path, void *buffer, size_t capacity)
{
    int handle = sh_open_read(path);
    if (handle < 0) {
        return -1;
    }
    long size = sh_flen(handle);
    long result = size < 0 || (size_t)size > capacity ? -1 : sh_read(handle, buffer, (size_t)size);
    sh_close(handle);
    return result == size ? result : -1;
}

/* Decodes the n latents (float, or int8 through the integer graph when quantized) in chunks that fit
   the output buffer and writes them to path. */
static int decode_to_file(const rv_model *model, size_t n, int quantized, const char *path)
{
    size_t latent_dim = rv_model_latent_dim(model), outputs = rv_model_output_size(model);
    size_t value_size = quantized ? sizeof(int8_t) : sizeof(float);
    size_t chunk = sizeof probabilities / (outputs * value_size);
    int handle = sh_open_write(path);
    if (handle < 0) {
        return sh_fail(path, "cannot open for writing", 1);
    }
    int result = 0;
    for (size_t first = 0; first < n && result == 0; first += chunk) {
        size_t count = n - first < chunk ? n - first : chunk;
        rv_status status = quantized ? rv_decode_s8(model, &latents_s8[first * latent_dim], count,
                                                    (int8_t *)probabilities, scratch, sizeof scratch)
                                     : rv_decode(model, &latents[first * latent_dim], count, probabilities,
                                                 scratch, sizeof scratch);
        if (status != RV_OK) {
            result = sh_fail("decode", rv_status_str(status), (int)status);
        } else if (sh_write(handle, probabilities, count * outputs * value_size) != 0) {
            result = sh_fail(path, "write failed", 1);
        }
    }
    sh_close(handle);
    return result;
}

int main(void)
{
    long file_size = read_host_file("model.tflite", file_bytes, sizeof file_bytes);
    if (file_size < 0) {
        return sh_fail("model.tflite", "cannot read", 1);
    }
    long latent_bytes = read_host_file("latents.bin", latents, sizeof latents);
    if (latent_bytes < 0) {
        return sh_fail("latents.bin", "cannot read", 1);
    }

    rv_model model, fast;
    size_t aux_needed = 0, repack_needed = 0;
    rv_status status = rv_model_load_tflite(&model, file_bytes, (size_t)file_size, aux, sizeof aux, &aux_needed);
    if (status != RV_OK) {
        return sh_fail("load", rv_status_str(status), (int)status);
    }
    status = rv_model_repack(&model, &fast, repacked, sizeof repacked, &repack_needed);
    if (status != RV_OK) {
        return sh_fail("repack", rv_status_str(status), (int)status);
    }
    size_t latent_size = rv_model_latent_dim(&model) * sizeof(float);
    if ((size_t)latent_bytes % latent_size != 0) {
        return sh_fail("latents.bin", "size is not a multiple of latent_dim float32 values", 1);
    }
    size_t n = (size_t)latent_bytes / latent_size;
    int result = decode_to_file(&fast, n, 0, "probabilities.bin");
    if (result == 0) {
        result = decode_to_file(&model, n, 0, "probabilities_in_place.bin");
    }
    long s8_bytes = read_host_file("latents_s8.bin", latents_s8, sizeof latents_s8);
    if (result != 0 || s8_bytes < 0 || model.dtype != RV_S8) {
        return result;
    }
    if ((size_t)s8_bytes % rv_model_latent_dim(&model) != 0) {
        return sh_fail("latents_s8.bin", "size is not a multiple of latent_dim int8 values", 1);
    }
    n = (size_t)s8_bytes / rv_model_latent_dim(&model);
    result = decode_to_file(&fast, n, 1, "quantized.bin");
    return result != 0 ? result : decode_to_file(&model, n, 1, "quantized_in_place.bin");
}
