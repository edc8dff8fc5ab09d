/* unicode: UTF-8, general categories, White_Space and NFC, from tables generated out of
 * Debian's unicode-data (tools/gen-unicode-tables.py -> lib/unicode_tables.c). */
#ifndef CITER_UNICODE_H
#define CITER_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* General categories, two-letter names as in UnicodeData.txt. */
enum ucat {
    UC_Cn = 0, /* unassigned (default) */
    UC_Lu, UC_Ll, UC_Lt, UC_Lm, UC_Lo,
    UC_Mn, UC_Mc, UC_Me,
    UC_Nd, UC_Nl, UC_No,
    UC_Pc, UC_Pd, UC_Ps, UC_Pe, UC_Pi, UC_Pf, UC_Po,
    UC_Sm, UC_Sc, UC_Sk, UC_So,
    UC_Zs, UC_Zl, UC_Zp,
    UC_Cc, UC_Cf, UC_Cs, UC_Co,
    UC_COUNT
};

int ucat(uint32_t cp); /* enum ucat of a code point (Cn beyond U+10FFFF) */
static inline int uc_is_letter(uint32_t cp) { int c = ucat(cp); return c >= UC_Lu && c <= UC_Lo; }   /* \p{L} */
static inline int uc_is_mark(uint32_t cp) { int c = ucat(cp); return c >= UC_Mn && c <= UC_Me; }     /* \p{M} */
static inline int uc_is_number(uint32_t cp) { int c = ucat(cp); return c >= UC_Nd && c <= UC_No; }   /* \p{N} */
static inline int uc_is_punct(uint32_t cp) { int c = ucat(cp); return c >= UC_Pc && c <= UC_Po; }    /* \p{P} */
static inline int uc_is_symbol(uint32_t cp) { int c = ucat(cp); return c >= UC_Sm && c <= UC_So; }   /* \p{S} */
int uc_is_space(uint32_t cp); /* White_Space property (PropList.txt): \s in Oniguruma */

/* Decode one UTF-8 code point from s[0..n) (n >= 1). Returns its length (1..4) and sets *cp.
 * An invalid, overlong, surrogate or truncated sequence returns 1 with
 * *cp = UC_INVALID_BASE + that byte: beyond Unicode, so it has category Cn and no property,
 * and the caller can still emit the raw byte. */
#define UC_INVALID_BASE 0x110000u
int utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
int utf8_encode(uint32_t cp, uint8_t out[4]); /* returns length 1..4, 0 for cp > 0x10FFFF */
/* Number of bytes of the UTF-8 sequence starting with lead byte c (1 for invalid leads). */
int utf8_len(uint8_t c);

/* Append the code points of s in UTF-8, converted the way Rust's String::from_utf8_lossy and
 * WHATWG TextDecoder do: each maximal invalid subsequence becomes U+FFFD. Returns bytes written
 * to out (which must hold 3*n bytes). */
size_t utf8_lossy(const uint8_t *s, size_t n, uint8_t *out);

/* NFC normalization. Returns a malloc'd NUL-terminated buffer and its length in *out_len.
 * Invalid UTF-8 bytes are passed through unchanged. Fast path: returns a copy when the text
 * is already NFC (quick check). */
char *uc_nfc(const char *s, size_t n, size_t *out_len);
/* Nonzero if s is certainly NFC already (every code point NFC_QC=Yes and ccc order ok). */
int uc_nfc_quick(const char *s, size_t n);

/* Canonical combining class of a code point (0 for most). */
int uc_ccc(uint32_t cp);

/* Simple case folding (CaseFolding.txt C+S), for case-insensitive regex pieces. */
uint32_t uc_fold(uint32_t cp);

/* Lowercase (simple mapping from UnicodeData.txt). */
uint32_t uc_lower(uint32_t cp);

#endif
