/* h5types: every dtype we map goes to HDF5 and back unchanged, the HDF5
 * side has the properties h5py gives it, and types with no NumPy form are
 * refused with UNSUPPORTED_TYPE. Needs only libhdf5: the comparison with
 * h5py itself was done once by hand, the properties checked here are the
 * ones it showed to matter. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/dtype.h"
#include "proto/errors.h"
#include "server/h5types.h"

#include "../check.h"

static char err[512];

static dtype *parse(const char *s)
{
    dtype *t = NULL;
    int rc = dtype_parse_str(s, strlen(s), &t, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "dtype_parse_str(%s): %s\n", s, err);
        exit(2);
    }
    return t;
}

static dtype *vlstr(bool utf8)
{
    dtype *t = dtype_new(DT_VLSTR, sizeof(char *));
    t->utf8 = utf8;
    return t;
}

static void add(dtype *st, const char *name, size_t off, dtype *ft, int ndim, const uint64_t *dims)
{
    if (dtype_add_field(st, name, off, ft, ndim, dims) != 0) {
        fprintf(stderr, "dtype_add_field(%s) failed\n", name);
        exit(2);
    }
}

/* h5t_to_dtype(h5t_from_dtype(t)) == t; returns the HDF5 type for more
 * checks (caller closes) or -1. */
static hid_t roundtrip(const dtype *t)
{
    hid_t id = h5t_from_dtype(t, err, sizeof err);
    CHECK(id >= 0);
    if (id < 0) {
        fprintf(stderr, "  from_dtype: %s\n", err);
        return -1;
    }
    dtype *back = NULL;
    int rc = h5t_to_dtype(id, &back, err, sizeof err);
    CHECK(rc == 0);
    if (rc != 0)
        fprintf(stderr, "  to_dtype: %s\n", err);
    CHECK(back && dtype_equal(t, back));
    dtype_free(back);
    return id;
}

static bool has_member(hid_t cmp, unsigned i, const char *name, size_t off, hid_t want_type)
{
    char *n = H5Tget_member_name(cmp, i);
    hid_t mt = H5Tget_member_type(cmp, i);
    bool ok = n && strcmp(n, name) == 0 && H5Tget_member_offset(cmp, i) == off &&
              (want_type < 0 || H5Tequal(mt, want_type) > 0);
    H5free_memory(n);
    H5Tclose(mt);
    return ok;
}

static void test_ints(void)
{
    static const struct {
        const char *s;
        hid_t *want; /* address: the H5T_ macros are not constant expressions */
    } cases[] = {
        {"|i1", &H5T_STD_I8LE_g},   {"|u1", &H5T_STD_U8LE_g},   {"<i2", &H5T_STD_I16LE_g},
        {">i2", &H5T_STD_I16BE_g},  {"<u2", &H5T_STD_U16LE_g},  {">u2", &H5T_STD_U16BE_g},
        {"<i4", &H5T_STD_I32LE_g},  {">i4", &H5T_STD_I32BE_g},  {"<u4", &H5T_STD_U32LE_g},
        {">u4", &H5T_STD_U32BE_g},  {"<i8", &H5T_STD_I64LE_g},  {">i8", &H5T_STD_I64BE_g},
        {"<u8", &H5T_STD_U64LE_g},  {">u8", &H5T_STD_U64BE_g},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_detail = cases[i].s;
        dtype *t = parse(cases[i].s);
        hid_t id = roundtrip(t);
        CHECK(H5Tget_class(id) == H5T_INTEGER);
        CHECK(H5Tequal(id, *cases[i].want) > 0);
        CHECK(H5Tget_size(id) == t->itemsize);
        CHECK(H5Tget_sign(id) == (t->kind == DT_INT ? H5T_SGN_2 : H5T_SGN_NONE));
        CHECK(h5t_is_numeric(id));
        char buf[32];
        dtype *back = NULL;
        h5t_to_dtype(id, &back, err, sizeof err);
        dtype_str(back, buf, sizeof buf);
        CHECK(strcmp(buf, cases[i].s) == 0);
        dtype_free(back);
        dtype_free(t);
        H5Tclose(id);
    }
    /* numpy calls a 1-byte type's order '|'; h5py then uses the native
     * (LE) table, so '>i1' is still STD_I8LE. */
    check_detail = "1-byte big-endian";
    dtype *t = parse("|i1");
    t->order = '>';
    hid_t id = h5t_from_dtype(t, err, sizeof err);
    CHECK(H5Tequal(id, H5T_STD_I8LE) > 0);
    H5Tclose(id);
    dtype_free(t);
}

