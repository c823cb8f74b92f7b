/* Unit tests for the I/O-free protocol module (src/proto): MessagePack
 * decoder/encoder, numpy dtypes, arrays. One self-contained program; the
 * last line of output is "N passed, M failed" and the exit status is
 * non-zero on any failure.
 *
 * The msgpack-numpy byte vectors below were produced by Debian's
 * /usr/bin/python3 (numpy 1.24, msgpack, msgpack_numpy) with
 *   msgpack.packb(value, default=msgpack_numpy.encode)
 * or msgpack.packb(dtype.descr) for the descr lists; each is labelled with
 * the Python value it encodes. They pin our decoder to what real clients
 * send and our encoder to byte-identical output. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/array.h"
#include "proto/dtype.h"
#include "proto/errors.h"
#include "proto/msgpack.h"

#include "../check.h"

/* Like CHECK(rc == code), printing the error text when it is not. */
#define CHECK_RC(expr, code)                                                                   \
    do {                                                                                       \
        int rc_ = (expr);                                                                      \
        CHECK_MSG(rc_ == (code), "%s returned %s, expected %s (err: %s)", #expr,               \
                  h5a_strerror_code(rc_), h5a_strerror_code(code), err);                       \
    } while (0)

#define CHECK_ERR_HAS(s)                                                                       \
    CHECK_MSG(strstr(err, (s)), "error text \"%s\" lacks \"%s\"", err, (s))

static char err[512];

/* ---- a tiny text notation for building MessagePack test input ----
 *   nil true false 12 -3 1.5 inf nan "str" b"bin" [a, b] {k: v}
 * Strings have no escapes. Numbers with '.', 'e', "inf" or "nan" are floats;
 * others are ints (negative ones via mp_put_int). */
static void build_value(const char **p, mp_buf *b);

static void skip_ws(const char **p)
{
    while (**p == ' ' || **p == ',' || **p == ':' || **p == '\n')
        (*p)++;
}

/* Moves past one value without building it. */
static void skip_value(const char **p)
{
    skip_ws(p);
    const char *s = *p;
    if (*s == '[' || *s == '{') {
        int depth = 0;
        do {
            if (*s == '"')
                s = strchr(s + 1, '"');
            else if (*s == '[' || *s == '{')
                depth++;
            else if (*s == ']' || *s == '}')
                depth--;
            s++;
        } while (depth > 0);
    } else if (*s == '"' || (*s == 'b' && s[1] == '"')) {
        s = strchr(s + (*s == 'b' ? 2 : 1), '"') + 1;
    } else {
        s += strcspn(s, ",]}: \n");
    }
    *p = s;
}

static size_t count_items(const char *p, char close)
{
    size_t n = 0;
    skip_ws(&p);
    while (*p != close) {
        skip_value(&p);
        n++;
        skip_ws(&p);
    }
    return n;
}

static void build_value(const char **p, mp_buf *b)
{
    skip_ws(p);
    const char *s = *p;
    if (*s == '[' || *s == '{') {
        char close = *s == '[' ? ']' : '}';
        (*p)++;
        size_t n = count_items(*p, close);
        if (close == ']')
            mp_put_array_header(b, n);
        else
            mp_put_map_header(b, n / 2);
        skip_ws(p);
        while (**p != close) {
            build_value(p, b);
            skip_ws(p);
        }
        (*p)++;
    } else if (*s == '"' || (*s == 'b' && s[1] == '"')) {
        bool bin = *s == 'b';
        const char *start = s + (bin ? 2 : 1);
        const char *end = strchr(start, '"');
        if (bin)
            mp_put_bin(b, start, (size_t)(end - start));
        else
            mp_put_str(b, start, (size_t)(end - start));
        *p = end + 1;
    } else if (!strncmp(s, "nil", 3)) {
        mp_put_nil(b);
        *p += 3;
    } else if (!strncmp(s, "true", 4)) {
        mp_put_bool(b, true);
        *p += 4;
    } else if (!strncmp(s, "false", 5)) {
        mp_put_bool(b, false);
        *p += 5;
    } else {
        size_t n = strcspn(s, ",]}: \n");
        char num[64];
        memcpy(num, s, n);
        num[n] = '\0';
        if (strpbrk(num, ".eEn"))
            mp_put_double(b, strtod(num, NULL));
        else if (num[0] == '-')
            mp_put_int(b, strtoll(num, NULL, 10));
        else
            mp_put_uint(b, strtoull(num, NULL, 10));
        *p += n;
    }
}

static mp_buf build(const char *text)
{
    mp_buf b = {0};
    build_value(&text, &b);
    return b;
}

/* Decodes text-notation input into doc; the buffer must outlive the doc's
 * use, so the caller frees it. */
static int decode_text(const char *text, mp_buf *b, mp_doc *doc)
{
    *b = build(text);
    return mp_decode(b->data, b->len, NULL, doc, err, sizeof err);
}

static bool bytes_eq(const mp_buf *b, const uint8_t *v, size_t n)
{
    return b->len == n && memcmp(b->data, v, n) == 0;
}

/* ---- msgpack-numpy vectors (see the header comment) ---- */

/* np.arange(3, dtype='<i4') */
static const uint8_t np_arange_i4[] = {
    0x85, 0xc4, 0x02, 0x6e, 0x64, 0xc3, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0xa3, 0x3c, 0x69, 0x34, 0xc4, 0x04, 0x6b, 0x69, 0x6e, 0x64, 0xc4, 0x00,
    0xc4, 0x05, 0x73, 0x68, 0x61, 0x70, 0x65, 0x91, 0x03, 0xc4, 0x04, 0x64,
    0x61, 0x74, 0x61, 0xc4, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x02, 0x00, 0x00, 0x00,
};

/* np.arange(6.).reshape(2, 3) */
static const uint8_t np_f8_2x3[] = {
    0x85, 0xc4, 0x02, 0x6e, 0x64, 0xc3, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0xa3, 0x3c, 0x66, 0x38, 0xc4, 0x04, 0x6b, 0x69, 0x6e, 0x64, 0xc4, 0x00,
    0xc4, 0x05, 0x73, 0x68, 0x61, 0x70, 0x65, 0x92, 0x02, 0x03, 0xc4, 0x04,
    0x64, 0x61, 0x74, 0x61, 0xc4, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x08, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x40, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x14, 0x40,
};

/* np.array([1, 2], dtype='>i2') */
static const uint8_t np_be_i2[] = {
    0x85, 0xc4, 0x02, 0x6e, 0x64, 0xc3, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0xa3, 0x3e, 0x69, 0x32, 0xc4, 0x04, 0x6b, 0x69, 0x6e, 0x64, 0xc4, 0x00,
    0xc4, 0x05, 0x73, 0x68, 0x61, 0x70, 0x65, 0x91, 0x02, 0xc4, 0x04, 0x64,
    0x61, 0x74, 0x61, 0xc4, 0x04, 0x00, 0x01, 0x00, 0x02,
};

/* np.array(3.0) */
static const uint8_t np_0d_f8[] = {
    0x85, 0xc4, 0x02, 0x6e, 0x64, 0xc3, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0xa3, 0x3c, 0x66, 0x38, 0xc4, 0x04, 0x6b, 0x69, 0x6e, 0x64, 0xc4, 0x00,
    0xc4, 0x05, 0x73, 0x68, 0x61, 0x70, 0x65, 0x90, 0xc4, 0x04, 0x64, 0x61,
    0x74, 0x61, 0xc4, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x40,
};

/* np.zeros(0) */
static const uint8_t np_empty_f8[] = {
    0x85, 0xc4, 0x02, 0x6e, 0x64, 0xc3, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0xa3, 0x3c, 0x66, 0x38, 0xc4, 0x04, 0x6b, 0x69, 0x6e, 0x64, 0xc4, 0x00,
    0xc4, 0x05, 0x73, 0x68, 0x61, 0x70, 0x65, 0x91, 0x00, 0xc4, 0x04, 0x64,
    0x61, 0x74, 0x61, 0xc4, 0x00,
};

/* np.array([True, False, True]) */
static const uint8_t np_bool[] = {
    0x85, 0xc4, 0x02, 0x6e, 0x64, 0xc3, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0xa3, 0x7c, 0x62, 0x31, 0xc4, 0x04, 0x6b, 0x69, 0x6e, 0x64, 0xc4, 0x00,
    0xc4, 0x05, 0x73, 0x68, 0x61, 0x70, 0x65, 0x91, 0x03, 0xc4, 0x04, 0x64,
    0x61, 0x74, 0x61, 0xc4, 0x03, 0x01, 0x00, 0x01,
};

/* np.array([b'ab', b'c'], dtype='S2') */
static const uint8_t np_bytes[] = {
    0x85, 0xc4, 0x02, 0x6e, 0x64, 0xc3, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0xa3, 0x7c, 0x53, 0x32, 0xc4, 0x04, 0x6b, 0x69, 0x6e, 0x64, 0xc4, 0x00,
    0xc4, 0x05, 0x73, 0x68, 0x61, 0x70, 0x65, 0x91, 0x02, 0xc4, 0x04, 0x64,
    0x61, 0x74, 0x61, 0xc4, 0x04, 0x61, 0x62, 0x63, 0x00,
};

/* np.zeros(2, 'V3') */
static const uint8_t np_void3[] = {
    0x85, 0xc4, 0x02, 0x6e, 0x64, 0xc3, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0x91, 0x92, 0xa0, 0xa3, 0x7c, 0x56, 0x33, 0xc4, 0x04, 0x6b, 0x69, 0x6e,
    0x64, 0xc4, 0x01, 0x56, 0xc4, 0x05, 0x73, 0x68, 0x61, 0x70, 0x65, 0x91,
    0x02, 0xc4, 0x04, 0x64, 0x61, 0x74, 0x61, 0xc4, 0x06, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00,
};

/* np.array([1+2j], dtype='<c8') */
static const uint8_t np_c8[] = {
    0x85, 0xc4, 0x02, 0x6e, 0x64, 0xc3, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0xa3, 0x3c, 0x63, 0x38, 0xc4, 0x04, 0x6b, 0x69, 0x6e, 0x64, 0xc4, 0x00,
    0xc4, 0x05, 0x73, 0x68, 0x61, 0x70, 0x65, 0x91, 0x01, 0xc4, 0x04, 0x64,
    0x61, 0x74, 0x61, 0xc4, 0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00,
    0x40,
};

/* np.array([(1, [1.5, 2.5, 3.5]), (2, [4.5, 5.5, 6.5])],
 *          dtype=np.dtype([('a','<i4'),('b','<f8',(3,))], align=True)) */
static const uint8_t np_struct[] = {
    0x85, 0xc4, 0x02, 0x6e, 0x64, 0xc3, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0x93, 0x92, 0xa1, 0x61, 0xa3, 0x3c, 0x69, 0x34, 0x92, 0xa0, 0xa3, 0x7c,
    0x56, 0x34, 0x93, 0xa1, 0x62, 0xa3, 0x3c, 0x66, 0x38, 0x91, 0x03, 0xc4,
    0x04, 0x6b, 0x69, 0x6e, 0x64, 0xc4, 0x01, 0x56, 0xc4, 0x05, 0x73, 0x68,
    0x61, 0x70, 0x65, 0x91, 0x02, 0xc4, 0x04, 0x64, 0x61, 0x74, 0x61, 0xc4,
    0x40, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0xf8, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04,
    0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x40, 0x02, 0x00, 0x00,
    0x00, 0x28, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12,
    0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x16, 0x40, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x1a, 0x40,
};

/* np.zeros(1, dtype=np.dtype([('a','<i4'),('b',[('x','u1'),('y','<f8')])], align=True)) */
static const uint8_t np_nested[] = {
    0x85, 0xc4, 0x02, 0x6e, 0x64, 0xc3, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0x93, 0x92, 0xa1, 0x61, 0xa3, 0x3c, 0x69, 0x34, 0x92, 0xa0, 0xa3, 0x7c,
    0x56, 0x34, 0x92, 0xa1, 0x62, 0x93, 0x92, 0xa1, 0x78, 0xa3, 0x7c, 0x75,
    0x31, 0x92, 0xa0, 0xa3, 0x7c, 0x56, 0x37, 0x92, 0xa1, 0x79, 0xa3, 0x3c,
    0x66, 0x38, 0xc4, 0x04, 0x6b, 0x69, 0x6e, 0x64, 0xc4, 0x01, 0x56, 0xc4,
    0x05, 0x73, 0x68, 0x61, 0x70, 0x65, 0x91, 0x01, 0xc4, 0x04, 0x64, 0x61,
    0x74, 0x61, 0xc4, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
};

/* np.int8(-3) */
static const uint8_t np_s_i1[] = {
    0x83, 0xc4, 0x02, 0x6e, 0x64, 0xc2, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0xa3, 0x7c, 0x69, 0x31, 0xc4, 0x04, 0x64, 0x61, 0x74, 0x61, 0xc4, 0x01,
    0xfd,
};

