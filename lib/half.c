/* half: IEEE half precision and bfloat16 conversions, exact and round-to-nearest-even.
 * NaN payloads survive a round trip through f32, so citer-dump can print any f16 payload and
 * read it back bit for bit. */
#include "half.h"

#include <string.h>

float citer_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf, NaN keeps its payload */
    } else if (exp) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man) { /* subnormal: normalise */
        int e = 113;
        while (!(man & 0x400)) {
            man <<= 1;
            e--;
        }
        bits = sign | ((uint32_t)e << 23) | ((man & 0x3ff) << 13);
    } else {
        bits = sign;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t citer_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0xff) { /* inf or NaN; a NaN stays a NaN (quiet bit forced if payload lost) */
        if (!man) return sign | 0x7c00;
        uint16_t m = (uint16_t)(man >> 13);
        return sign | 0x7c00 | (m ? m : 0x200);
    }
    int e = (int)exp - 127 + 15;
    if (e >= 0x1f) return sign | 0x7c00; /* overflow */
    if (e <= 0) {                          /* subnormal or zero in half */
        if (e < -10) return sign;          /* rounds to zero */
        man |= 0x800000;
        int shift = 14 - e; /* 13 + (1 - e) */
        uint32_t m = man >> shift, rest = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (m & 1))) m++;
        return sign | (uint16_t)m; /* a carry into the exponent field is still correct */
    }
    uint32_t m = man >> 13, rest = man & 0x1fff;
    uint32_t v = ((uint32_t)e << 10) | m;
    if (rest > 0x1000 || (rest == 0x1000 && (m & 1))) v++; /* may carry to inf: correct */
    return sign | (uint16_t)v;
}

float citer_bf16_to_f32(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t citer_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7f800000u) == 0x7f800000u && (x & 0x7fffff)) { /* NaN */
        uint16_t b = (uint16_t)(x >> 16);
        return (b & 0x7f) ? b : (uint16_t)(b | 0x40);
    }
    uint32_t rest = x & 0xffff, b = x >> 16;
    if (rest > 0x8000 || (rest == 0x8000 && (b & 1))) b++;
    return (uint16_t)b;
}