static void test_bool(void)
{
    check_detail = "|b1";
    dtype *t = parse("|b1");
    hid_t id = roundtrip(t);
    CHECK(H5Tget_class(id) == H5T_ENUM);
    CHECK(H5Tget_size(id) == 1);
    hid_t base = H5Tget_super(id);
    CHECK(H5Tequal(base, H5T_NATIVE_INT8) > 0);
    H5Tclose(base);
    CHECK(H5Tget_nmembers(id) == 2);
    signed char v = -1;
    char *n0 = H5Tget_member_name(id, 0), *n1 = H5Tget_member_name(id, 1);
    CHECK(n0 && strcmp(n0, "FALSE") == 0);
    CHECK(n1 && strcmp(n1, "TRUE") == 0);
    H5free_memory(n0);
    H5free_memory(n1);
    CHECK(H5Tget_member_value(id, 0, &v) >= 0 && v == 0);
    CHECK(H5Tget_member_value(id, 1, &v) >= 0 && v == 1);
    CHECK(!h5t_is_numeric(id));
    H5Tclose(id);
    dtype_free(t);
}

static void test_floats(void)
{
    static const struct {
        const char *s;
        hid_t *want;
    } cases[] = {{"<f4", &H5T_IEEE_F32LE_g}, {">f4", &H5T_IEEE_F32BE_g},
                 {"<f8", &H5T_IEEE_F64LE_g}, {">f8", &H5T_IEEE_F64BE_g}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_detail = cases[i].s;
        dtype *t = parse(cases[i].s);
        hid_t id = roundtrip(t);
        CHECK(H5Tequal(id, *cases[i].want) > 0);
        CHECK(h5t_is_numeric(id));
        H5Tclose(id);
        dtype_free(t);
    }
    const char *halves[] = {"<f2", ">f2"};
    for (int i = 0; i < 2; i++) {
        check_detail = halves[i];
        dtype *t = parse(halves[i]);
        hid_t id = roundtrip(t);
        size_t spos, epos, esize, mpos, msize;
        CHECK(H5Tget_class(id) == H5T_FLOAT);
        CHECK(H5Tget_size(id) == 2);
        CHECK(H5Tget_precision(id) == 16);
        CHECK(H5Tget_offset(id) == 0);
        CHECK(H5Tget_fields(id, &spos, &epos, &esize, &mpos, &msize) >= 0);
        CHECK(spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10);
        CHECK(H5Tget_ebias(id) == 15);
        CHECK(H5Tget_norm(id) == H5T_NORM_IMPLIED);
        CHECK(H5Tget_order(id) == (i == 0 ? H5T_ORDER_LE : H5T_ORDER_BE));
        H5Tclose(id);
        dtype_free(t);
    }
}

static void test_complex(void)
{
    static const struct {
        const char *s;
        hid_t *part;
    } cases[] = {{"<c8", &H5T_IEEE_F32LE_g}, {">c8", &H5T_IEEE_F32BE_g},
                 {"<c16", &H5T_IEEE_F64LE_g}, {">c16", &H5T_IEEE_F64BE_g}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_detail = cases[i].s;
        dtype *t = parse(cases[i].s);
        hid_t id = roundtrip(t);
        CHECK(H5Tget_class(id) == H5T_COMPOUND);
        CHECK(H5Tget_size(id) == t->itemsize);
        CHECK(H5Tget_nmembers(id) == 2);
        CHECK(has_member(id, 0, "r", 0, *cases[i].part));
        CHECK(has_member(id, 1, "i", t->itemsize / 2, *cases[i].part));
        CHECK(!h5t_is_numeric(id));
        H5Tclose(id);
        dtype_free(t);
    }
}

