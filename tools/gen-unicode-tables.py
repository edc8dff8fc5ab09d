#!/usr/bin/env python3
"""Generate lib/unicode_tables.c from the Unicode Character Database.

Usage: python3 tools/gen-unicode-tables.py /usr/share/unicode > lib/unicode_tables.c

Reads UnicodeData.txt, PropList.txt, DerivedNormalizationProps.txt and CaseFolding.txt
(Debian's unicode-data package). The output is deterministic: re-running it on the same
data gives the same bytes (tests/t_unicode.c checks this).

Tables (their layout is mirrored in lib/unicode.c):
  general category   two-stage: uc_cat_stage1[cp >> 7] is a block number, the block's
                     128 bytes in uc_cat_stage2 hold enum ucat values.
  other properties   two-stage the same way, giving an index into uc_prop_rec: pairs of
                     (canonical combining class, flags); flags bits 0-1 are NFC_QC
                     (0 Yes, 1 Maybe, 2 No), bit 2 is White_Space (PropList.txt), bit 3
                     marks a canonical decomposition in the decomposition table.
  decomposition      full canonical decompositions (already recursive; Hangul syllables are
                     left to the algorithm), sorted by code point, for binary search.
  composition        primary composites: (first << 21 | second) -> composite, sorted.
  case folding       CaseFolding.txt status C and S; lowercase: UnicodeData field 13.
"""
import os
import re
import sys

SHIFT = 7                 # two-stage block size 128; keep in step with lib/unicode.c
BLOCK = 1 << SHIFT
NCP = 0x110000

CATS = ["Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No",
        "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So",
        "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"]
CAT_INDEX = {name: i for i, name in enumerate(CATS)}
QC_INDEX = {"Y": 0, "M": 1, "N": 2}


def die(msg):
    sys.stderr.write("gen-unicode-tables: %s\n" % msg)
    sys.exit(1)


def data_lines(path):
    """Yield the semicolon-separated fields of each non-comment line."""
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        die("%s: %s" % (path, e.strerror))
    with f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                yield [x.strip() for x in line.split(";")]


def cp_range(field):
    if ".." in field:
        a, b = field.split("..")
        return int(a, 16), int(b, 16)
    return int(field, 16), int(field, 16)


def file_version(path):
    """The 'Name-15.0.0.txt' version from a UCD file's first line, or '?'."""
    with open(path, encoding="utf-8") as f:
        m = re.search(r"-(\d+\.\d+\.\d+)\.txt", f.readline())
    return m.group(1) if m else "?"


def read_unicode_data(ucd):
    cat = [0] * NCP
    ccc = [0] * NCP
    decomp = {}      # canonical decompositions only (no <tag>)
    lower = {}
    first = None
    for f in data_lines(os.path.join(ucd, "UnicodeData.txt")):
        cp = int(f[0], 16)
        c = CAT_INDEX.get(f[2])
        if c is None:
            die("UnicodeData.txt: U+%04X: unknown category %s" % (cp, f[2]))
        if f[1].endswith(", First>"):
            first = cp
            continue
        lo = first if f[1].endswith(", Last>") else cp
        first = None
        for x in range(lo, cp + 1):
            cat[x] = c
            ccc[x] = int(f[3])
        if f[5] and not f[5].startswith("<"):
            decomp[cp] = [int(x, 16) for x in f[5].split()]
        if f[13]:
            lower[cp] = int(f[13], 16)
    return cat, ccc, decomp, lower


def full_decomp(cp, decomp):
    if cp not in decomp:
        return [cp]
    out = []
    for x in decomp[cp]:
        out.extend(full_decomp(x, decomp))
    return out


def two_stage(values, name, ctype):
    """Split values into 128-entry blocks, share equal blocks; return C source."""
    blocks = {}
    stage1 = []
    for b in range(0, NCP, BLOCK):
        stage1.append(blocks.setdefault(tuple(values[b:b + BLOCK]), len(blocks)))
    if len(blocks) > 256:
        die("%s: %d distinct blocks do not fit uint8_t stage 1" % (name, len(blocks)))
    stage2 = [v for blk in sorted(blocks, key=blocks.get) for v in blk]
    out = ["/* %s: %d blocks of %d */" % (name, len(blocks), BLOCK)]
    out.append(c_array("const uint8_t", name + "_stage1", stage1))
    out.append(c_array(ctype, name + "_stage2", stage2))
    return "\n".join(out), len(stage1) + len(stage2)


