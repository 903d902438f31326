/* DecodeModel: one bar from a built-in rackvae model, printed over Serial (115200 baud).
 *
 * The model is groove_dec.c / groove_dec.h in this folder: a drum decoder trained on the Groove MIDI
 * corpus and written by `rackvae export models/groove --formats int8,c --c-variant int8`, with its own
 * thresholds and each row's General MIDI note in the metadata. Its weights sit in
 * flash (RV_FLASH, PROGMEM on AVR); about 5 KB of RAM remain in use on a Mega 2560. To play your own
 * model, export it the same way and replace the two files and the name groove_dec_model below.
 *
 * Output: the latent, the decode time, then one line per row (instrument: its General MIDI note) with
 * one column per tick, 'x' where the row triggers at the model's thresholds, then "end".
 */
#include <rackvae.h>

#include "groove_dec.h"

/* rv_decode's scratch (it tells how much: rv_scratch_size) and one bar of probabilities. */
static uint32_t scratch[256] __attribute__((aligned(4)));
static float probabilities[16 * 12];

/* A point of the latent space: each coordinate within +-latent_scale (3 for this model). */
static const float latent[3] = {-2.0f, 1.0f, 1.0f};

void setup() {
  const rv_model *model = &groove_dec_model;
  const uint8_t rows = model->metadata.rows, ticks = model->metadata.ticks;
  /* the model's own thresholds (per drum group): decoded bars as dense as the corpus's */
  const rv_post_config config = rv_post_config_for_model(&model->metadata);
  Serial.begin(115200);

  if (rv_model_output_size(model) > sizeof probabilities / sizeof probabilities[0] ||
      rv_scratch_size(model) > sizeof scratch) {
    Serial.println(F("model too large for this sketch's buffers"));
    return;
  }
  const unsigned long start = micros();
  rv_status status = rv_decode(model, latent, 1, probabilities, scratch, sizeof scratch);
  const unsigned long took = micros() - start;
  if (status != RV_OK) {
    Serial.print(F("decode failed: "));
    Serial.println(rv_status_str(status));
    return;
  }
  Serial.print(F("latent"));
  for (uint8_t i = 0; i < 3; i++) {
    Serial.print(' ');
    Serial.print(latent[i]);
  }
  Serial.print(F(", decoded in "));
  Serial.print(took);
  Serial.println(F(" us"));

  /* The triggers of each tick (at most config.max_notes, the most probable), one row per line. */
  static char grid[12][16 + 1];
  for (uint8_t r = 0; r < rows && r < 12; r++) {
    memset(grid[r], '.', ticks);
    grid[r][ticks] = '\0';
  }
  for (uint8_t t = 0; t < ticks && t < 16; t++) {
    rv_step step;
    if (rv_postprocess_step(&model->metadata, probabilities + t * rows, &config, &step) != RV_OK) {
      continue;
    }
    for (uint8_t n = 0; n < step.count; n++) {
      if (step.notes[n].row < 12) {
        grid[step.notes[n].row][t] = 'x';
      }
    }
  }
  for (uint8_t r = 0; r < rows && r < 12; r++) {
    Serial.print(F("row "));
    if (r < 10) {
      Serial.print(' ');
    }
    Serial.print(r);
    Serial.print(F(" note "));
    Serial.print(model->metadata.row_notes[r]);
    Serial.print(' ');
    Serial.println(grid[r]);
  }
  Serial.println(F("end"));
}

void loop() {}