static void test_strings(void)
{
    const char *fixed[] = {"|S1", "|S7"};
    for (int i = 0; i < 2; i++) {
        check_detail = fixed[i];
        dtype *t = parse(fixed[i]);
        hid_t id = roundtrip(t);
        CHECK(H5Tget_class(id) == H5T_STRING);
        CHECK(H5Tis_variable_str(id) == 0);
        CHECK(H5Tget_size(id) == t->itemsize);
        CHECK(H5Tget_strpad(id) == H5T_STR_NULLPAD);
        CHECK(H5Tget_cset(id) == H5T_CSET_ASCII);
        H5Tclose(id);
        dtype_free(t);
    }
    for (int u = 0; u < 2; u++) {
        check_detail = u ? "vlen utf8" : "vlen ascii";
        dtype *t = vlstr(u);
        hid_t id = roundtrip(t);
        CHECK(H5Tget_class(id) == H5T_STRING);
        CHECK(H5Tis_variable_str(id) > 0);
        CHECK(H5Tget_strpad(id) == H5T_STR_NULLTERM);
        CHECK(H5Tget_cset(id) == (u ? H5T_CSET_UTF8 : H5T_CSET_ASCII));
        H5Tclose(id);
        dtype_free(t);
    }
    /* Files from other tools: any padding or cset is still just bytes. */
    check_detail = "space-padded utf8 S5";
    hid_t s = H5Tcopy(H5T_FORTRAN_S1);
    H5Tset_size(s, 5);
    H5Tset_cset(s, H5T_CSET_UTF8);
    dtype *got = NULL;
    CHECK(h5t_to_dtype(s, &got, err, sizeof err) == 0);
    CHECK(got && got->kind == DT_BYTES && got->itemsize == 5);
    dtype_free(got);
    H5Tclose(s);
}

static void test_void(void)
{
    check_detail = "|V8";
    dtype *t = parse("|V8");
    hid_t id = roundtrip(t);
    CHECK(H5Tget_class(id) == H5T_OPAQUE);
    CHECK(H5Tget_size(id) == 8);
    char *tag = H5Tget_tag(id);
    CHECK(tag && tag[0] == '\0');
    H5free_memory(tag);
    H5Tclose(id);
    dtype_free(t);
}