def c_array(ctype, name, values, fmt="%d", per_line=None):
    items = [fmt % v for v in values]
    lines = []
    line = ""
    for i, it in enumerate(items):
        piece = it + ","
        if (per_line and i % per_line == 0 and line) or len(line) + len(piece) > 100:
            lines.append(line)
            line = ""
        line += piece
    if line:
        lines.append(line)
    return "%s %s[%d] = {\n%s\n};\n" % (ctype, name, len(values), "\n".join(lines))


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: gen-unicode-tables.py UCD-DIRECTORY\n")
        sys.exit(2)
    ucd = sys.argv[1]
    cat, ccc, decomp, lower = read_unicode_data(ucd)

    qc = [0] * NCP
    for f in data_lines(os.path.join(ucd, "PropList.txt")):
        if f[1] == "White_Space":
            lo, hi = cp_range(f[0])
            for x in range(lo, hi + 1):
                qc[x] |= 4
    excluded = set()
    dnp = os.path.join(ucd, "DerivedNormalizationProps.txt")
    for f in data_lines(dnp):
        if f[1] == "NFC_QC":
            lo, hi = cp_range(f[0])
            for x in range(lo, hi + 1):
                qc[x] |= QC_INDEX[f[2]]
        elif f[1] == "Full_Composition_Exclusion":
            lo, hi = cp_range(f[0])
            excluded.update(range(lo, hi + 1))

    fold = {}
    for f in data_lines(os.path.join(ucd, "CaseFolding.txt")):
        if f[1] in ("C", "S"):
            fold[int(f[0], 16)] = int(f[2], 16)

    for cp in decomp:
        qc[cp] |= 8
    # Property records: distinct (ccc, flags) pairs, (0, 0) first.
    recs = {(0, 0): 0}
    prop = [recs.setdefault((ccc[x], qc[x]), len(recs)) for x in range(NCP)]
    if len(recs) > 256:
        die("too many (ccc, flags) records: %d" % len(recs))

    dkeys = sorted(decomp)
    ddata = []
    dvals = []
    for cp in dkeys:
        d = full_decomp(cp, decomp)
        if not 1 <= len(d) <= 4:
            die("U+%04X: decomposition of length %d" % (cp, len(d)))
        dvals.append(len(ddata) << 2 | (len(d) - 1))
        ddata.extend(d)
    if len(ddata) >= 1 << 14:
        die("decomposition data too long for 16-bit offsets")

    comp = {}
    for cp, d in decomp.items():
        if len(d) == 2 and cp not in excluded:
            comp[d[0] << 21 | d[1]] = cp
    ckeys = sorted(comp)
    # lib/unicode.c only tries to compose a character whose NFC_QC is Maybe.
    for k in ckeys:
        if qc[k & 0x1FFFFF] & 3 != QC_INDEX["M"]:
            die("U+%04X: second of a composition pair but NFC_QC is not Maybe" % (k & 0x1FFFFF))

    version = file_version(os.path.join(ucd, "DerivedNormalizationProps.txt"))
    out = []
    out.append("/* Generated by tools/gen-unicode-tables.py from the Unicode %s Character\n"
               " * Database (UnicodeData.txt, PropList.txt, DerivedNormalizationProps.txt,\n"
               " * CaseFolding.txt). Do not edit: run `make unicode-tables`. The layout is\n"
               " * described in the generator. */\n" % version)
    out.append("#include <stdint.h>\n")
    out.append('const char uc_tables_version[] = "%s";\n' % version)
    src, n1 = two_stage(cat, "uc_cat", "const uint8_t")
    out.append(src)
    src, n2 = two_stage(prop, "uc_prop", "const uint8_t")
    out.append(src)
    rec_list = sorted(recs, key=recs.get)
    out.append("/* (ccc, NFC_QC | White_Space << 2 | decomposes << 3) pairs, "
               "indexed by uc_prop_stage2 values */")
    out.append(c_array("const uint8_t", "uc_prop_rec", [v for r in rec_list for v in r]))

    out.append("/* full canonical decompositions: value = offset << 2 | (length - 1) */")
    out.append("const unsigned uc_decomp_count = %d;" % len(dkeys))
    out.append(c_array("const uint32_t", "uc_decomp_keys", dkeys, "0x%X"))
    out.append(c_array("const uint16_t", "uc_decomp_vals", dvals))
    out.append(c_array("const uint32_t", "uc_decomp_data", ddata, "0x%X"))

    out.append("/* primary composites: key = first << 21 | second */")
    out.append("const unsigned uc_comp_count = %d;" % len(ckeys))
    out.append(c_array("const uint64_t", "uc_comp_keys", ckeys, "0x%X"))
    out.append(c_array("const uint32_t", "uc_comp_vals", [comp[k] for k in ckeys], "0x%X"))

    fkeys = sorted(fold)
    out.append("/* simple case folding (CaseFolding.txt C + S) */")
    out.append("const unsigned uc_fold_count = %d;" % len(fkeys))
    out.append(c_array("const uint32_t", "uc_fold_from", fkeys, "0x%X"))
    out.append(c_array("const uint32_t", "uc_fold_to", [fold[k] for k in fkeys], "0x%X"))

    lkeys = sorted(lower)
    out.append("/* simple lowercase mapping (UnicodeData.txt field 13) */")
    out.append("const unsigned uc_lower_count = %d;" % len(lkeys))
    out.append(c_array("const uint32_t", "uc_lower_from", lkeys, "0x%X"))
    out.append(c_array("const uint32_t", "uc_lower_to", [lower[k] for k in lkeys], "0x%X"))


    sys.stdout.write("\n".join(out))
    sys.stderr.write("gen-unicode-tables: Unicode %s: category %d bytes, properties %d bytes, "
                     "%d decompositions, %d composites, %d folds, %d lowercase\n"
                     % (version, n1, n2 + 2 * len(recs), len(dkeys), len(ckeys), len(fkeys),
                        len(lkeys)))


if __name__ == "__main__":
    main()
