/* Types, shapes and kinds as replies describe them (engine_describe.h). */
#include "server/engine_describe.h"

#include "server/h5types.h"

const char *h5a_otype_name(H5O_type_t t)
{
    switch (t) {
    case H5O_TYPE_GROUP: return "group";
    case H5O_TYPE_DATASET: return "dataset";
    case H5O_TYPE_NAMED_DATATYPE: return "datatype";
    default: return "unknown";
    }
}

const char *h5a_class_name(H5T_class_t c)
{
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_TIME: return "time";
    case H5T_STRING: return "string";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "vlen";
    case H5T_ARRAY: return "array";
    default: return "unknown";
    }
}

void h5a_put_dtype(mp_buf *b, hid_t type)
{
    dtype *dt = NULL;
    char why[256];
    if (h5t_to_dtype(type, &dt, why, sizeof why)) {
        H5Eclear2(H5E_DEFAULT);
        mp_put_nil(b);
        return;
    }
    if (dt->kind == DT_VLSTR) {
        mp_put_cstr(b, dt->utf8 ? "str" : "bytes");
    } else {
        size_t mark = b->len;
        if (dtype_encode(b, dt) && !b->oom) {
            b->len = mark;
            mp_put_nil(b);
        }
    }
    dtype_free(dt);
}

void h5a_put_dims(mp_buf *b, int n, const hsize_t *d, bool max)
{
    mp_put_array_header(b, (size_t)n);
    for (int i = 0; i < n; i++) {
        if (max && d[i] == H5S_UNLIMITED) mp_put_nil(b);
        else mp_put_uint(b, d[i]);
    }
}

void h5a_put_shapes(mp_buf *b, hid_t space)
{
    hsize_t dims[H5S_MAX_RANK], max[H5S_MAX_RANK];
    int n = H5Sget_simple_extent_ndims(space);
    bool null = H5Sget_simple_extent_type(space) == H5S_NULL || n < 0 || n > H5S_MAX_RANK;
    if (!null) H5Sget_simple_extent_dims(space, dims, max);
    mp_put_cstr(b, "shape");
    if (null) mp_put_nil(b);
    else h5a_put_dims(b, n, dims, false);
    mp_put_cstr(b, "maxshape");
    if (null) mp_put_nil(b);
    else h5a_put_dims(b, n, max, true);
}