static void test_structs(void)
{
    /* Padding between and after fields. */
    check_detail = "struct with padding";
    dtype *st = dtype_new(DT_STRUCT, 24);
    add(st, "a", 0, parse("<i2"), 0, NULL);
    add(st, "b", 8, parse(">f8"), 0, NULL);
    add(st, "flag", 16, parse("|b1"), 0, NULL);
    add(st, "name", 17, parse("|S3"), 0, NULL);
    hid_t id = roundtrip(st);
    CHECK(H5Tget_class(id) == H5T_COMPOUND);
    CHECK(H5Tget_size(id) == 24);
    CHECK(H5Tget_nmembers(id) == 4);
    CHECK(has_member(id, 0, "a", 0, H5T_STD_I16LE));
    CHECK(has_member(id, 1, "b", 8, H5T_IEEE_F64BE));
    CHECK(has_member(id, 2, "flag", 16, -1));
    CHECK(has_member(id, 3, "name", 17, -1));
    H5Tclose(id);
    dtype_free(st);

    /* Subarray fields become HDF5 array members. */
    check_detail = "struct with subarrays";
    st = dtype_new(DT_STRUCT, 40);
    uint64_t d23[] = {2, 3}, d4[] = {4};
    add(st, "id", 0, parse("<u4"), 0, NULL);
    add(st, "m", 4, parse("<f4"), 2, d23);
    add(st, "c", 28, parse("|u1"), 1, d4);
    id = roundtrip(st);
    hid_t mt = H5Tget_member_type(id, 1);
    hsize_t hd[2] = {0, 0};
    CHECK(H5Tget_class(mt) == H5T_ARRAY);
    CHECK(H5Tget_array_ndims(mt) == 2);
    CHECK(H5Tget_array_dims2(mt, hd) == 2 && hd[0] == 2 && hd[1] == 3);
    hid_t base = H5Tget_super(mt);
    CHECK(H5Tequal(base, H5T_IEEE_F32LE) > 0);
    H5Tclose(base);
    H5Tclose(mt);
    CHECK(H5Tget_size(id) == 40);
    H5Tclose(id);
    dtype_free(st);

    /* Nested structs nest; complex and bool fields inside them keep their
     * h5py form; an array of structs is an array member of a compound. */
    check_detail = "nested structs";
    dtype *inner = dtype_new(DT_STRUCT, 16);
    add(inner, "p", 0, parse(">i2"), 0, NULL);
    add(inner, "q", 4, parse("<c8"), 0, NULL);
    add(inner, "ok", 12, parse("|b1"), 0, NULL);
    uint64_t d2[] = {2};
    st = dtype_new(DT_STRUCT, 56);
    add(st, "x", 0, parse("|u1"), 0, NULL);
    add(st, "s", 4, dtype_copy(inner), 0, NULL);
    add(st, "many", 20, dtype_copy(inner), 1, d2);
    add(st, "raw", 52, parse("|V4"), 0, NULL);
    id = roundtrip(st);
    CHECK(H5Tget_nmembers(id) == 4);
    mt = H5Tget_member_type(id, 1);
    CHECK(H5Tget_class(mt) == H5T_COMPOUND && H5Tget_size(mt) == 16);
    hid_t q = H5Tget_member_type(mt, 1);
    CHECK(H5Tget_class(q) == H5T_COMPOUND && H5Tget_size(q) == 8);
    H5Tclose(q);
    H5Tclose(mt);
    mt = H5Tget_member_type(id, 2);
    CHECK(H5Tget_class(mt) == H5T_ARRAY);
    base = H5Tget_super(mt);
    CHECK(H5Tget_class(base) == H5T_COMPOUND);
    H5Tclose(base);
    H5Tclose(mt);
    H5Tclose(id);
    dtype_free(st);
    dtype_free(inner);
}

/* Compounds written by other tools: members in any order, arrays of arrays. */
static void test_foreign_compounds(void)
{
    check_detail = "members inserted out of offset order";
    hid_t c = H5Tcreate(H5T_COMPOUND, 16);
    H5Tinsert(c, "late", 8, H5T_IEEE_F64LE);
    H5Tinsert(c, "early", 0, H5T_STD_I32BE);
    dtype *got = NULL;
    CHECK(h5t_to_dtype(c, &got, err, sizeof err) == 0);
    CHECK(got && got->kind == DT_STRUCT && got->nfields == 2 && got->itemsize == 16);
    CHECK(got && got->nfields == 2 && strcmp(got->fields[0].name, "early") == 0 &&
          got->fields[0].offset == 0 && got->fields[1].offset == 8);
    dtype_free(got);
    H5Tclose(c);

    check_detail = "array of array member";
    hsize_t d3[] = {3}, d2[] = {2};
    hid_t a1 = H5Tarray_create2(H5T_STD_I16LE, 1, d2);
    hid_t a2 = H5Tarray_create2(a1, 1, d3);
    c = H5Tcreate(H5T_COMPOUND, 12);
    H5Tinsert(c, "aa", 0, a2);
    CHECK(h5t_to_dtype(c, &got, err, sizeof err) == 0);
    CHECK(got && got->nfields == 1 && got->fields[0].ndim == 2 && got->fields[0].dims[0] == 3 &&
          got->fields[0].dims[1] == 2);
    dtype_free(got);
    H5Tclose(c);
    H5Tclose(a2);
    H5Tclose(a1);

    /* Only the exact h5py layout is complex; anything else stays a struct. */
    check_detail = "r/i swapped is not complex";
    c = H5Tcreate(H5T_COMPOUND, 8);
    H5Tinsert(c, "i", 0, H5T_IEEE_F32LE);
    H5Tinsert(c, "r", 4, H5T_IEEE_F32LE);
    CHECK(h5t_to_dtype(c, &got, err, sizeof err) == 0);
    CHECK(got && got->kind == DT_STRUCT && got->nfields == 2);
    dtype_free(got);
    H5Tclose(c);

    check_detail = "r/i of different types is not complex";
    c = H5Tcreate(H5T_COMPOUND, 8);
    H5Tinsert(c, "r", 0, H5T_IEEE_F32LE);
    H5Tinsert(c, "i", 4, H5T_IEEE_F32BE);
    CHECK(h5t_to_dtype(c, &got, err, sizeof err) == 0);
    CHECK(got && got->kind == DT_STRUCT);
    dtype_free(got);
    H5Tclose(c);

    check_detail = "r/i with trailing padding is not complex";
    c = H5Tcreate(H5T_COMPOUND, 12);
    H5Tinsert(c, "r", 0, H5T_IEEE_F32LE);
    H5Tinsert(c, "i", 4, H5T_IEEE_F32LE);
    CHECK(h5t_to_dtype(c, &got, err, sizeof err) == 0);
    CHECK(got && got->kind == DT_STRUCT && got->itemsize == 12);
    dtype_free(got);
    H5Tclose(c);
}