/* np.uint64(2**64-1) */
static const uint8_t np_s_u8[] = {
    0x83, 0xc4, 0x02, 0x6e, 0x64, 0xc2, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0xa3, 0x3c, 0x75, 0x38, 0xc4, 0x04, 0x64, 0x61, 0x74, 0x61, 0xc4, 0x08,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

/* np.float32(1.5) */
static const uint8_t np_s_f4[] = {
    0x83, 0xc4, 0x02, 0x6e, 0x64, 0xc2, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0xa3, 0x3c, 0x66, 0x34, 0xc4, 0x04, 0x64, 0x61, 0x74, 0x61, 0xc4, 0x04,
    0x00, 0x00, 0xc0, 0x3f,
};

/* np.complex128(1+2j) */
static const uint8_t np_s_c16[] = {
    0x83, 0xc4, 0x02, 0x6e, 0x64, 0xc2, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0xa4, 0x3c, 0x63, 0x31, 0x36, 0xc4, 0x04, 0x64, 0x61, 0x74, 0x61, 0xc4,
    0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x40,
};

/* np.bool_(True) */
static const uint8_t np_s_b1[] = {
    0x83, 0xc4, 0x02, 0x6e, 0x64, 0xc2, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0xa3, 0x7c, 0x62, 0x31, 0xc4, 0x04, 0x64, 0x61, 0x74, 0x61, 0xc4, 0x01,
    0x01,
};

/* 1+2j (Python complex) */
static const uint8_t py_complex[] = {
    0x82, 0xc4, 0x07, 0x63, 0x6f, 0x6d, 0x70, 0x6c, 0x65, 0x78, 0xc3, 0xc4,
    0x04, 0x64, 0x61, 0x74, 0x61, 0xa6, 0x28, 0x31, 0x2b, 0x32, 0x6a, 0x29,
};

/* np.array(['ab'], dtype='<U5') */
static const uint8_t np_u5[] = {
    0x85, 0xc4, 0x02, 0x6e, 0x64, 0xc3, 0xc4, 0x04, 0x74, 0x79, 0x70, 0x65,
    0xa3, 0x3c, 0x55, 0x35, 0xc4, 0x04, 0x6b, 0x69, 0x6e, 0x64, 0xc4, 0x00,
    0xc4, 0x05, 0x73, 0x68, 0x61, 0x70, 0x65, 0x91, 0x01, 0xc4, 0x04, 0x64,
    0x61, 0x74, 0x61, 0xc4, 0x14, 0x61, 0x00, 0x00, 0x00, 0x62, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00,
};

/* np.dtype([('a','<i4'),('b','<f8',(3,))], align=True).descr */
static const uint8_t descr_align[] = {
    0x93, 0x92, 0xa1, 0x61, 0xa3, 0x3c, 0x69, 0x34, 0x92, 0xa0, 0xa3, 0x7c,
    0x56, 0x34, 0x93, 0xa1, 0x62, 0xa3, 0x3c, 0x66, 0x38, 0x91, 0x03,
};

/* np.dtype([('a','<i4'),('b',[('x','u1'),('y','<f8')])], align=True).descr */
static const uint8_t descr_nested[] = {
    0x93, 0x92, 0xa1, 0x61, 0xa3, 0x3c, 0x69, 0x34, 0x92, 0xa0, 0xa3, 0x7c,
    0x56, 0x34, 0x92, 0xa1, 0x62, 0x93, 0x92, 0xa1, 0x78, 0xa3, 0x7c, 0x75,
    0x31, 0x92, 0xa0, 0xa3, 0x7c, 0x56, 0x37, 0x92, 0xa1, 0x79, 0xa3, 0x3c,
    0x66, 0x38,
};

/* np.dtype({'names': ['a'], 'formats': ['<i4'], 'itemsize': 8}).descr */
static const uint8_t descr_trail[] = {
    0x92, 0x92, 0xa1, 0x61, 0xa3, 0x3c, 0x69, 0x34, 0x92, 0xa0, 0xa3, 0x7c,
    0x56, 0x34,
};

/* np.dtype([('a','<i4',(2,)),('b',[('x','<f4',(2,))],(3,))]).descr */
static const uint8_t descr_subnest[] = {
    0x92, 0x93, 0xa1, 0x61, 0xa3, 0x3c, 0x69, 0x34, 0x91, 0x02, 0x93, 0xa1,
    0x62, 0x91, 0x93, 0xa1, 0x78, 0xa3, 0x3c, 0x66, 0x34, 0x91, 0x02, 0x91,
    0x03,
};

/* np.dtype([('m','>u2',(2,3)),('s','S3'),('c','<c16'),('h','<f2'),('t','?')]).descr */
static const uint8_t descr_multi[] = {
    0x95, 0x93, 0xa1, 0x6d, 0xa3, 0x3e, 0x75, 0x32, 0x92, 0x02, 0x03, 0x92,
    0xa1, 0x73, 0xa3, 0x7c, 0x53, 0x33, 0x92, 0xa1, 0x63, 0xa4, 0x3c, 0x63,
    0x31, 0x36, 0x92, 0xa1, 0x68, 0xa3, 0x3c, 0x66, 0x32, 0x92, 0xa1, 0x74,
    0xa3, 0x7c, 0x62, 0x31,
};

/* ================= errors ================= */

static void test_errors(void)
{
    CHECK(strcmp(h5a_strerror_code(H5A_E_NOT_FOUND), "NOT_FOUND") == 0);
    CHECK(strcmp(h5a_strerror_code(H5A_E_BAD_REQUEST), "BAD_REQUEST") == 0);
    CHECK(strcmp(h5a_strerror_code(H5A_E_INTERNAL), "INTERNAL") == 0);
    CHECK(strcmp(h5a_strerror_code(H5A_E_SHUTTING_DOWN), "SHUTTING_DOWN") == 0);
    CHECK(strcmp(h5a_strerror_code(0), "INTERNAL") == 0);
    CHECK(strcmp(h5a_strerror_code(5), "INTERNAL") == 0);
    CHECK(strcmp(h5a_strerror_code(-1000), "INTERNAL") == 0);
    CHECK(strcmp(h5a_strerror_code(-2147483647 - 1), "INTERNAL") == 0);

    char small[8];
    CHECK(h5a_fail(small, sizeof small, H5A_E_EXISTS, "abc %d", 123456789) == H5A_E_EXISTS);
    CHECK(strcmp(small, "abc 123") == 0);
    CHECK(h5a_fail(NULL, 0, H5A_E_TOO_LARGE, "x") == H5A_E_TOO_LARGE);
    small[0] = 'q';
    CHECK(h5a_fail(small, 0, H5A_E_TOO_LARGE, "x") == H5A_E_TOO_LARGE && small[0] == 'q');
}

/* ================= msgpack ================= */

static int decode_buf(const mp_buf *b, mp_doc *doc)
{
    return mp_decode(b->data, b->len, NULL, doc, err, sizeof err);
}

static void test_mp_uints(void)
{
    static const struct {
        uint64_t v;
        size_t len;
        uint8_t first;
    } cases[] = {
        {0, 1, 0x00},
        {127, 1, 0x7f},
        {128, 2, 0xcc},
        {255, 2, 0xcc},
        {256, 3, 0xcd},
        {65535, 3, 0xcd},
        {65536, 5, 0xce},
        {UINT32_MAX, 5, 0xce},
        {(uint64_t)UINT32_MAX + 1, 9, 0xcf},
        {UINT64_MAX, 9, 0xcf},
    };
    mp_doc doc = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mp_buf b = {0};
        mp_put_uint(&b, cases[i].v);
        CHECK(b.len == cases[i].len && b.data[0] == cases[i].first);
        CHECK_RC(decode_buf(&b, &doc), 0);
        CHECK(doc.count == 1 && doc.nodes[0].type == MP_UINT && doc.nodes[0].v.u == cases[i].v);
        mp_buf_free(&b);
    }
    mp_doc_free(&doc);
}

static void test_mp_ints(void)
{
    static const struct {
        int64_t v;
        size_t len;
        uint8_t first;
    } cases[] = {
        {-1, 1, 0xff},
        {-32, 1, 0xe0},
        {-33, 2, 0xd0},
        {-128, 2, 0xd0},
        {-129, 3, 0xd1},
        {-32768, 3, 0xd1},
        {-32769, 5, 0xd2},
        {INT32_MIN, 5, 0xd2},
        {(int64_t)INT32_MIN - 1, 9, 0xd3},
        {INT64_MIN, 9, 0xd3},
        {5, 1, 0x05},      /* non-negative goes the uint way */
        {300, 3, 0xcd},
        {INT64_MAX, 9, 0xcf},
    };
    mp_doc doc = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mp_buf b = {0};
        mp_put_int(&b, cases[i].v);
        CHECK(b.len == cases[i].len && b.data[0] == cases[i].first);
        CHECK_RC(decode_buf(&b, &doc), 0);
        if (cases[i].v < 0)
            CHECK(doc.nodes[0].type == MP_INT && doc.nodes[0].v.i == cases[i].v);
        else
            CHECK(doc.nodes[0].type == MP_UINT && doc.nodes[0].v.u == (uint64_t)cases[i].v);
        mp_buf_free(&b);
    }
    mp_doc_free(&doc);
}

static void test_mp_scalars(void)
{
    mp_doc doc = {0};
    mp_buf b = {0};
    mp_put_nil(&b);
    CHECK(b.len == 1 && b.data[0] == 0xc0);
    CHECK_RC(decode_buf(&b, &doc), 0);
    CHECK(doc.nodes[0].type == MP_NIL && doc.nodes[0].span == 1);
    mp_buf_free(&b);

    for (int v = 0; v < 2; v++) {
        mp_put_bool(&b, v);
        CHECK(b.len == 1 && b.data[0] == (v ? 0xc3 : 0xc2));
        CHECK_RC(decode_buf(&b, &doc), 0);
        CHECK(doc.nodes[0].type == MP_BOOL && doc.nodes[0].v.b == (bool)v);
        mp_buf_free(&b);
    }

    const double ds[] = {0.0, -0.0, -1.5, 1e300, 5e-324, INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        mp_put_double(&b, ds[i]);
        CHECK(b.len == 9 && b.data[0] == 0xcb);
        CHECK_RC(decode_buf(&b, &doc), 0);
        CHECK(doc.nodes[0].type == MP_FLOAT);
        if (isnan(ds[i]))
            CHECK(isnan(doc.nodes[0].v.f));
        else
            CHECK(doc.nodes[0].v.f == ds[i] && !!signbit(doc.nodes[0].v.f) == !!signbit(ds[i]));
        mp_buf_free(&b);
    }
    /* big-endian on the wire */
    mp_put_double(&b, 1.5);
    static const uint8_t one_five[] = {0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
    CHECK(bytes_eq(&b, one_five, sizeof one_five));
    mp_buf_free(&b);
    mp_doc_free(&doc);
}

static void test_mp_raw(void)
{
    static const struct {
        size_t n;
        uint8_t str_first, bin_first;
        size_t str_hdr, bin_hdr;
    } cases[] = {
        {0, 0xa0, 0xc4, 1, 2},        {1, 0xa1, 0xc4, 1, 2},         {31, 0xbf, 0xc4, 1, 2},
        {32, 0xd9, 0xc4, 2, 2},       {255, 0xd9, 0xc4, 2, 2},       {256, 0xda, 0xc5, 3, 3},
        {65535, 0xda, 0xc5, 3, 3},    {65536, 0xdb, 0xc6, 5, 5},     {100000, 0xdb, 0xc6, 5, 5},
    };
    char *text = malloc(100000);
    for (size_t i = 0; i < 100000; i++)
        text[i] = (char)('a' + i % 26);
    mp_doc doc = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = cases[i].n;
        mp_buf b = {0};
        mp_put_str(&b, text, n);
        CHECK(b.len == cases[i].str_hdr + n && b.data[0] == cases[i].str_first);
        CHECK_RC(decode_buf(&b, &doc), 0);
        CHECK(doc.nodes[0].type == MP_STR && doc.nodes[0].len == n &&
              doc.nodes[0].v.ptr == b.data + cases[i].str_hdr &&
              memcmp(doc.nodes[0].v.ptr, text, n) == 0);
        mp_buf_free(&b);

        mp_put_bin(&b, text, n);
        CHECK(b.len == cases[i].bin_hdr + n && b.data[0] == cases[i].bin_first);
        CHECK_RC(decode_buf(&b, &doc), 0);
        CHECK(doc.nodes[0].type == MP_BIN && doc.nodes[0].len == n &&
              memcmp(doc.nodes[0].v.ptr, text, n) == 0);
        mp_buf_free(&b);

        /* the zero-copy path: header now, bytes by the caller */
        mp_put_bin_header(&b, n);
        CHECK(b.len == cases[i].bin_hdr);
        mp_put_raw(&b, text, n);
        CHECK_RC(decode_buf(&b, &doc), 0);
        CHECK(doc.nodes[0].type == MP_BIN && doc.nodes[0].len == n);
        mp_buf_free(&b);
    }
    mp_buf b = {0};
    mp_put_cstr(&b, "hello");
    CHECK(b.len == 6 && b.data[0] == 0xa5 && memcmp(b.data + 1, "hello", 5) == 0);
    mp_buf_free(&b);
    free(text);
    mp_doc_free(&doc);
}

