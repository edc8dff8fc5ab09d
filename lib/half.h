/* half: f16 and bf16 <-> f32 conversions (round to nearest even). */
#ifndef CITER_HALF_H
#define CITER_HALF_H

#include <stdint.h>

float citer_f16_to_f32(uint16_t h);
uint16_t citer_f32_to_f16(float f);
float citer_bf16_to_f32(uint16_t h);
uint16_t citer_f32_to_bf16(float f);

#endif