static void test_enums(void)
{
    check_detail = "int16 enum reads as its base";
    hid_t e = H5Tenum_create(H5T_STD_I16BE);
    short v = 0;
    H5Tenum_insert(e, "A", &v);
    v = 7;
    H5Tenum_insert(e, "B", &v);
    dtype *got = NULL;
    CHECK(h5t_to_dtype(e, &got, err, sizeof err) == 0);
    CHECK(got && got->kind == DT_INT && got->itemsize == 2 && got->order == '>');
    CHECK(!h5t_is_numeric(e));
    dtype_free(got);
    H5Tclose(e);

    /* h5py would call this bool, but its bytes are 4 wide. */
    check_detail = "FALSE/TRUE on int32 is not bool";
    e = H5Tenum_create(H5T_STD_I32LE);
    int iv = 0;
    H5Tenum_insert(e, "FALSE", &iv);
    iv = 1;
    H5Tenum_insert(e, "TRUE", &iv);
    CHECK(h5t_to_dtype(e, &got, err, sizeof err) == 0);
    CHECK(got && got->kind == DT_INT && got->itemsize == 4);
    dtype_free(got);
    H5Tclose(e);

    check_detail = "FALSE/TRUE on uint8 is bool";
    e = H5Tenum_create(H5T_STD_U8LE);
    unsigned char uv = 1;
    H5Tenum_insert(e, "TRUE", &uv);
    uv = 0;
    H5Tenum_insert(e, "FALSE", &uv);
    CHECK(h5t_to_dtype(e, &got, err, sizeof err) == 0);
    CHECK(got && got->kind == DT_BOOL);
    dtype_free(got);
    H5Tclose(e);

    check_detail = "FALSE=1 TRUE=0 is not bool";
    e = H5Tenum_create(H5T_NATIVE_INT8);
    signed char sv = 1;
    H5Tenum_insert(e, "FALSE", &sv);
    sv = 0;
    H5Tenum_insert(e, "TRUE", &sv);
    CHECK(h5t_to_dtype(e, &got, err, sizeof err) == 0);
    CHECK(got && got->kind == DT_INT && got->itemsize == 1);
    dtype_free(got);
    H5Tclose(e);
}

static void expect_unsupported(const char *what, hid_t type, const char *needle)
{
    check_detail = what;
    dtype *got = (dtype *)1;
    err[0] = '\0';
    int rc = h5t_to_dtype(type, &got, err, sizeof err);
    CHECK(rc == H5A_E_UNSUPPORTED_TYPE);
    CHECK(got == NULL);
    CHECK(strstr(err, needle) != NULL);
    if (!strstr(err, needle))
        fprintf(stderr, "  message was: %s\n", err);
}