static void test_mp_containers(void)
{
    static const struct {
        size_t n;
        uint8_t arr_first, map_first;
        size_t hdr;
    } cases[] = {
        {0, 0x90, 0x80, 1},     {1, 0x91, 0x81, 1},     {15, 0x9f, 0x8f, 1},
        {16, 0xdc, 0xde, 3},    {65535, 0xdc, 0xde, 3}, {65536, 0xdd, 0xdf, 5},
    };
    mp_doc doc = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = cases[i].n;
        mp_buf b = {0};
        mp_put_array_header(&b, n);
        CHECK(b.len == cases[i].hdr && b.data[0] == cases[i].arr_first);
        for (size_t k = 0; k < n; k++)
            mp_put_uint(&b, k % 100);
        CHECK_RC(decode_buf(&b, &doc), 0);
        CHECK(doc.count == n + 1 && doc.nodes[0].type == MP_ARRAY && doc.nodes[0].len == n &&
              doc.nodes[0].span == n + 1);
        CHECK(n == 0 || doc.nodes[n].v.u == (n - 1) % 100);
        mp_buf_free(&b);

        mp_put_map_header(&b, n);
        CHECK(b.len == cases[i].hdr && b.data[0] == cases[i].map_first);
        for (size_t k = 0; k < n; k++) {
            mp_put_uint(&b, k);
            mp_put_nil(&b);
        }
        CHECK_RC(decode_buf(&b, &doc), 0);
        CHECK(doc.count == 2 * n + 1 && doc.nodes[0].type == MP_MAP && doc.nodes[0].len == n &&
              doc.nodes[0].span == 2 * n + 1);
        mp_buf_free(&b);
    }

    /* spans let navigation skip whole subtrees */
    mp_buf b;
    CHECK_RC(decode_text("[[1, [2, 3]], {\"k\": [4]}, 5]", &b, &doc), 0);
    const mp_node *root = doc.nodes;
    CHECK(root->span == 11);
    const mp_node *c0 = mp_first_child(root), *c1 = mp_next(c0), *c2 = mp_next(c1);
    CHECK(c0->type == MP_ARRAY && c0->span == 5);
    CHECK(c1->type == MP_MAP && c1->span == 4);
    CHECK(c2->type == MP_UINT && c2->v.u == 5 && mp_next(c2) == root + root->span);
    mp_buf_free(&b);
    mp_doc_free(&doc);
}

