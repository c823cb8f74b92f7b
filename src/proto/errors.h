/* One error convention for the whole project.
 *
 * Functions return 0 on success and a negative H5A_E* code on failure; the
 * human-readable text goes into a caller-supplied buffer (char *err, size_t
 * errlen). On the wire the same codes travel as stable strings
 * ("NOT_FOUND", ...), see docs/protocol.md. */
#ifndef H5A_ERRORS_H
#define H5A_ERRORS_H

/* X(name, wire string) in a fixed order: the order gives the numeric code,
 * so append new codes at the end and never reorder. */
#define H5A_ERROR_LIST(X)                                                      \
    X(BAD_REQUEST)      /* malformed request or argument */                    \
    X(BAD_PATH)         /* path empty, relative, empty component, root misuse */\
    X(UNKNOWN_OP)       /* "op" names no operation */                          \
    X(PROTOCOL_ERROR)   /* frame or MessagePack broken (bad frame: closes) */  \
    X(TOO_LARGE)        /* frame or message over a configured limit */         \
    X(NOT_FOUND)        /* no object at path */                                \
    X(EXISTS)           /* a different kind of object is already at path */    \
    X(NOT_A_GROUP)      /* a dataset stands where a group is needed */         \
    X(NOT_A_DATASET)    /* a group stands where a dataset is needed */         \
    X(TYPE_MISMATCH)    /* data type does not fit the dataset */               \
    X(SHAPE_MISMATCH)   /* data shape does not fit the dataset */              \
    X(OUT_OF_RANGE)     /* index outside the dataset */                        \
    X(UNSUPPORTED_TYPE) /* type has no NumPy / HDF5 mapping here */            \
    X(HDF5_ERROR)       /* libhdf5 failed; message carries its error stack */  \
    X(SHUTTING_DOWN)    /* server is stopping and takes no new work */         \
    X(INTERNAL)         /* out of memory or a bug */                           \
    X(UNAUTHENTICATED)  /* no token, or a bad one (auth_file, protected mode) */ \
    X(PERMISSION_DENIED) /* the token's role or prefixes forbid the request */   \
    X(NO_SPACE)         /* the disk is full: changes refused, nothing applied */ \
    X(SEQ_TOO_OLD)      /* (client_id, seq) below the remembered window: not applied */ \
    X(WRONG_NODE)       /* [cluster]: another node owns the file; nothing applied */

enum {
    H5A_OK = 0,
#define H5A_X_ENUM(name) H5A_E_##name##_IDX,
    H5A_ERROR_LIST(H5A_X_ENUM)
#undef H5A_X_ENUM
    H5A_E_COUNT_PLUS_ONE
};

/* Negative codes: H5A_E_NOT_FOUND etc. */
#define H5A_ERR(name) (-(int)H5A_E_##name##_IDX)
#define H5A_E_BAD_REQUEST H5A_ERR(BAD_REQUEST)
#define H5A_E_BAD_PATH H5A_ERR(BAD_PATH)
#define H5A_E_UNKNOWN_OP H5A_ERR(UNKNOWN_OP)
#define H5A_E_PROTOCOL_ERROR H5A_ERR(PROTOCOL_ERROR)
#define H5A_E_TOO_LARGE H5A_ERR(TOO_LARGE)
#define H5A_E_NOT_FOUND H5A_ERR(NOT_FOUND)
#define H5A_E_EXISTS H5A_ERR(EXISTS)
#define H5A_E_NOT_A_GROUP H5A_ERR(NOT_A_GROUP)
#define H5A_E_NOT_A_DATASET H5A_ERR(NOT_A_DATASET)
#define H5A_E_TYPE_MISMATCH H5A_ERR(TYPE_MISMATCH)
#define H5A_E_SHAPE_MISMATCH H5A_ERR(SHAPE_MISMATCH)
#define H5A_E_OUT_OF_RANGE H5A_ERR(OUT_OF_RANGE)
#define H5A_E_UNSUPPORTED_TYPE H5A_ERR(UNSUPPORTED_TYPE)
#define H5A_E_HDF5_ERROR H5A_ERR(HDF5_ERROR)
#define H5A_E_SHUTTING_DOWN H5A_ERR(SHUTTING_DOWN)
#define H5A_E_INTERNAL H5A_ERR(INTERNAL)
#define H5A_E_UNAUTHENTICATED H5A_ERR(UNAUTHENTICATED)
#define H5A_E_PERMISSION_DENIED H5A_ERR(PERMISSION_DENIED)
#define H5A_E_NO_SPACE H5A_ERR(NO_SPACE)
#define H5A_E_SEQ_TOO_OLD H5A_ERR(SEQ_TOO_OLD)
#define H5A_E_WRONG_NODE H5A_ERR(WRONG_NODE)

/* "NOT_FOUND" for H5A_E_NOT_FOUND; "INTERNAL" for anything unknown. */
const char *h5a_strerror_code(int code);

/* printf into err (if non-NULL) and return code: `return h5a_fail(err, n, H5A_E_X, "...", ...)` */
int h5a_fail(char *err, size_t errlen, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

#endif