static void test_unsupported(void)
{
    expect_unsupported("object reference", H5T_STD_REF_OBJ, "H5T_REFERENCE");
    expect_unsupported("region reference", H5T_STD_REF_DSETREG, "H5T_REFERENCE");
    expect_unsupported("bitfield", H5T_STD_B8LE, "H5T_BITFIELD");
    expect_unsupported("time", H5T_UNIX_D32LE, "H5T_TIME");

    hid_t vl = H5Tvlen_create(H5T_STD_I32LE);
    expect_unsupported("vlen sequence", vl, "H5T_VLEN");
    H5Tclose(vl);

    hsize_t d[] = {3};
    hid_t arr = H5Tarray_create2(H5T_STD_I32LE, 1, d);
    expect_unsupported("top-level array", arr, "H5T_ARRAY");
    H5Tclose(arr);

    hid_t s = H5Tcopy(H5T_C_S1);
    H5Tset_size(s, H5T_VARIABLE);
    hid_t c = H5Tcreate(H5T_COMPOUND, 16);
    H5Tinsert(c, "n", 0, H5T_STD_I32LE);
    H5Tinsert(c, "s", 8, s);
    expect_unsupported("vlen string member", c, "'s'");
    H5Tclose(c);
    H5Tclose(s);

    /* A quad float exists in h5py (IEEE_F128) but numpy has no portable f16. */
    hid_t q = H5Tcopy(H5T_IEEE_F64BE);
    H5Tset_size(q, 16);
    H5Tset_precision(q, 128);
    H5Tset_fields(q, 127, 112, 15, 0, 112);
    H5Tset_ebias(q, 16383);
    expect_unsupported("128-bit float", q, "H5T_FLOAT");
    H5Tclose(q);

    hid_t odd = H5Tcopy(H5T_STD_I16LE);
    H5Tset_precision(odd, 12);
    expect_unsupported("12-bit integer", odd, "H5T_INTEGER");
    H5Tclose(odd);

    hid_t vax = H5Tcopy(H5T_VAX_F32);
    expect_unsupported("VAX float", vax, "H5T_FLOAT");
    H5Tclose(vax);

    hid_t ns = H5Tcreate(H5T_COMPOUND, 16);
    H5Tinsert(ns, "inner", 0, vl = H5Tvlen_create(H5T_STD_U8LE));
    expect_unsupported("vlen inside compound", ns, "H5T_VLEN");
    H5Tclose(vl);
    H5Tclose(ns);
}

static void test_from_errors(void)
{
    check_detail = "vlen string field";
    dtype *st = dtype_new(DT_STRUCT, 16);
    add(st, "a", 0, parse("<i4"), 0, NULL);
    add(st, "s", 8, vlstr(true), 0, NULL);
    err[0] = '\0';
    CHECK(h5t_from_dtype(st, err, sizeof err) == H5I_INVALID_HID);
    CHECK(strstr(err, "'s'") != NULL);
    dtype_free(st);

    check_detail = "field past the end";
    st = dtype_new(DT_STRUCT, 4);
    add(st, "a", 0, parse("<i8"), 0, NULL);
    err[0] = '\0';
    CHECK(h5t_from_dtype(st, err, sizeof err) == H5I_INVALID_HID);
    CHECK(strstr(err, "'a'") != NULL);
    dtype_free(st);

    check_detail = "struct without fields";
    st = dtype_new(DT_STRUCT, 4);
    CHECK(h5t_from_dtype(st, err, sizeof err) == H5I_INVALID_HID);
    dtype_free(st);

    check_detail = "odd float size";
    dtype *t = dtype_new(DT_FLOAT, 16);
    CHECK(h5t_from_dtype(t, err, sizeof err) == H5I_INVALID_HID);
    dtype_free(t);
}

static const check_test tests[] = {
    CHECK_TEST(test_ints),
    CHECK_TEST(test_bool),
    CHECK_TEST(test_floats),
    CHECK_TEST(test_complex),
    CHECK_TEST(test_strings),
    CHECK_TEST(test_void),
    CHECK_TEST(test_structs),
    CHECK_TEST(test_foreign_compounds),
    CHECK_TEST(test_enums),
    CHECK_TEST(test_unsupported),
    CHECK_TEST(test_from_errors),
};

int main(int argc, char **argv)
{
    check_select(argc, argv, tests, CHECK_COUNT(tests));
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    check_run();
    return check_summary();
}