/* Formats our encoder never writes, as other encoders might send them. */
static void test_mp_foreign(void)
{
    mp_doc doc = {0};
#define DEC(...)                                                                               \
    do {                                                                                       \
        static const uint8_t v_[] = {__VA_ARGS__};                                             \
        CHECK_RC(mp_decode(v_, sizeof v_, NULL, &doc, err, sizeof err), 0);                    \
    } while (0)
    const mp_node *n = NULL;

    DEC(0xca, 0x3f, 0xc0, 0x00, 0x00);
    n = doc.nodes;
    CHECK(n->type == MP_FLOAT && n->v.f == 1.5);
    DEC(0xca, 0xff, 0x80, 0x00, 0x00);
    CHECK(n->type == MP_FLOAT && isinf(n->v.f) && n->v.f < 0);
    DEC(0xcc, 0x05);
    CHECK(n->type == MP_UINT && n->v.u == 5);
    DEC(0xcd, 0x00, 0x05);
    CHECK(n->type == MP_UINT && n->v.u == 5);
    DEC(0xce, 0x00, 0x00, 0x00, 0x05);
    CHECK(n->type == MP_UINT && n->v.u == 5);
    DEC(0xcf, 0, 0, 0, 0, 0, 0, 0, 0x05);
    CHECK(n->type == MP_UINT && n->v.u == 5);
    DEC(0xcf, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08);
    CHECK(n->type == MP_UINT && n->v.u == 0x0102030405060708ull);
    DEC(0xd0, 0x05);
    CHECK(n->type == MP_UINT && n->v.u == 5);
    DEC(0xd0, 0x80);
    CHECK(n->type == MP_INT && n->v.i == -128);
    DEC(0xd1, 0xff, 0xfe);
    CHECK(n->type == MP_INT && n->v.i == -2);
    DEC(0xd1, 0x7f, 0xff);
    CHECK(n->type == MP_UINT && n->v.u == 32767);
    DEC(0xd2, 0x80, 0x00, 0x00, 0x00);
    CHECK(n->type == MP_INT && n->v.i == INT32_MIN);
    DEC(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0);
    CHECK(n->type == MP_INT && n->v.i == INT64_MIN);
    DEC(0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    CHECK(n->type == MP_UINT && n->v.u == INT64_MAX);
    DEC(0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    CHECK(n->type == MP_INT && n->v.i == -1);

    DEC(0xd4, 0x01, 0xaa);
    CHECK(n->type == MP_EXT && n->ext_type == 1 && n->len == 1 && n->v.ptr[0] == 0xaa);
    DEC(0xd5, 0xff, 1, 2);
    CHECK(n->type == MP_EXT && n->ext_type == -1 && n->len == 2 && n->v.ptr[1] == 2);
    DEC(0xd6, 0x7f, 1, 2, 3, 4);
    CHECK(n->type == MP_EXT && n->ext_type == 127 && n->len == 4 && n->v.ptr[3] == 4);
    DEC(0xd7, 0x80, 1, 2, 3, 4, 5, 6, 7, 8);
    CHECK(n->type == MP_EXT && n->ext_type == -128 && n->len == 8 && n->v.ptr[7] == 8);
    DEC(0xd8, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    CHECK(n->type == MP_EXT && n->ext_type == 2 && n->len == 16 && n->v.ptr[15] == 16);
    DEC(0xc7, 0x03, 0x05, 1, 2, 3);
    CHECK(n->type == MP_EXT && n->ext_type == 5 && n->len == 3 && n->v.ptr[2] == 3);
    DEC(0xc7, 0x00, 0x05);
    CHECK(n->type == MP_EXT && n->ext_type == 5 && n->len == 0);
    DEC(0xc8, 0x00, 0x02, 0xfe, 9, 8);
    CHECK(n->type == MP_EXT && n->ext_type == -2 && n->len == 2 && n->v.ptr[1] == 8);
    DEC(0xc9, 0x00, 0x00, 0x00, 0x01, 0x7f, 0x42);
    CHECK(n->type == MP_EXT && n->ext_type == 127 && n->len == 1 && n->v.ptr[0] == 0x42);

    DEC(0xd9, 0x03, 'a', 'b', 'c');
    CHECK(n->type == MP_STR && n->len == 3 && mp_raw_eq(n, "abc"));
    DEC(0xda, 0x00, 0x01, 'x');
    CHECK(n->type == MP_STR && mp_raw_eq(n, "x"));
    DEC(0xdb, 0x00, 0x00, 0x00, 0x02, 'h', 'i');
    CHECK(n->type == MP_STR && mp_raw_eq(n, "hi"));
    DEC(0xc5, 0x00, 0x01, 0x00);
    CHECK(n->type == MP_BIN && n->len == 1 && n->v.ptr[0] == 0);
    DEC(0xc6, 0x00, 0x00, 0x00, 0x00);
    CHECK(n->type == MP_BIN && n->len == 0);
    DEC(0xdc, 0x00, 0x02, 0x01, 0x02);
    CHECK(n->type == MP_ARRAY && n->len == 2 && n->span == 3 && n[2].v.u == 2);
    DEC(0xdd, 0x00, 0x00, 0x00, 0x01, 0xc0);
    CHECK(n->type == MP_ARRAY && n->len == 1 && n[1].type == MP_NIL);
    DEC(0xde, 0x00, 0x01, 0xa1, 'k', 0x07);
    CHECK(n->type == MP_MAP && n->len == 1 && mp_map_get(n, "k")->v.u == 7);
    DEC(0xdf, 0x00, 0x00, 0x00, 0x01, 0xa1, 'k', 0xc3);
    CHECK(n->type == MP_MAP && mp_map_get(n, "k")->type == MP_BOOL && mp_map_get(n, "k")->v.b);
#undef DEC
    mp_doc_free(&doc);
}

static void test_mp_errors(void)
{
    mp_doc doc = {0};

    /* One sample with every kind of value; every proper prefix is truncated. */
    mp_buf b = build("{\"a\": [1, -1, 200, -200, 70000, -70000, 5000000000, -5000000000, 1.5],"
                     " b\"bin\": b\"xyz\", \"s\": \"a string longer than thirty-one bytes\","
                     " \"m\": {\"t\": true, \"f\": false, \"n\": nil}, \"e\": []}");
    static const uint8_t extra[] = {0xd4, 0x01, 0xaa, 0xc7, 0x02, 0x03, 1, 2, 0xca, 0, 0, 0, 0};
    b.data[0]++; /* fixmap: one more pair, an ext key and an ext8 value, then a float32... */
    mp_put_raw(&b, extra, sizeof extra);
    /* ...which needs one more pair still */
    b.data[0]++;
    mp_put_uint(&b, 9);
    CHECK_RC(decode_buf(&b, &doc), 0);
    size_t full = b.len;
    int bad = 0;
    for (size_t n = 0; n < full; n++) {
        int rc = mp_decode(b.data, n, NULL, &doc, err, sizeof err);
        if (rc != H5A_E_PROTOCOL_ERROR || !strstr(err, "truncated")) {
            bad++;
            fprintf(stderr, "prefix %zu: rc %d err %s\n", n, rc, err);
        }
    }
    CHECK(bad == 0);

    /* trailing bytes */
    mp_put_nil(&b);
    CHECK_RC(decode_buf(&b, &doc), H5A_E_PROTOCOL_ERROR);
    CHECK_ERR_HAS("trailing");
    CHECK_ERR_HAS("byte");
    CHECK(doc.count == 0);
    mp_buf_free(&b);

    static const uint8_t two[] = {0x01, 0x02};
    CHECK_RC(mp_decode(two, sizeof two, NULL, &doc, err, sizeof err), H5A_E_PROTOCOL_ERROR);
    CHECK_ERR_HAS("1 trailing bytes after the MessagePack object at byte 1");

    /* empty input */
    CHECK_RC(mp_decode(two, 0, NULL, &doc, err, sizeof err), H5A_E_PROTOCOL_ERROR);
    CHECK_ERR_HAS("truncated");

    /* 0xc1 is never used */
    static const uint8_t c1[] = {0x92, 0x01, 0xc1};
    CHECK_RC(mp_decode(c1, sizeof c1, NULL, &doc, err, sizeof err), H5A_E_PROTOCOL_ERROR);
    CHECK_ERR_HAS("0xc1");
    CHECK_ERR_HAS("byte 2");

    /* Declared counts larger than the bytes left must fail before any
     * allocation that big. */
    static const uint8_t huge_arr[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0};
    mp_doc fresh = {0};
    CHECK_RC(mp_decode(huge_arr, sizeof huge_arr, NULL, &fresh, err, sizeof err),
             H5A_E_PROTOCOL_ERROR);
    CHECK_ERR_HAS("4294967295");
    CHECK(fresh.cap <= 64);
    static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0};
    CHECK_RC(mp_decode(huge_map, sizeof huge_map, NULL, &fresh, err, sizeof err),
             H5A_E_PROTOCOL_ERROR);
    CHECK(fresh.cap <= 64);
    /* a map of 3 pairs needs 6 children: 5 bytes left is not enough */
    static const uint8_t short_map[] = {0x83, 1, 2, 3, 4, 5};
    CHECK_RC(mp_decode(short_map, sizeof short_map, NULL, &fresh, err, sizeof err),
             H5A_E_PROTOCOL_ERROR);
    CHECK_ERR_HAS("3 pairs");
    static const uint8_t huge_str[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    CHECK_RC(mp_decode(huge_str, sizeof huge_str, NULL, &fresh, err, sizeof err),
             H5A_E_PROTOCOL_ERROR);
    CHECK_ERR_HAS("truncated str32");
    static const uint8_t huge_ext[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'};
    CHECK_RC(mp_decode(huge_ext, sizeof huge_ext, NULL, &fresh, err, sizeof err),
             H5A_E_PROTOCOL_ERROR);
    mp_doc_free(&fresh);

    /* depth: default 32 nested containers pass, 33 do not */
    uint8_t deep[40];
    for (int d = 31; d <= 33; d++) {
        memset(deep, 0x91, (size_t)d - 1);
        deep[d - 1] = 0x90;
        int rc = mp_decode(deep, (size_t)d, NULL, &doc, err, sizeof err);
        if (d <= 32)
            CHECK_RC(rc, 0);
        else {
            CHECK_RC(rc, H5A_E_PROTOCOL_ERROR);
            CHECK_ERR_HAS("nesting deeper than 32");
        }
    }
    mp_limits lim = {.max_depth = 2, .max_nodes = 0};
    b = build("[[1]]");
    CHECK_RC(mp_decode(b.data, b.len, &lim, &doc, err, sizeof err), 0);
    mp_buf_free(&b);
    b = build("[{\"a\": [1]}]");
    CHECK_RC(mp_decode(b.data, b.len, &lim, &doc, err, sizeof err), H5A_E_PROTOCOL_ERROR);
    CHECK_ERR_HAS("nesting deeper than 2 at byte 4");
    mp_buf_free(&b);

    /* node limit */
    b = build("[1, 2, 3]");
    lim = (mp_limits){.max_depth = 0, .max_nodes = 3};
    CHECK_RC(mp_decode(b.data, b.len, &lim, &doc, err, sizeof err), H5A_E_TOO_LARGE);
    lim.max_nodes = 4;
    CHECK_RC(mp_decode(b.data, b.len, &lim, &doc, err, sizeof err), 0);
    CHECK(doc.count == 4);
    mp_buf_free(&b);

    /* errors say where */
    static const uint8_t trunc_u16[] = {0x92, 0x01, 0xcd, 0x01};
    CHECK_RC(mp_decode(trunc_u16, sizeof trunc_u16, NULL, &doc, err, sizeof err),
             H5A_E_PROTOCOL_ERROR);
    CHECK_ERR_HAS("truncated uint16 at byte 2");
    mp_doc_free(&doc);
}

static void test_mp_map_get(void)
{
    mp_doc doc = {0};
    mp_buf b;
    CHECK_RC(decode_text("{\"a\": 1, b\"b\": 2, \"nested\": {\"x\": [1, 2]}, \"c\": 3, 7: 8,"
                         " \"\": 9}",
                         &b, &doc),
             0);
    const mp_node *m = doc.nodes;
    CHECK(mp_map_get(m, "a") && mp_map_get(m, "a")->v.u == 1);
    CHECK(mp_map_get(m, "b") && mp_map_get(m, "b")->v.u == 2);
    CHECK(mp_map_get(m, "c") && mp_map_get(m, "c")->v.u == 3);
    CHECK(mp_map_get(m, "") && mp_map_get(m, "")->v.u == 9);
    CHECK(mp_map_get(m, "x") == NULL);
    CHECK(mp_map_get(m, "nes") == NULL);
    const mp_node *nested = mp_map_get(m, "nested");
    CHECK(nested && nested->type == MP_MAP);
    const mp_node *x = mp_map_get(nested, "x");
    CHECK(x && x->type == MP_ARRAY && x->len == 2);
    CHECK(mp_map_get(x, "x") == NULL);
    CHECK(mp_map_get(NULL, "x") == NULL);
    CHECK(mp_raw_eq(mp_first_child(m), "a") && !mp_raw_eq(mp_first_child(m), "ab"));
    CHECK(!mp_raw_eq(mp_map_get(m, "a"), "a")); /* an int is not raw */
    mp_buf_free(&b);

    /* the doc's node array is reused, not reallocated, for smaller messages */
    CHECK_RC(decode_text("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", &b, &doc), 0);
    mp_node *first = doc.nodes;
    size_t cap = doc.cap;
    mp_buf_free(&b);
    CHECK_RC(decode_text("[1]", &b, &doc), 0);
    CHECK(doc.nodes == first && doc.cap == cap && doc.count == 2);
    mp_buf_free(&b);
    mp_doc_free(&doc);
    CHECK(doc.nodes == NULL && doc.count == 0 && doc.cap == 0);
}

static void test_mp_buf(void)
{
    mp_buf b = {0};
    mp_buf_reserve(&b, 10);
    CHECK(!b.oom && b.cap >= 10 && b.len == 0);
    size_t cap = b.cap;
    mp_buf_reserve(&b, 5);
    CHECK(b.cap == cap);
    for (int i = 0; i < 10000; i++)
        mp_put_uint(&b, 1000);
    CHECK(!b.oom && b.len == 30000 && b.cap >= 30000 && b.cap < 2 * 30000 + 64);
    mp_put_raw(&b, NULL, 0);
    CHECK(b.len == 30000);

    /* Lengths with no MessagePack encoding poison the buffer like OOM. The
     * bytes are never read, so a short buffer is fine. */
    mp_buf_reserve(&b, SIZE_MAX);
    CHECK(b.oom);
    size_t len = b.len;
    mp_put_nil(&b);
    mp_put_cstr(&b, "x");
    CHECK(b.len == len);
    mp_buf_free(&b);
    CHECK(!b.oom && b.data == NULL && b.len == 0);
#if SIZE_MAX > UINT32_MAX
    mp_put_str(&b, "x", (size_t)UINT32_MAX + 1);
    CHECK(b.oom && b.len == 0);
    mp_buf_free(&b);
    mp_put_array_header(&b, (size_t)UINT32_MAX + 1);
    CHECK(b.oom);
    mp_buf_free(&b);
    mp_put_map_header(&b, (size_t)UINT32_MAX + 1);
    CHECK(b.oom);
    mp_buf_free(&b);
    mp_put_bin_header(&b, (size_t)UINT32_MAX + 1);
    CHECK(b.oom);
    mp_buf_free(&b);
#endif
}

/* A map counted while written has the header mp_put_map_header gives, also
 * when that header is longer than the byte kept for it. */
static void test_mp_map_end(void)
{
    static const size_t counts[] = {0, 3, 15, 16, 300, 65535, 65536};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        size_t n = counts[c];
        mp_buf want = {0}, got = {0};
        mp_put_cstr(&want, "before");
        mp_put_cstr(&got, "before");
        mp_put_map_header(&want, n);
        size_t at = mp_map_begin(&got);
        for (size_t i = 0; i < n; i++) {
            mp_put_uint(&want, i);
            mp_put_uint(&want, i * 7);
            mp_put_uint(&got, i);
            mp_put_uint(&got, i * 7);
        }
        mp_map_end(&got, at, n);
        CHECK(!got.oom && got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
        mp_buf_free(&want);
        mp_buf_free(&got);
    }
    mp_buf b = {0};
    size_t at = mp_map_begin(&b);
    b.oom = true; /* what a failed write leaves: nothing to patch */
    mp_map_end(&b, at, 20);
    CHECK(b.len == 1 && b.data[0] == 0x80);
    mp_buf_free(&b);
}

/* ================= dtype ================= */

static int parse_s(const char *s, dtype **t)
{
    return dtype_parse_str(s, strlen(s), t, err, sizeof err);
}

/* Encodes t and checks the output is the fixstr of want. */
static bool encodes_as_str(const dtype *t, const char *want)
{
    mp_buf b = {0};
    int rc = dtype_encode(&b, t);
    bool ok = rc == 0 && b.len == 1 + strlen(want) && b.data[0] == (0xa0 | strlen(want)) &&
              memcmp(b.data + 1, want, strlen(want)) == 0;
    mp_buf_free(&b);
    return ok;
}

static void test_dtype_simple(void)
{
    static const struct {
        const char *in, *out;
        dt_kind kind;
        size_t size;
        char order;
    } cases[] = {
        {"|b1", "|b1", DT_BOOL, 1, '|'},      {"<b1", "|b1", DT_BOOL, 1, '|'},
        {"|i1", "|i1", DT_INT, 1, '|'},       {"<i1", "|i1", DT_INT, 1, '|'},
        {"<i2", "<i2", DT_INT, 2, '<'},       {"<i4", "<i4", DT_INT, 4, '<'},
        {"<i8", "<i8", DT_INT, 8, '<'},       {">i8", ">i8", DT_INT, 8, '>'},
        {"=i4", "<i4", DT_INT, 4, '<'},       {"i4", "<i4", DT_INT, 4, '<'},
        {"|u1", "|u1", DT_UINT, 1, '|'},      {">u1", "|u1", DT_UINT, 1, '|'},
        {"<u2", "<u2", DT_UINT, 2, '<'},      {"<u4", "<u4", DT_UINT, 4, '<'},
        {"<u8", "<u8", DT_UINT, 8, '<'},      {">u2", ">u2", DT_UINT, 2, '>'},
        {"<f2", "<f2", DT_FLOAT, 2, '<'},     {"<f4", "<f4", DT_FLOAT, 4, '<'},
        {"<f8", "<f8", DT_FLOAT, 8, '<'},     {">f4", ">f4", DT_FLOAT, 4, '>'},
        {"f8", "<f8", DT_FLOAT, 8, '<'},      {"<c8", "<c8", DT_COMPLEX, 8, '<'},
        {"<c16", "<c16", DT_COMPLEX, 16, '<'}, {">c16", ">c16", DT_COMPLEX, 16, '>'},
        {"|S1", "|S1", DT_BYTES, 1, '|'},     {"|S5", "|S5", DT_BYTES, 5, '|'},
        {"<S5", "|S5", DT_BYTES, 5, '|'},     {"S300", "|S300", DT_BYTES, 300, '|'},
        {"|V8", "|V8", DT_VOID, 8, '|'},      {">V3", "|V3", DT_VOID, 3, '|'},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dtype *t = NULL;
        CHECK_RC(parse_s(cases[i].in, &t), 0);
        if (!t)
            continue;
        CHECK(t->kind == cases[i].kind && t->itemsize == cases[i].size &&
              t->order == cases[i].order && t->nfields == 0);
        char s[32];
        dtype_str(t, s, sizeof s);
        CHECK(strcmp(s, cases[i].out) == 0);
        CHECK(encodes_as_str(t, cases[i].out));

        /* through dtype_parse_node, as str and as bin */
        mp_doc doc = {0};
        mp_buf b = {0};
        mp_put_cstr(&b, cases[i].in);
        mp_put_bin(&b, cases[i].in, strlen(cases[i].in));
        for (size_t off = 0; off < b.len;) {
            size_t one = 1 + strlen(cases[i].in) + (off ? 1 : 0);
            CHECK_RC(mp_decode(b.data + off, one, NULL, &doc, err, sizeof err), 0);
            dtype *u = NULL;
            CHECK_RC(dtype_parse_node(doc.nodes, &u, err, sizeof err), 0);
            CHECK(dtype_equal(t, u));
            dtype_free(u);
            off += one;
        }
        mp_buf_free(&b);
        mp_doc_free(&doc);

        dtype *c = dtype_copy(t);
        CHECK(c && c != t && dtype_equal(c, t));
        dtype_free(c);
        dtype_free(t);
    }

    /* dtype_new picks numpy's order marks */
    dtype *t = dtype_new(DT_INT, 1);
    CHECK(t->order == '|');
    dtype_free(t);
    t = dtype_new(DT_FLOAT, 8);
    CHECK(t->order == '<' && encodes_as_str(t, "<f8"));
    dtype_free(t);
    t = dtype_new(DT_BYTES, 7);
    CHECK(t->order == '|' && encodes_as_str(t, "|S7"));
    dtype_free(t);

    /* strings cannot be written as a numpy type */
    t = dtype_new(DT_VLSTR, sizeof(char *));
    char s[8] = "junk";
    dtype_str(t, s, sizeof s);
    CHECK(s[0] == '\0');
    mp_buf b = {0};
    CHECK(dtype_encode(&b, t) == H5A_E_UNSUPPORTED_TYPE);
    mp_buf_free(&b);
    dtype_free(t);

    /* written by hand: large sizes, and cut short at the buffer as snprintf
     * would be */
    t = dtype_new(DT_VOID, 1234567);
    char big[16], cut[4];
    dtype_str(t, big, sizeof big);
    CHECK(strcmp(big, "|V1234567") == 0);
    dtype_str(t, cut, sizeof cut);
    CHECK(strcmp(cut, "|V1") == 0);
    dtype_str(t, cut, 1);
    CHECK(cut[0] == '\0');
    dtype_free(t);
    t = dtype_new(DT_BOOL, 1);
    dtype_str(t, big, sizeof big);
    CHECK(strcmp(big, "|b1") == 0);
    dtype_free(t);
}

static void test_dtype_str_errors(void)
{
    static const struct {
        const char *in;
        int code;
        const char *msg;
    } cases[] = {
        {"<U5", H5A_E_UNSUPPORTED_TYPE, "unicode"},
        {"U", H5A_E_UNSUPPORTED_TYPE, "variable-length"},
        {"|O", H5A_E_UNSUPPORTED_TYPE, "object"},
        {"|O8", H5A_E_UNSUPPORTED_TYPE, "object"},
        {"<M8[ns]", H5A_E_UNSUPPORTED_TYPE, "datetime64"},
        {"<m8[s]", H5A_E_UNSUPPORTED_TYPE, "timedelta64"},
        {"<f16", H5A_E_UNSUPPORTED_TYPE, "<f16"},
        {"<f12", H5A_E_UNSUPPORTED_TYPE, "<f12"},
        {"<c32", H5A_E_UNSUPPORTED_TYPE, "<c32"},
        {"<i3", H5A_E_UNSUPPORTED_TYPE, "<i3"},
        {"|b2", H5A_E_UNSUPPORTED_TYPE, "|b2"},
        {"<u16", H5A_E_UNSUPPORTED_TYPE, "<u16"},
        {"|S0", H5A_E_UNSUPPORTED_TYPE, "size 0"},
        {"|V0", H5A_E_UNSUPPORTED_TYPE, "size 0"},
        {"", H5A_E_BAD_REQUEST, "bad type string ''"},
        {"<", H5A_E_BAD_REQUEST, "bad type"},
        {"<f", H5A_E_BAD_REQUEST, "bad type"},
        {"<fx", H5A_E_BAD_REQUEST, "bad type"},
        {"<f8x", H5A_E_BAD_REQUEST, "bad type"},
        {"<f 8", H5A_E_BAD_REQUEST, "bad type"},
        {"<f-8", H5A_E_BAD_REQUEST, "bad type"},
        {"<<f8", H5A_E_BAD_REQUEST, "bad type"},
        {"x8", H5A_E_BAD_REQUEST, "unknown kind 'x'"},
        {"hello", H5A_E_BAD_REQUEST, "unknown kind"},
        {"?", H5A_E_BAD_REQUEST, "bad type"},
        {"<a5", H5A_E_BAD_REQUEST, "unknown kind"},
        {"|S99999999999", H5A_E_BAD_REQUEST, "too large"},
        {"|S99999999999999999999999999", H5A_E_BAD_REQUEST, "too large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dtype *t = (dtype *)&t; /* must come back NULL */
        err[0] = '\0';
        CHECK_RC(parse_s(cases[i].in, &t), cases[i].code);
        CHECK(t == NULL);
        CHECK_ERR_HAS(cases[i].msg);
    }
    /* embedded NUL and other bytes are shown escaped */
    dtype *t = NULL;
    CHECK_RC(dtype_parse_str("<f8\0x", 5, &t, err, sizeof err), H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("<f8\\x00x");
    /* the length is respected: "<f8" is the first three bytes */
    CHECK_RC(dtype_parse_str("<f8junk", 3, &t, err, sizeof err), 0);
    CHECK(t && t->kind == DT_FLOAT);
    dtype_free(t);
    /* long garbage is cut short in the message */
    char longs[300];
    memset(longs, 'z', sizeof longs);
    CHECK_RC(dtype_parse_str(longs, sizeof longs, &t, err, sizeof err), H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("...");
    CHECK(strlen(err) < 120);

    /* node forms that are no type at all */
    mp_doc doc = {0};
    mp_buf b;
    CHECK_RC(decode_text("5", &b, &doc), 0);
    CHECK_RC(dtype_parse_node(doc.nodes, &t, err, sizeof err), H5A_E_BAD_REQUEST);
    mp_buf_free(&b);
    mp_doc_free(&doc);
}

/* Parses a descr list from its msgpack bytes, checks dtype_encode gives the
 * same bytes back, and returns the type. */
static dtype *descr_roundtrip(const uint8_t *v, size_t n)
{
    mp_doc doc = {0};
    dtype *t = NULL;
    CHECK_RC(mp_decode(v, n, NULL, &doc, err, sizeof err), 0);
    CHECK_RC(dtype_parse_node(doc.nodes, &t, err, sizeof err), 0);
    mp_doc_free(&doc);
    if (!t)
        return NULL;
    mp_buf b = {0};
    CHECK_RC(dtype_encode(&b, t), 0);
    CHECK(bytes_eq(&b, v, n));
    mp_buf_free(&b);
    dtype *c = dtype_copy(t);
    CHECK(dtype_equal(c, t));
    dtype_free(c);
    return t;
}

static bool field_is(const dtype *t, size_t i, const char *name, size_t off, dt_kind kind,
                     size_t size, int ndim)
{
    if (i >= t->nfields)
        return false;
    const dt_field *f = &t->fields[i];
    return strcmp(f->name, name) == 0 && f->offset == off && f->type->kind == kind &&
           f->type->itemsize == size && f->ndim == ndim;
}

static void test_dtype_struct(void)
{
    /* [('a','<i4'),('','|V4'),('b','<f8',(3,))] */
    dtype *t = descr_roundtrip(descr_align, sizeof descr_align);
    CHECK(t && t->kind == DT_STRUCT && t->itemsize == 32 && t->nfields == 2);
    CHECK(t && field_is(t, 0, "a", 0, DT_INT, 4, 0));
    CHECK(t && field_is(t, 1, "b", 8, DT_FLOAT, 8, 1) && t->fields[1].dims[0] == 3);

    /* the same type built by hand, fields added out of order */
    dtype *h = dtype_new(DT_STRUCT, 32);
    uint64_t three = 3;
    CHECK(dtype_add_field(h, "b", 8, dtype_new(DT_FLOAT, 8), 1, &three) == 0);
    CHECK(dtype_add_field(h, "a", 0, dtype_new(DT_INT, 4), 0, NULL) == 0);
    CHECK(h->nfields == 2 && strcmp(h->fields[0].name, "a") == 0);
    CHECK(dtype_equal(t, h));
    mp_buf b = {0};
    CHECK(dtype_encode(&b, h) == 0 && bytes_eq(&b, descr_align, sizeof descr_align));
    mp_buf_free(&b);

    /* equality looks at every part */
    dtype *c = dtype_copy(h);
    c->fields[1].dims[0] = 4;
    CHECK(!dtype_equal(c, h));
    c->fields[1].dims[0] = 3;
    c->fields[1].offset = 12;
    CHECK(!dtype_equal(c, h));
    c->fields[1].offset = 8;
    c->fields[0].name[0] = 'z';
    CHECK(!dtype_equal(c, h));
    c->fields[0].name[0] = 'a';
    c->itemsize = 40;
    CHECK(!dtype_equal(c, h));
    c->itemsize = 32;
    c->fields[0].type->order = '>';
    CHECK(!dtype_equal(c, h));
    c->fields[0].type->order = '<';
    CHECK(dtype_equal(c, h));
    dtype_free(c);
    dtype_free(h);
    dtype_free(t);

    /* nested struct with padding inside and out */
    t = descr_roundtrip(descr_nested, sizeof descr_nested);
    CHECK(t && t->itemsize == 24 && t->nfields == 2);
    CHECK(t && field_is(t, 1, "b", 8, DT_STRUCT, 16, 0));
    CHECK(t && field_is(t->fields[1].type, 0, "x", 0, DT_UINT, 1, 0) &&
          t->fields[1].type->fields[0].type->order == '|');
    CHECK(t && field_is(t->fields[1].type, 1, "y", 8, DT_FLOAT, 8, 0));
    char s[8] = "junk";
    dtype_str(t, s, sizeof s);
    CHECK(s[0] == '\0');
    dtype_free(t);

    /* trailing padding only */
    t = descr_roundtrip(descr_trail, sizeof descr_trail);
    CHECK(t && t->itemsize == 8 && t->nfields == 1 && field_is(t, 0, "a", 0, DT_INT, 4, 0));
    dtype_free(t);

    /* subarrays of a struct */
    t = descr_roundtrip(descr_subnest, sizeof descr_subnest);
    CHECK(t && t->itemsize == 32 && t->nfields == 2);
    CHECK(t && field_is(t, 0, "a", 0, DT_INT, 4, 1) && t->fields[0].dims[0] == 2);
    CHECK(t && field_is(t, 1, "b", 8, DT_STRUCT, 8, 1) && t->fields[1].dims[0] == 3);
    dtype_free(t);

    /* many kinds, big-endian subarray, no alignment */
    t = descr_roundtrip(descr_multi, sizeof descr_multi);
    CHECK(t && t->itemsize == 34 && t->nfields == 5);
    CHECK(t && field_is(t, 0, "m", 0, DT_UINT, 2, 2) && t->fields[0].type->order == '>' &&
          t->fields[0].dims[0] == 2 && t->fields[0].dims[1] == 3);
    CHECK(t && field_is(t, 1, "s", 12, DT_BYTES, 3, 0));
    CHECK(t && field_is(t, 2, "c", 15, DT_COMPLEX, 16, 0));
    CHECK(t && field_is(t, 3, "h", 31, DT_FLOAT, 2, 0));
    CHECK(t && field_is(t, 4, "t", 33, DT_BOOL, 1, 0));
    dtype_free(t);
}

static int parse_text(const char *text, dtype **t)
{
    mp_doc doc = {0};
    mp_buf b;
    *t = NULL;
    mp_limits lim = {.max_depth = 200};
    b = build(text);
    int rc = mp_decode(b.data, b.len, &lim, &doc, err, sizeof err);
    if (rc == 0)
        rc = dtype_parse_node(doc.nodes, t, err, sizeof err);
    mp_buf_free(&b);
    mp_doc_free(&doc);
    return rc;
}

static void test_dtype_struct_errors(void)
{
    dtype *t = NULL;
    CHECK_RC(parse_text("[[\"a\", \"<i4\"], [\"a\", \"<f8\"]]", &t), H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("duplicate field name 'a'");
    CHECK_RC(parse_text("[[\"a\", \"<i4\"], [\"b\", [[\"a\", \"<f8\"]]], [\"a\", \"<f8\"]]", &t),
             H5A_E_BAD_REQUEST);
    /* a name may repeat in a nested struct */
    CHECK_RC(parse_text("[[\"a\", \"<i4\"], [\"b\", [[\"a\", \"<f8\"]]]]", &t), 0);
    CHECK(t && t->itemsize == 12);
    dtype_free(t);
    CHECK_RC(parse_text("[]", &t), H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("no named fields");
    CHECK_RC(parse_text("[[\"\", \"|V4\"], [\"\", \"|V4\"]]", &t), H5A_E_BAD_REQUEST);
    CHECK_RC(parse_text("[[\"\", \"<i4\"], [\"a\", \"<i4\"]]", &t), H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("padding");
    CHECK_RC(parse_text("[[\"a\"]]", &t), H5A_E_BAD_REQUEST);
    CHECK_RC(parse_text("[[\"a\", \"<i4\", [1], 5]]", &t), H5A_E_BAD_REQUEST);
    CHECK_RC(parse_text("[\"a\", \"<i4\"]", &t), H5A_E_BAD_REQUEST);
    CHECK_RC(parse_text("[[1, \"<i4\"]]", &t), H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("field name must be a string");
    CHECK_RC(parse_text("[[\"a\", \"<i4\", [-1]]]", &t), H5A_E_BAD_REQUEST);
    CHECK_RC(parse_text("[[\"a\", \"<i4\", [1.5]]]", &t), H5A_E_BAD_REQUEST);
    CHECK_RC(parse_text("[[\"a\", \"<i4\", \"3\"]]", &t), H5A_E_BAD_REQUEST);
    CHECK_RC(parse_text("[[\"a\", 5]]", &t), H5A_E_BAD_REQUEST);
    CHECK_RC(parse_text("[[\"a\", \"<U3\"]]", &t), H5A_E_UNSUPPORTED_TYPE);
    CHECK_ERR_HAS("unicode");
    CHECK_RC(parse_text("[[\"a\", \"<f8\", [4294967295, 4294967295]]]", &t), H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("overflows");
    CHECK_RC(parse_text("[[\"a\", \"<f8\", [2000000000]], [\"b\", \"<f8\", [2000000000]]]", &t),
             H5A_E_BAD_REQUEST);
    CHECK_RC(parse_text("[[\"a\", \"<f8\", [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
                        "1,1,1,1,1,1,1,1,1]]]",
                        &t),
             H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("rank 33");

    /* shapes: [] is no subarray, a bare int is 1-D, zero-length is allowed */
    CHECK_RC(parse_text("[[\"a\", \"<f8\", []], [\"b\", \"<i2\", 3], [\"c\", \"|u1\", [0]]]", &t),
             0);
    CHECK(t && t->itemsize == 14 && field_is(t, 0, "a", 0, DT_FLOAT, 8, 0) &&
          field_is(t, 1, "b", 8, DT_INT, 2, 1) && t->fields[1].dims[0] == 3 &&
          field_is(t, 2, "c", 14, DT_UINT, 1, 1));
    dtype_free(t);

    /* a lone padding entry of 0 bytes would be '|V0', which the type-string
     * parser refuses: refused the same way (fuzz_decode's round trip) */
    CHECK_RC(parse_text("[[\"\", \"|V16\", [4, 3, 0]]]", &t), H5A_E_UNSUPPORTED_TYPE);
    CHECK(t == NULL);
    CHECK_ERR_HAS("size 0");
    CHECK_RC(parse_text("[[\"\", \"|V16\", 0]]", &t), H5A_E_UNSUPPORTED_TYPE);

    /* numpy's spelling of a plain void type */
    CHECK_RC(parse_text("[[\"\", \"|V8\"]]", &t), 0);
    CHECK(t && t->kind == DT_VOID && t->itemsize == 8);
    dtype_free(t);

    /* field names arrive as bin too (msgpack-numpy without use_bin_type) */
    CHECK_RC(parse_text("[[b\"a\", b\"<i4\"], [b\"\", b\"|V4\"]]", &t), 0);
    CHECK(t && t->itemsize == 8 && field_is(t, 0, "a", 0, DT_INT, 4, 0));
    dtype_free(t);

    /* NUL inside a name */
    mp_buf b = {0};
    mp_put_array_header(&b, 1);
    mp_put_array_header(&b, 2);
    mp_put_str(&b, "a\0b", 3);
    mp_put_cstr(&b, "<i4");
    mp_doc doc = {0};
    CHECK_RC(mp_decode(b.data, b.len, NULL, &doc, err, sizeof err), 0);
    CHECK_RC(dtype_parse_node(doc.nodes, &t, err, sizeof err), H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("NUL");
    mp_buf_free(&b);

    /* nesting is bounded even when the MessagePack limit allows more */
    char deep[2000] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[[\"a\", ");
    strcat(deep, "\"<i4\"");
    for (int i = 0; i < 40; i++)
        strcat(deep, "]]");
    CHECK_RC(parse_text(deep, &t), H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("nested deeper");

    /* the field count is bounded, and duplicates are found among many */
    mp_put_array_header(&b, 65537);
    char name[16];
    for (int i = 0; i < 65537; i++) {
        mp_put_array_header(&b, 2);
        snprintf(name, sizeof name, "f%d", i);
        mp_put_cstr(&b, name);
        mp_put_cstr(&b, "|u1");
    }
    CHECK_RC(mp_decode(b.data, b.len, NULL, &doc, err, sizeof err), 0);
    CHECK_RC(dtype_parse_node(doc.nodes, &t, err, sizeof err), H5A_E_TOO_LARGE);
    mp_buf_free(&b);
    mp_put_array_header(&b, 20001);
    for (int i = 0; i < 20001; i++) {
        mp_put_array_header(&b, 2);
        snprintf(name, sizeof name, "f%d", i == 20000 ? 1234 : i);
        mp_put_cstr(&b, name);
        mp_put_cstr(&b, "|u1");
    }
    CHECK_RC(mp_decode(b.data, b.len, NULL, &doc, err, sizeof err), 0);
    CHECK_RC(dtype_parse_node(doc.nodes, &t, err, sizeof err), H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("duplicate field name 'f1234'");
    mp_buf_free(&b);
    mp_doc_free(&doc);

    /* what numpy's descr cannot say, we cannot write */
    dtype *st = dtype_new(DT_STRUCT, 8);
    CHECK(dtype_add_field(st, "a", 0, dtype_new(DT_INT, 4), 0, NULL) == 0);
    CHECK(dtype_add_field(st, "b", 2, dtype_new(DT_INT, 4), 0, NULL) == 0);
    CHECK(dtype_encode(&b, st) == H5A_E_UNSUPPORTED_TYPE);
    mp_buf_free(&b);
    dtype_free(st);
    st = dtype_new(DT_STRUCT, 4);
    CHECK(dtype_add_field(st, "a", 0, dtype_new(DT_INT, 8), 0, NULL) == 0);
    CHECK(dtype_encode(&b, st) == H5A_E_UNSUPPORTED_TYPE);
    mp_buf_free(&b);
    dtype_free(st);
    st = dtype_new(DT_STRUCT, 16);
    CHECK(dtype_add_field(st, "s", 8, dtype_new(DT_VLSTR, sizeof(char *)), 0, NULL) == 0);
    CHECK(dtype_encode(&b, st) == H5A_E_UNSUPPORTED_TYPE);
    mp_buf_free(&b);
    /* bad arguments free the field type rather than leak it */
    CHECK(dtype_add_field(st, NULL, 0, dtype_new(DT_INT, 4), 0, NULL) == H5A_E_INTERNAL);
    CHECK(dtype_add_field(st, "x", 0, dtype_new(DT_INT, 4), 33, NULL) == H5A_E_INTERNAL);
    dtype_free(st);
    st = dtype_new(DT_INT, 4);
    CHECK(dtype_add_field(st, "x", 0, dtype_new(DT_INT, 4), 0, NULL) == H5A_E_INTERNAL);
    dtype_free(st);

    /* gaps between fields and at the end are spelled as numpy spells them */
    st = dtype_new(DT_STRUCT, 20);
    CHECK(dtype_add_field(st, "y", 8, dtype_new(DT_FLOAT, 4), 0, NULL) == 0);
    CHECK(dtype_add_field(st, "x", 2, dtype_new(DT_INT, 2), 0, NULL) == 0);
    CHECK(dtype_encode(&b, st) == 0);
    mp_buf want = build("[[\"\", \"|V2\"], [\"x\", \"<i2\"], [\"\", \"|V4\"], [\"y\", \"<f4\"],"
                        " [\"\", \"|V8\"]]");
    CHECK(b.len == want.len && memcmp(b.data, want.data, b.len) == 0);
    mp_buf_free(&want);
    mp_buf_free(&b);
    dtype_free(st);
}

/* ================= arrays ================= */

/* Decodes v and builds an array from it; doc must stay alive while the
 * array points into v. */
static int array_from(const uint8_t *v, size_t n, mp_doc *doc, h5a_array *a)
{
    /* deep enough for the 33-level list test to reach the array code */
    mp_limits lim = {.max_depth = 64};
    int rc = mp_decode(v, n, &lim, doc, err, sizeof err);
    if (rc)
        return rc;
    return h5a_array_from_node(doc->nodes, a, err, sizeof err);
}

/* Encodes a and appends the data a caller would send after it. */
static mp_buf encode_full(const h5a_array *a)
{
    mp_buf b = {0};
    bool follows = false;
    CHECK_RC(h5a_array_encode(&b, a, &follows, err, sizeof err), 0);
    if (follows)
        mp_put_raw(&b, a->data, a->nbytes);
    return b;
}

static bool same_array(const h5a_array *a, const h5a_array *b)
{
    if (!dtype_equal(a->type, b->type) || a->ndim != b->ndim || a->nbytes != b->nbytes)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    if (a->type->kind == DT_VLSTR) {
        uint64_t n;
        h5a_nelems(a->ndim, a->dims, &n);
        for (uint64_t i = 0; i < n; i++) {
            const char *x = ((char *const *)a->data)[i], *y = ((char *const *)b->data)[i];
            if (strcmp(x ? x : "", y ? y : "") != 0)
                return false;
        }
        return true;
    }
    return a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0;
}

/* Encoding then decoding gives the same array back. */
static void check_reencode(const h5a_array *a)
{
    mp_buf b = encode_full(a);
    mp_doc doc = {0};
    h5a_array back;
    CHECK_RC(array_from(b.data, b.len, &doc, &back), 0);
    CHECK(same_array(a, &back));
    h5a_array_clear(&back);
    mp_doc_free(&doc);
    mp_buf_free(&b);
}

/* The vector decodes to the given type and shape, points into the input (no
 * copy), and our encoder writes the very same bytes back. */
static void check_numpy_vector(const uint8_t *v, size_t n, const char *type, int ndim,
                               const uint64_t *dims, bool byte_identical)
{
    mp_doc doc = {0};
    h5a_array a;
    CHECK_RC(array_from(v, n, &doc, &a), 0);
    if (!a.type) {
        mp_doc_free(&doc);
        return;
    }
    char s[32];
    dtype_str(a.type, s, sizeof s);
    CHECK(strcmp(s, type) == 0);
    CHECK(a.ndim == ndim && !a.plain);
    for (int i = 0; i < ndim; i++)
        CHECK(a.dims[i] == dims[i]);
    CHECK(a.owned == NULL);
    CHECK((const uint8_t *)a.data >= v && (const uint8_t *)a.data + a.nbytes <= v + n);
    if (byte_identical) {
        mp_buf b = encode_full(&a);
        CHECK(bytes_eq(&b, v, n));
        mp_buf_free(&b);
    }
    check_reencode(&a);
    h5a_array_clear(&a);
    CHECK(a.type == NULL && a.data == NULL);
    mp_doc_free(&doc);
}

static void test_array_numpy(void)
{
    check_numpy_vector(np_arange_i4, sizeof np_arange_i4, "<i4", 1, (uint64_t[]){3}, true);
    check_numpy_vector(np_f8_2x3, sizeof np_f8_2x3, "<f8", 2, (uint64_t[]){2, 3}, true);
    check_numpy_vector(np_be_i2, sizeof np_be_i2, ">i2", 1, (uint64_t[]){2}, true);
    check_numpy_vector(np_empty_f8, sizeof np_empty_f8, "<f8", 1, (uint64_t[]){0}, true);
    check_numpy_vector(np_bool, sizeof np_bool, "|b1", 1, (uint64_t[]){3}, true);
    check_numpy_vector(np_bytes, sizeof np_bytes, "|S2", 1, (uint64_t[]){2}, true);
    check_numpy_vector(np_c8, sizeof np_c8, "<c8", 1, (uint64_t[]){1}, true);
    /* a 0-d array comes back as a numpy scalar, V<n> as a plain type string */
    check_numpy_vector(np_0d_f8, sizeof np_0d_f8, "<f8", 0, NULL, false);
    check_numpy_vector(np_void3, sizeof np_void3, "|V3", 1, (uint64_t[]){2}, false);
    check_numpy_vector(np_struct, sizeof np_struct, "", 1, (uint64_t[]){2}, true);
    check_numpy_vector(np_nested, sizeof np_nested, "", 1, (uint64_t[]){1}, true);
    check_numpy_vector(np_s_i1, sizeof np_s_i1, "|i1", 0, NULL, true);
    check_numpy_vector(np_s_u8, sizeof np_s_u8, "<u8", 0, NULL, true);
    check_numpy_vector(np_s_f4, sizeof np_s_f4, "<f4", 0, NULL, true);
    check_numpy_vector(np_s_c16, sizeof np_s_c16, "<c16", 0, NULL, true);
    check_numpy_vector(np_s_b1, sizeof np_s_b1, "|b1", 0, NULL, true);

    /* the values themselves */
    mp_doc doc = {0};
    h5a_array a;
    CHECK_RC(array_from(np_arange_i4, sizeof np_arange_i4, &doc, &a), 0);
    int32_t i4[3];
    memcpy(i4, a.data, sizeof i4);
    CHECK(a.nbytes == 12 && i4[0] == 0 && i4[1] == 1 && i4[2] == 2);
    h5a_array_clear(&a);
    CHECK_RC(array_from(np_struct, sizeof np_struct, &doc, &a), 0);
    CHECK(a.type->kind == DT_STRUCT && a.type->itemsize == 32 && a.nbytes == 64);
    double f8;
    memcpy(&f8, (const uint8_t *)a.data + 32 + 8 + 16, sizeof f8);
    CHECK(f8 == 6.5);
    h5a_array_clear(&a);
    CHECK_RC(array_from(np_s_i1, sizeof np_s_i1, &doc, &a), 0);
    CHECK(a.nbytes == 1 && *(const int8_t *)a.data == -3);
    h5a_array_clear(&a);

    /* unicode arrays are refused with advice */
    CHECK_RC(array_from(np_u5, sizeof np_u5, &doc, &a), H5A_E_UNSUPPORTED_TYPE);
    CHECK_ERR_HAS("<U5");
    CHECK(a.type == NULL && a.owned == NULL);
    mp_doc_free(&doc);
}

/* Builds text-notation input and makes an array of it. */
static int array_text(const char *text, mp_buf *b, mp_doc *doc, h5a_array *a)
{
    *b = build(text);
    return array_from(b->data, b->len, doc, a);
}

static void test_array_numpy_errors(void)
{
    mp_doc doc = {0};
    mp_buf b;
    h5a_array a;
    /* byte count mismatch, with the sizes in the message */
    CHECK_RC(array_text("{b\"nd\": true, b\"type\": \"<f8\", b\"kind\": b\"\", b\"shape\": [2, 3],"
                        " b\"data\": b\"0123456789012345678901234567890123456789\"}",
                        &b, &doc, &a),
             H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("array of shape (2, 3) and type <f8 needs 48 bytes of data, got 40");
    CHECK(a.type == NULL);
    mp_buf_free(&b);
    CHECK_RC(array_text("{\"nd\": true, \"type\": \"<i2\", \"shape\": [3], \"data\": b\"01234\"}",
                        &b, &doc, &a),
             H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("shape (3,) and type <i2 needs 6 bytes of data, got 5");
    mp_buf_free(&b);
    CHECK_RC(array_text("{\"nd\": false, \"type\": \"<i2\", \"data\": b\"012\"}", &b, &doc, &a),
             H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("shape () and type <i2 needs 2 bytes");
    mp_buf_free(&b);
    CHECK_RC(array_text("{\"nd\": true, \"type\": [[\"a\", \"<i2\"]], \"shape\": [1],"
                        " \"data\": b\"0\"}",
                        &b, &doc, &a),
             H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("structured (itemsize 2)");
    mp_buf_free(&b);

    /* str keys and str data work as well as bin */
    CHECK_RC(array_text("{\"nd\": true, \"type\": \"|u1\", \"kind\": \"\", \"shape\": [2],"
                        " \"data\": \"AB\"}",
                        &b, &doc, &a),
             0);
    CHECK(a.nbytes == 2 && memcmp(a.data, "AB", 2) == 0 && a.data == b.data + b.len - 2);
    h5a_array_clear(&a);
    mp_buf_free(&b);

    static const char *bad[] = {
        "{\"nd\": 1, \"type\": \"<f8\", \"shape\": [], \"data\": b\"\"}",
        "{\"nd\": true, \"shape\": [0], \"data\": b\"\"}",
        "{\"nd\": true, \"type\": \"<f8\", \"shape\": [0]}",
        "{\"nd\": true, \"type\": \"<f8\", \"data\": b\"\"}",
        "{\"nd\": true, \"type\": \"<f8\", \"shape\": 0, \"data\": b\"\"}",
        "{\"nd\": true, \"type\": \"<f8\", \"shape\": [-1], \"data\": b\"\"}",
        "{\"nd\": true, \"type\": \"<f8\", \"shape\": [1.0], \"data\": b\"\"}",
        "{\"nd\": true, \"type\": \"<f8\", \"shape\": [0], \"data\": [1]}",
        "{\"nd\": true, \"type\": 8, \"shape\": [0], \"data\": b\"\"}",
        "{\"nd\": true, \"type\": \"<f8\", \"shape\": [4294967296, 4294967296, 4],"
        " \"data\": b\"\"}",
        "{\"nd\": true, \"type\": \"<f8\", \"shape\": [9223372036854775807, 2], \"data\": b\"\"}",
        "{\"complex\": false, \"data\": \"1j\"}",
        "{\"complex\": true}",
        "{\"complex\": true, \"data\": 5}",
        "{\"something\": 1}",
        "{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_RC(array_text(bad[i], &b, &doc, &a), H5A_E_BAD_REQUEST);
        CHECK(a.type == NULL && a.owned == NULL && a.ndim == 0);
        mp_buf_free(&b);
    }
    CHECK_RC(array_text("{b\"nd\": true, b\"type\": [[\"\", \"|O\"]], b\"kind\": b\"O\","
                        " b\"shape\": [1], b\"data\": b\"pickle\"}",
                        &b, &doc, &a),
             H5A_E_UNSUPPORTED_TYPE);
    CHECK_ERR_HAS("pickled");
    mp_buf_free(&b);

    /* rank above HDF5's limit */
    CHECK_RC(array_text("{\"nd\": true, \"type\": \"<f8\", \"shape\": [1,1,1,1,1,1,1,1,1,1,1,1,"
                        "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1], \"data\": b\"01234567\"}",
                        &b, &doc, &a),
             H5A_E_TOO_LARGE);
    mp_buf_free(&b);
    CHECK_RC(array_text("{\"nd\": true, \"type\": \"<f8\", \"shape\": [1,1,1,1,1,1,1,1,1,1,1,1,"
                        "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1], \"data\": b\"01234567\"}",
                        &b, &doc, &a),
             0);
    CHECK(a.ndim == 32);
    check_reencode(&a);
    h5a_array_clear(&a);
    mp_buf_free(&b);
    mp_doc_free(&doc);
}

static bool complex_is(const h5a_array *a, double re, double im)
{
    double v[2];
    if (!a->type || a->type->kind != DT_COMPLEX || a->type->itemsize != 16 || a->ndim != 0 ||
        a->nbytes != 16 || !a->owned)
        return false;
    memcpy(v, a->data, sizeof v);
    bool re_ok = isnan(re) ? isnan(v[0]) : v[0] == re && !!signbit(v[0]) == !!signbit(re);
    bool im_ok = isnan(im) ? isnan(v[1]) : v[1] == im && !!signbit(v[1]) == !!signbit(im);
    return re_ok && im_ok;
}

static void test_array_complex(void)
{
    mp_doc doc = {0};
    h5a_array a;
    CHECK_RC(array_from(py_complex, sizeof py_complex, &doc, &a), 0);
    CHECK(complex_is(&a, 1, 2));
    check_reencode(&a);
    h5a_array_clear(&a);

    static const struct {
        const char *text;
        double re, im;
    } good[] = {
        {"(1+2j)", 1, 2},
        {"1j", 0, 1},
        {"-1j", 0, -1},
        {"(-0-1j)", -0.0, -1},
        {"(-0+0j)", -0.0, 0},
        {"(nan+infj)", NAN, INFINITY},
        {"(1+nanj)", 1, NAN},
        {"-infj", 0, -INFINITY},
        {"(1e+300-2.5e-10j)", 1e300, -2.5e-10},
        {"(-1.5+0j)", -1.5, 0},
        {"(1e-05+1e-05j)", 1e-5, 1e-5},
        {"1+2j", 1, 2},
        {"2", 2, 0},
        {"j", 0, 1},
        {"-J", 0, -1},
        {"1-j", 1, -1},
        {" ( 3-4J ) ", 3, -4},
        {"(1e999+0j)", INFINITY, 0},
        {".5j", 0, 0.5},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        mp_buf b = {0};
        mp_put_map_header(&b, 2);
        mp_put_bin(&b, "complex", 7);
        mp_put_bool(&b, true);
        mp_put_bin(&b, "data", 4);
        mp_put_cstr(&b, good[i].text);
        CHECK_RC(array_from(b.data, b.len, &doc, &a), 0);
        if (!complex_is(&a, good[i].re, good[i].im)) {
            check_failed++;
            fprintf(stderr, "complex '%s' parsed wrong\n", good[i].text);
        } else {
            check_passed++;
        }
        h5a_array_clear(&a);
        mp_buf_free(&b);
    }
    static const char *bad[] = {
        "", "()", "(1+2j", "1+2", "1+2i", "j1", "1jj", "1+-2j", "1++2j", "1 +2j", "1+ 2j",
        "0x10j", "nan(1)j", "abc", "1e", "(1+2j)x", "1+2j+3j", "--1j", "+",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mp_buf b = {0};
        mp_put_map_header(&b, 2);
        mp_put_cstr(&b, "complex");
        mp_put_bool(&b, true);
        mp_put_cstr(&b, "data");
        mp_put_cstr(&b, bad[i]);
        int rc = array_from(b.data, b.len, &doc, &a);
        if (rc != H5A_E_BAD_REQUEST) {
            check_failed++;
            fprintf(stderr, "complex '%s' accepted\n", bad[i]);
        } else {
            check_passed++;
        }
        h5a_array_clear(&a);
        mp_buf_free(&b);
    }
    mp_doc_free(&doc);
}

static void test_array_plain_scalars(void)
{
    mp_doc doc = {0};
    mp_buf b;
    h5a_array a;

    CHECK_RC(array_text("true", &b, &doc, &a), 0);
    CHECK(a.plain && a.ndim == 0 && a.type->kind == DT_BOOL && a.nbytes == 1 &&
          *(const uint8_t *)a.data == 1 && a.owned);
    check_reencode(&a);
    h5a_array_clear(&a);
    mp_buf_free(&b);

    int64_t i8;
    uint64_t u8;
    double f8;
    CHECK_RC(array_text("-5", &b, &doc, &a), 0);
    memcpy(&i8, a.data, 8);
    CHECK(a.type->kind == DT_INT && a.type->itemsize == 8 && a.type->order == '<' && i8 == -5);
    check_reencode(&a);
    h5a_array_clear(&a);
    mp_buf_free(&b);
    CHECK_RC(array_text("9223372036854775807", &b, &doc, &a), 0);
    memcpy(&i8, a.data, 8);
    CHECK(a.type->kind == DT_INT && i8 == INT64_MAX);
    h5a_array_clear(&a);
    mp_buf_free(&b);
    CHECK_RC(array_text("18446744073709551615", &b, &doc, &a), 0);
    memcpy(&u8, a.data, 8);
    CHECK(a.type->kind == DT_UINT && a.type->itemsize == 8 && u8 == UINT64_MAX);
    check_reencode(&a);
    h5a_array_clear(&a);
    mp_buf_free(&b);
    CHECK_RC(array_text("1.5", &b, &doc, &a), 0);
    memcpy(&f8, a.data, 8);
    CHECK(a.type->kind == DT_FLOAT && a.type->itemsize == 8 && f8 == 1.5 && a.nbytes == 8);
    h5a_array_clear(&a);
    mp_buf_free(&b);

    CHECK_RC(array_text("\"h\xc3\xa9llo\"", &b, &doc, &a), 0);
    CHECK(a.type->kind == DT_VLSTR && a.type->utf8 && a.ndim == 0 &&
          a.nbytes == sizeof(char *) && a.type->itemsize == sizeof(char *));
    CHECK(strcmp(((char *const *)a.data)[0], "h\xc3\xa9llo") == 0);
    {
        mp_buf enc = encode_full(&a);
        CHECK(enc.len == b.len && memcmp(enc.data, b.data, b.len) == 0);
        mp_buf_free(&enc);
    }
    h5a_array_clear(&a);
    mp_buf_free(&b);
    CHECK_RC(array_text("b\"raw\"", &b, &doc, &a), 0);
    CHECK(a.type->kind == DT_VLSTR && !a.type->utf8 && strcmp(*(char *const *)a.data, "raw") == 0);
    {
        mp_buf enc = encode_full(&a);
        CHECK(enc.len == b.len && memcmp(enc.data, b.data, b.len) == 0);
        mp_buf_free(&enc);
    }
    h5a_array_clear(&a);
    mp_buf_free(&b);
    CHECK_RC(array_text("\"\"", &b, &doc, &a), 0);
    CHECK(strcmp(*(char *const *)a.data, "") == 0);
    h5a_array_clear(&a);
    mp_buf_free(&b);

    CHECK_RC(array_text("nil", &b, &doc, &a), H5A_E_BAD_REQUEST);
    CHECK(a.type == NULL);
    mp_buf_free(&b);
    static const uint8_t ext[] = {0xd4, 0x01, 0x00};
    CHECK_RC(array_from(ext, sizeof ext, &doc, &a), H5A_E_BAD_REQUEST);

    mp_buf_free(&b);
    b = (mp_buf){0};
    mp_put_str(&b, "a\0b", 3);
    CHECK_RC(array_from(b.data, b.len, &doc, &a), H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("NUL");
    mp_buf_free(&b);
    mp_doc_free(&doc);
}

/* Builds a plain nested list and checks its type string, shape and, for
 * int64/float64/bool, values (given as doubles). */
static void check_list(const char *text, const char *type, int ndim, const uint64_t *dims,
                       const double *values, size_t nvalues)
{
    mp_doc doc = {0};
    mp_buf b;
    h5a_array a;
    CHECK_RC(array_text(text, &b, &doc, &a), 0);
    if (a.type) {
        char s[32];
        dtype_str(a.type, s, sizeof s);
        if (strcmp(s, type) != 0) {
            check_failed++;
            fprintf(stderr, "%s: type %s, expected %s\n", text, s, type);
        } else {
            check_passed++;
        }
        CHECK(a.plain && a.ndim == ndim && a.owned && a.data == a.owned);
        for (int i = 0; i < ndim; i++)
            CHECK(a.dims[i] == dims[i]);
        CHECK(a.nbytes == nvalues * a.type->itemsize);
        for (size_t i = 0; i < nvalues; i++) {
            double v = 0;
            const uint8_t *p = (const uint8_t *)a.data + i * a.type->itemsize;
            if (a.type->kind == DT_FLOAT)
                memcpy(&v, p, 8);
            else if (a.type->kind == DT_INT) {
                int64_t x;
                memcpy(&x, p, 8);
                v = (double)x;
            } else if (a.type->kind == DT_UINT) {
                uint64_t x;
                memcpy(&x, p, 8);
                v = (double)x;
            } else if (a.type->kind == DT_BOOL) {
                v = *p;
            }
            CHECK(v == values[i]);
        }
        check_reencode(&a);
    }
    h5a_array_clear(&a);
    mp_buf_free(&b);
    mp_doc_free(&doc);
}

static void check_list_fails(const char *text, int code, const char *msg)
{
    mp_doc doc = {0};
    mp_buf b;
    h5a_array a;
    err[0] = '\0';
    CHECK_RC(array_text(text, &b, &doc, &a), code);
    CHECK_ERR_HAS(msg);
    CHECK(a.type == NULL && a.owned == NULL && a.data == NULL);
    mp_buf_free(&b);
    mp_doc_free(&doc);
}

static void test_array_lists(void)
{
    check_list("[[1, 2, 3], [4, 5, 6]]", "<i8", 2, (uint64_t[]){2, 3},
               (double[]){1, 2, 3, 4, 5, 6}, 6);
    check_list("[1, -2, 3]", "<i8", 1, (uint64_t[]){3}, (double[]){1, -2, 3}, 3);
    check_list("[1, 2.5]", "<f8", 1, (uint64_t[]){2}, (double[]){1, 2.5}, 2);
    check_list("[true, false]", "|b1", 1, (uint64_t[]){2}, (double[]){1, 0}, 2);
    check_list("[true, 2]", "<i8", 1, (uint64_t[]){2}, (double[]){1, 2}, 2);
    check_list("[true, -2]", "<i8", 1, (uint64_t[]){2}, (double[]){1, -2}, 2);
    check_list("[true, 0.5]", "<f8", 1, (uint64_t[]){2}, (double[]){1, 0.5}, 2);
    check_list("[[true], [false]]", "|b1", 2, (uint64_t[]){2, 1}, (double[]){1, 0}, 2);
    check_list("[9223372036854775808, 1]", "<u8", 1, (uint64_t[]){2},
               (double[]){9223372036854775808.0, 1}, 2);
    check_list("[18446744073709551615, true]", "<u8", 1, (uint64_t[]){2},
               (double[]){18446744073709551615.0, 1}, 2);
    check_list("[9223372036854775807, -9223372036854775808]", "<i8", 1, (uint64_t[]){2},
               (double[]){9223372036854775807.0, -9223372036854775808.0}, 2);
    /* a float anywhere makes everything float, even huge unsigned ints */
    check_list("[18446744073709551615, -1, 0.0]", "<f8", 1, (uint64_t[]){3},
               (double[]){18446744073709551615.0, -1, 0}, 3);
    check_list("[]", "<f8", 1, (uint64_t[]){0}, NULL, 0);
    check_list("[[], []]", "<f8", 2, (uint64_t[]){2, 0}, NULL, 0);
    check_list("[[[1], [2]], [[3], [4]], [[5], [6]]]", "<i8", 3, (uint64_t[]){3, 2, 1},
               (double[]){1, 2, 3, 4, 5, 6}, 6);
    check_list("[1e300, -inf]", "<f8", 1, (uint64_t[]){2}, (double[]){1e300, -INFINITY}, 2);

    check_list_fails("[9223372036854775808, -1]", H5A_E_BAD_REQUEST, "integers out of range");
    check_list_fails("[[1, 2], [3]]", H5A_E_BAD_REQUEST, "ragged nested list: [1] has 1 items");
    check_list_fails("[[1, 2], 3]", H5A_E_BAD_REQUEST, "ragged nested list: [1] is a int");
    check_list_fails("[1, [2]]", H5A_E_BAD_REQUEST, "ragged nested list: [1] is a list");
    check_list_fails("[[1, 2], []]", H5A_E_BAD_REQUEST, "ragged");
    check_list_fails("[[], [1]]", H5A_E_BAD_REQUEST, "ragged");
    check_list_fails("[[[1, 2]], [[3, 4, 5]]]", H5A_E_BAD_REQUEST, "[1][0] has 3 items");
    check_list_fails("[1, \"a\"]", H5A_E_BAD_REQUEST, "mixes strings and numbers");
    check_list_fails("[\"a\", true]", H5A_E_BAD_REQUEST, "mixes strings and numbers");
    check_list_fails("[\"a\", b\"b\"]", H5A_E_BAD_REQUEST, "mixes str and bin");
    check_list_fails("[1, nil]", H5A_E_BAD_REQUEST, "nil at [1]");
    check_list_fails("[[1], [nil]]", H5A_E_BAD_REQUEST, "nil at [1][0]");
    check_list_fails("[{\"nd\": false}]", H5A_E_BAD_REQUEST, "map at [0]");

    /* nesting: 32 levels are fine, 33 are too many for HDF5 */
    char deep[200] = "";
    for (int i = 0; i < 32; i++)
        strcat(deep, "[");
    strcat(deep, "1");
    for (int i = 0; i < 32; i++)
        strcat(deep, "]");
    uint64_t ones[32];
    for (int i = 0; i < 32; i++)
        ones[i] = 1;
    check_list(deep, "<i8", 32, ones, (double[]){1}, 1);
    memmove(deep + 1, deep, strlen(deep) + 1);
    deep[0] = '[';
    strcat(deep, "]");
    check_list_fails(deep, H5A_E_TOO_LARGE, "deeper than 32");
}

static void test_array_strings(void)
{
    mp_doc doc = {0};
    mp_buf b;
    h5a_array a;

    CHECK_RC(array_text("[[\"a\", \"bc\", \"\"], [\"d\", \"\xe2\x82\xac\", \"f\"]]", &b, &doc,
                        &a),
             0);
    CHECK(a.type->kind == DT_VLSTR && a.type->utf8 && a.ndim == 2 && a.dims[0] == 2 &&
          a.dims[1] == 3 && a.plain);
    CHECK(a.nbytes == 6 * sizeof(char *) && a.data == a.owned);
    char *const *s = a.data;
    CHECK(strcmp(s[0], "a") == 0 && strcmp(s[1], "bc") == 0 && strcmp(s[2], "") == 0 &&
          strcmp(s[3], "d") == 0 && strcmp(s[4], "\xe2\x82\xac") == 0 && strcmp(s[5], "f") == 0);
    /* one allocation: the characters live right after the pointers */
    CHECK((const char *)s[0] == (const char *)a.owned + 6 * sizeof(char *));
    {
        mp_buf enc = encode_full(&a);
        CHECK(enc.len == b.len && memcmp(enc.data, b.data, b.len) == 0);
        mp_buf_free(&enc);
    }
    check_reencode(&a);
    h5a_array_clear(&a);
    mp_buf_free(&b);

    CHECK_RC(array_text("[b\"x\", b\"yz\"]", &b, &doc, &a), 0);
    CHECK(a.type->kind == DT_VLSTR && !a.type->utf8 && a.ndim == 1 && a.dims[0] == 2);
    {
        mp_buf enc = encode_full(&a);
        CHECK(enc.len == b.len && memcmp(enc.data, b.data, b.len) == 0);
        mp_buf_free(&enc);
    }
    h5a_array_clear(&a);
    mp_buf_free(&b);

    b = (mp_buf){0};
    mp_put_array_header(&b, 2);
    mp_put_cstr(&b, "ok");
    mp_put_str(&b, "no\0pe", 5);
    CHECK_RC(array_from(b.data, b.len, &doc, &a), H5A_E_BAD_REQUEST);
    CHECK_ERR_HAS("string[1] contains a NUL byte");
    mp_buf_free(&b);

    /* what HDF5 hands back: a NULL element is an empty string */
    const char *elems[] = {"x", NULL, "yy", NULL};
    h5a_array v = {0};
    v.type = dtype_new(DT_VLSTR, sizeof(char *));
    v.type->utf8 = true;
    v.ndim = 2;
    v.dims[0] = 2;
    v.dims[1] = 2;
    v.data = elems;
    v.nbytes = sizeof elems;
    mp_buf enc = encode_full(&v);
    mp_buf want = build("[[\"x\", \"\"], [\"yy\", \"\"]]");
    CHECK(enc.len == want.len && memcmp(enc.data, want.data, enc.len) == 0);
    mp_buf_free(&enc);
    mp_buf_free(&want);
    v.type->utf8 = false;
    v.ndim = 0;
    v.data = &elems[1];
    v.nbytes = sizeof(char *);
    enc = encode_full(&v);
    static const uint8_t empty_bin[] = {0xc4, 0x00};
    CHECK(bytes_eq(&enc, empty_bin, sizeof empty_bin));
    mp_buf_free(&enc);
    /* zero-size dimensions give empty lists */
    v.ndim = 2;
    v.dims[0] = 2;
    v.dims[1] = 0;
    v.nbytes = 0;
    enc = encode_full(&v);
    want = build("[[], []]");
    CHECK(enc.len == want.len && memcmp(enc.data, want.data, enc.len) == 0);
    mp_buf_free(&enc);
    mp_buf_free(&want);
    dtype_free(v.type);

    /* a struct holding a vlen string cannot be written; the buffer is left
     * as it was */
    h5a_array st = {0};
    st.type = dtype_new(DT_STRUCT, sizeof(char *));
    dtype_add_field(st.type, "s", 0, dtype_new(DT_VLSTR, sizeof(char *)), 0, NULL);
    st.ndim = 1;
    st.dims[0] = 1;
    st.data = elems;
    st.nbytes = sizeof(char *);
    mp_buf out = {0};
    mp_put_nil(&out);
    bool follows = true;
    CHECK_RC(h5a_array_encode(&out, &st, &follows, err, sizeof err), H5A_E_UNSUPPORTED_TYPE);
    CHECK(!follows && out.len == 1);
    st.ndim = 0;
    CHECK_RC(h5a_array_encode(&out, &st, &follows, err, sizeof err), H5A_E_UNSUPPORTED_TYPE);
    CHECK(!follows && out.len == 1);
    mp_buf_free(&out);
    dtype_free(st.type);
    mp_doc_free(&doc);
}

static void test_array_encode_form(void)
{
    /* the nd:true map: keys as bin, in order, data last with only its header */
    h5a_array a = {0};
    a.type = dtype_new(DT_INT, 2);
    a.ndim = 1;
    a.dims[0] = 2;
    const int16_t vals[2] = {7, -7};
    a.data = vals;
    a.nbytes = sizeof vals;
    mp_buf b = {0};
    bool follows = false;
    CHECK_RC(h5a_array_encode(&b, &a, &follows, err, sizeof err), 0);
    CHECK(follows);
    mp_buf want = {0};
    mp_put_map_header(&want, 5);
    mp_put_bin(&want, "nd", 2);
    mp_put_bool(&want, true);
    mp_put_bin(&want, "type", 4);
    mp_put_cstr(&want, "<i2");
    mp_put_bin(&want, "kind", 4);
    mp_put_bin(&want, "", 0);
    mp_put_bin(&want, "shape", 5);
    mp_put_array_header(&want, 1);
    mp_put_uint(&want, 2);
    mp_put_bin(&want, "data", 4);
    mp_put_bin_header(&want, 4);
    CHECK(b.len == want.len && memcmp(b.data, want.data, b.len) == 0);
    mp_buf_free(&b);
    mp_buf_free(&want);

    /* scalars copy their bytes in */
    a.ndim = 0;
    a.nbytes = 2;
    CHECK_RC(h5a_array_encode(&b, &a, &follows, err, sizeof err), 0);
    CHECK(!follows);
    mp_put_map_header(&want, 3);
    mp_put_bin(&want, "nd", 2);
    mp_put_bool(&want, false);
    mp_put_bin(&want, "type", 4);
    mp_put_cstr(&want, "<i2");
    mp_put_bin(&want, "data", 4);
    mp_put_bin(&want, vals, 2);
    CHECK(b.len == want.len && memcmp(b.data, want.data, b.len) == 0);
    mp_buf_free(&b);
    mp_buf_free(&want);

    /* data that does not match the shape is the caller's bug, caught */
    a.ndim = 1;
    a.nbytes = 3;
    CHECK_RC(h5a_array_encode(&b, &a, &follows, err, sizeof err), H5A_E_INTERNAL);
    a.nbytes = 6;
    CHECK_RC(h5a_array_encode(&b, &a, &follows, err, sizeof err), H5A_E_INTERNAL);
    CHECK(!follows && b.len == 0);
    mp_buf_free(&b);
    dtype_free(a.type);

    CHECK(h5a_nelems(0, NULL, &(uint64_t){0}));
    uint64_t n = 99;
    CHECK(h5a_nelems(2, (uint64_t[]){3, 0}, &n) && n == 0);
    CHECK(h5a_nelems(2, (uint64_t[]){1ull << 31, 1ull << 31}, &n) && n == 1ull << 62);
    CHECK(!h5a_nelems(2, (uint64_t[]){1ull << 32, 1ull << 31}, &n));
    CHECK(!h5a_nelems(1, (uint64_t[]){UINT64_MAX}, &n));
    CHECK(h5a_nelems(1, (uint64_t[]){INT64_MAX}, &n) && n == INT64_MAX);
    CHECK(h5a_nelems(3, (uint64_t[]){1ull << 40, 1ull << 40, 0}, &n) && n == 0);
}

static const check_test tests[] = {
    CHECK_TEST(test_errors),
    CHECK_TEST(test_mp_uints),
    CHECK_TEST(test_mp_ints),
    CHECK_TEST(test_mp_scalars),
    CHECK_TEST(test_mp_raw),
    CHECK_TEST(test_mp_containers),
    CHECK_TEST(test_mp_foreign),
    CHECK_TEST(test_mp_errors),
    CHECK_TEST(test_mp_map_get),
    CHECK_TEST(test_mp_buf),
    CHECK_TEST(test_mp_map_end),
    CHECK_TEST(test_dtype_simple),
    CHECK_TEST(test_dtype_str_errors),
    CHECK_TEST(test_dtype_struct),
    CHECK_TEST(test_dtype_struct_errors),
    CHECK_TEST(test_array_numpy),
    CHECK_TEST(test_array_numpy_errors),
    CHECK_TEST(test_array_complex),
    CHECK_TEST(test_array_plain_scalars),
    CHECK_TEST(test_array_lists),
    CHECK_TEST(test_array_strings),
    CHECK_TEST(test_array_encode_form),
};

int main(int argc, char **argv)
{
    check_select(argc, argv, tests, CHECK_COUNT(tests));
    check_run();
    return check_summary();
}
