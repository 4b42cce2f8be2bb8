/* The native tier of the OTLP/JSON line reader: Collector lines of spans and logs -> column buffers.
 *
 * One call scans a block of lines. A line it fully understands becomes rows in the span and log
 * column buffers: resourceSpans (or Tempo's batches) and resourceLogs, with the current scope*
 * names or the legacy instrumentationLibrary* ones. A line with anything it does not handle
 * exactly is rolled back and listed as declined, and the Python tiers (ingest/otlp_fast.py,
 * then the careful path, otlp_model.Sink) decode it. It declines a line with
 *   - Jaeger API v3's "result" wrapper; resourceSpans beside batches, or a current scope* name
 *     beside its legacy one in one object;
 *   - a trace, span or parent id (or a log record's) that is neither hex of its width (either
 *     case) nor base64 of its bytes (as Go's protojson writes them: Tempo), is all zeros or is
 *     written with escapes; a span without traceId, spanId or startTimeUnixNano;
 *   - a kind, status code or severity written as a string other than its name (SPAN_KIND_SERVER
 *     or SERVER, STATUS_CODE_ERROR or ERROR, SEVERITY_NUMBER_INFO: Go's protojson's), or a span's or
 *     log record's flags or dropped count written as a string; any of them out of its range (kind
 *     0-5, status 0-2, the others 0 .. 2^31-1); a fraction
 *     or exponent where an integer goes; a doubleValue written as a string ("NaN", "Infinity");
 *   - a known field twice in one object, an attribute key twice in one list (nested ones too),
 *     more than 128 attributes in one list, two values in one AnyValue, an escaped field name or
 *     event name;
 *   - an "exception" event whose exception.type or exception.message is not a string, a string
 *     for an integer promoted column (what str() or int() makes of those is Python's business);
 *   - a resource or scope that is not an object or null, AnyValue nesting deeper than 24 levels
 *     (any other JSON deeper than 96), invalid JSON or UTF-8, text after the document.
 * So this code never words a reject and never decides an odd case.
 *
 * What it writes is, value for value, what the msgspec tier writes for the same line (JSON
 * texts encoded as msgspec encodes them: compact, only '"', '\\' and control characters
 * escaped, floats in msgspec's notation). tests/test_ingest_native.py holds it to that. The
 * promotion table comes from the caller (ingest/otlp_model.py's, see otlp_fast._NATIVE_PROMOTED);
 * the first-exception-event rule and the warning text are otlp_model's, written again here.
 *
 * Python side: scan(data, promoted) -> (rows, lines, groups, declined, strings, ints, pstrings,
 * pints, log_rows, log_groups, log_strings, log_ints), see scan_doc below; the caller is
 * ingest/otlp_fast.py (_native_chunk).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>  /* every x86-64 has SSE2: no dispatch needed; other machines use the SWAR loops */
#endif

enum { ST_OK = 0, ST_BAIL = 1, ST_NOMEM = 2 };
#define TRY(x) do { int r_ = (x); if (r_) return r_; } while (0)
#define MAX_DEPTH 24       /* AnyValue nesting the scan writes out; deeper lines go the Python tiers */
#define MAX_SKIP_DEPTH 96  /* JSON nesting skipped over (unknown fields, a deferred scopeSpans) */
#define MAX_KEYS 128
#define MAX_PROMOTED_NAMES 64
#define MAX_PROMOTED_COLS 32
#define PROMOTED_SLOTS 128  /* a power of two, twice MAX_PROMOTED_NAMES: probes stay short */

/* ---- growable buffers ------------------------------------------------------------------ */

/* hint: the first allocation's size, a guess from the block's size (scan's size_hints): growing
   by doubling from 4 KiB copied each column several times over a block. Reserved but unwritten
   memory is never touched, so a guess too large costs address space, not memory. */
typedef struct { char *p; size_t len, cap, hint; } Buf;

static int buf_grow(Buf *b, size_t extra) {
    size_t need = b->len + extra;
    if (need <= b->cap) return ST_OK;
    size_t cap = b->cap ? b->cap : (b->hint > 4096 ? b->hint : 4096);
    while (cap < need) cap *= 2;
    char *p = PyMem_RawRealloc(b->p, cap);
    if (!p) return ST_NOMEM;
    b->p = p;
    b->cap = cap;
    return ST_OK;
}

static inline int buf_put(Buf *b, const void *s, size_t n) {
    if (!n) return ST_OK;
    if (b->len + n > b->cap) TRY(buf_grow(b, n));
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return ST_OK;
}

static inline int buf_putc(Buf *b, char c) {
    if (b->len + 1 > b->cap) TRY(buf_grow(b, 1));
    b->p[b->len++] = c;
    return ST_OK;
}

#define buf_lit(b, s) buf_put((b), (s), sizeof(s) - 1)

static int buf_i64(Buf *b, int64_t v) {
    char tmp[24];
    char *q = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--q = '-';
    return buf_put(b, q, (size_t)(tmp + sizeof tmp - q));
}

static void buf_free(Buf *b) {
    PyMem_RawFree(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- columns ----------------------------------------------------------------------------- */

/* a string column: int32 offsets (n + 1), data, one validity byte a row */
typedef struct { Buf data, offs, valid; } SCol;
/* an integer column: int64 values, one validity byte a row */
typedef struct { Buf vals, valid; } ICol;

static int scol_init(SCol *c) {
    int32_t zero = 0;
    return buf_put(&c->offs, &zero, sizeof zero);
}

static inline int scol_end_row(SCol *c, int valid) {
    if (c->data.len > INT32_MAX) return ST_BAIL;  /* the caller splits smaller blocks */
    int32_t off = (int32_t)c->data.len;
    if (c->offs.len + sizeof off > c->offs.cap) TRY(buf_grow(&c->offs, sizeof off));
    memcpy(c->offs.p + c->offs.len, &off, sizeof off);
    c->offs.len += sizeof off;
    return buf_putc(&c->valid, (char)valid);
}

static int scol_null(SCol *c) { return scol_end_row(c, 0); }

static int scol_bytes(SCol *c, const char *s, size_t n) {
    TRY(buf_put(&c->data, s, n));
    return scol_end_row(c, 1);
}

static inline int icol_put(ICol *c, int64_t v, int valid) {
    if (c->vals.len + sizeof v > c->vals.cap) TRY(buf_grow(&c->vals, sizeof v));
    memcpy(c->vals.p + c->vals.len, &v, sizeof v);
    c->vals.len += sizeof v;
    return buf_putc(&c->valid, (char)valid);
}

enum {
    S_TRACE, S_SPAN, S_PARENT, S_TSTATE, S_NAME, S_SMSG, S_ATTRS, S_EVENTS, S_LINKS, S_WARN,
    S_EXCT, S_EXCM, N_SFIXED
};
static const char *SCOL_NAMES[N_SFIXED] = {
    "trace_id", "span_id", "parent_span_id", "trace_state", "name", "status_message", "attributes",
    "events", "links", "warnings", "exception_type", "exception_message",
};
enum { I_KIND, I_START, I_END, I_STATUS, I_FLAGS, I_DATTR, I_DEV, I_DLINK, N_IFIXED };
static const char *ICOL_NAMES[N_IFIXED] = {
    "kind", "start_ns", "end_ns", "status_code", "flags", "dropped_attributes_count",
    "dropped_events_count", "dropped_links_count",
};
/* log records */
enum { L_SEVTEXT, L_BODY, L_TRACE, L_SPAN, L_EVENT, L_ATTRS, N_LS };
static const char *LSCOL_NAMES[N_LS] = {"severity_text", "body", "trace_id", "span_id", "event_name", "attributes"};
enum { LI_TIME, LI_OTIME, LI_SEV, LI_FLAGS, LI_DROP, N_LI };
static const char *LICOL_NAMES[N_LI] = {
    "time_ns", "observed_time_ns", "severity_number", "flags", "dropped_attributes_count",
};

/* ---- promoted attributes (configured by the caller) ---------------------------------------- */

typedef struct { char name[64]; size_t n; int col, pri; } PName;

typedef struct {
    int ncols;
    int is_int[MAX_PROMOTED_COLS];
    int nnames;
    PName names[MAX_PROMOTED_NAMES];
    uint64_t lengths;  /* bit n set: some name is n bytes long (n < 64) */
    signed char slots[PROMOTED_SLOTS];  /* open addressing by name_hash: index into names, -1 empty */
} Promoted;

/* ---- the scan state ------------------------------------------------------------------------ */

typedef struct { const unsigned char *s; size_t n; int esc; } Tok;

enum { V_NULL, V_STR, V_INT, V_BOOL, V_DBL, V_COMPLEX };

typedef struct {
    int kind;
    Tok str;          /* V_STR */
    int64_t i;        /* V_INT, V_BOOL */
    double d;         /* V_DBL */
    size_t off, len;  /* the value's JSON text in the buffer it was written to */
} Val;

typedef struct { int pri; Val v; const Buf *json; } PHit;

/* records_end: where the group's records array ends (one past its ']'), for a caller that cut the
   line along its records and checks that an array closes where it closed it (otlp_ranges.py) */
typedef struct {
    int64_t line;
    Py_ssize_t res_off, res_len, scope_off, scope_len, lib_off, lib_len, count, records_end;
} Group;

typedef struct {
    const unsigned char *base;  /* the block */
    const unsigned char *p, *end;  /* the cursor, the end of the current line */
    SCol s[N_SFIXED];
    ICol i[N_IFIXED];
    SCol ps[MAX_PROMOTED_COLS];  /* promoted string columns (unused for int ones) */
    ICol pi[MAX_PROMOTED_COLS];  /* promoted int columns */
    Buf groups;                  /* Group structs (spans) */
    SCol l[N_LS];                /* log columns */
    ICol li[N_LI];
    Buf lgroups;                 /* Group structs (logs) */
    Py_ssize_t lrows;
    Buf tmp;                     /* an event's or link's attributes, before the object is known */
    Py_ssize_t rows;
    const Promoted *prom;
    PHit hits[MAX_PROMOTED_COLS];
    uint32_t hit_mask;           /* bit c: hits[c] holds a value for the span being read */
    /* the span's first exception event (the rule of otlp_model.first_exception) */
    int exc_seen;
    Val exc_type, exc_msg;
    const Buf *exc_buf;
    char karena[65536];          /* decoded keys that had escapes (stack discipline) */
    size_t karena_len;
} Scan;

/* ---- lexing ------------------------------------------------------------------------------- */

static inline void ws(Scan *st) {
    const unsigned char *p = st->p, *e = st->end;
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
    st->p = p;
}

static inline int peek(Scan *st) {
    ws(st);
    return st->p < st->end ? *st->p : -1;
}

static inline int expect(Scan *st, char c) {
    if (peek(st) != c) return ST_BAIL;
    st->p++;
    return ST_OK;
}

static int hex4(const unsigned char *p, const unsigned char *e, uint32_t *out) {
    if (e - p < 4) return ST_BAIL;
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return ST_BAIL;
    }
    *out = v;
    return ST_OK;
}

/* length of a valid UTF-8 sequence at p (strict: no overlongs, surrogates or > U+10FFFF), 0 if invalid */
static inline int utf8_len(const unsigned char *p, const unsigned char *e) {
    unsigned char c = p[0];
    if (c >= 0xC2 && c <= 0xDF) {
        return (e - p >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (e - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0;
        if (c == 0xED && p[1] >= 0xA0) return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (e - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;
        if (c == 0xF4 && p[1] >= 0x90) return 0;
        return 4;
    }
    return 0;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
#define HAS_ZERO(v) (((v) - ONES) & ~(v) & HIGHS)

/* a string token at the cursor (on '"'): validated, escapes checked, not decoded */
static int scan_str(Scan *st, Tok *t) {
    const unsigned char *p = st->p + 1, *e = st->end;
    t->s = p;
    t->esc = 0;
    for (;;) {
#if defined(__SSE2__)
        while (e - p >= 16) {  /* 16 bytes at a time: '"', '\\', control bytes and non-ASCII stop */
            __m128i x = _mm_loadu_si128((const __m128i *)p);
            /* as signed bytes, 0x00-0x1f and 0x80-0xff are exactly those below 0x20 */
            __m128i special = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
            int m = _mm_movemask_epi8(special);
            if (m) {
                p += __builtin_ctz((unsigned)m);
                goto special;
            }
            p += 16;
        }
#endif
        while (e - p >= 8) {  /* skip 8 plain ASCII bytes at a time */
            uint64_t x;
            memcpy(&x, p, 8);
            uint64_t special = HAS_ZERO(x ^ (ONES * '"')) | HAS_ZERO(x ^ (ONES * '\\')) |
                               ((x - ONES * 0x20) & ~x & HIGHS) | (x & HIGHS);
            if (special) {  /* the lowest flagged byte is the first special one (little-endian) */
                p += __builtin_ctzll(special) >> 3;
                break;
            }
            p += 8;
        }
#if defined(__SSE2__)
    special:
#endif
        if (p >= e) return ST_BAIL;
        unsigned char c = *p;
        if (c == '"') {
            t->n = (size_t)(p - t->s);
            st->p = p + 1;
            return ST_OK;
        }
        if (c == '\\') {
            t->esc = 1;
            if (++p >= e) return ST_BAIL;
            switch (*p) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p++;
                break;
            case 'u': {
                uint32_t cp, lo;
                TRY(hex4(p + 1, e, &cp));
                p += 5;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (e - p < 6 || p[0] != '\\' || p[1] != 'u') return ST_BAIL;
                    TRY(hex4(p + 2, e, &lo));
                    if (lo < 0xDC00 || lo > 0xDFFF) return ST_BAIL;
                    p += 6;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return ST_BAIL;
                }
                break;
            }
            default:
                return ST_BAIL;
            }
            continue;
        }
        if (c < 0x20) return ST_BAIL;
        if (c < 0x80) {
            p++;
            continue;
        }
        int k = utf8_len(p, e);
        if (!k) return ST_BAIL;
        p += k;
    }
}

static inline int tok_is(const Tok *t, const char *lit, size_t n) {
    return t->n == n && memcmp(t->s, lit, n) == 0;
}
#define TOK_IS(t, lit) tok_is((t), (lit), sizeof(lit) - 1)

static void put_utf8(char *out, size_t *n, uint32_t cp) {
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xC0 | (cp >> 6));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xE0 | (cp >> 12));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*n)++] = (char)(0xF0 | (cp >> 18));
        out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

/* one escape sequence at p (after the backslash): its code point; *adv = bytes consumed */
static uint32_t unescape(const unsigned char *p, size_t *adv) {
    uint32_t cp, lo;
    switch (*p) {
    case 'b': *adv = 1; return 8;
    case 'f': *adv = 1; return 12;
    case 'n': *adv = 1; return 10;
    case 'r': *adv = 1; return 13;
    case 't': *adv = 1; return 9;
    case 'u':
        hex4(p + 1, p + 5, &cp);  /* validated by scan_str */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            hex4(p + 7, p + 11, &lo);
            *adv = 11;
            return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        *adv = 5;
        return cp;
    default:  /* '"', '\\', '/' */
        *adv = 1;
        return *p;
    }
}

/* the decoded text of a token */
static int put_decoded(Buf *b, const Tok *t) {
    if (!t->esc) return buf_put(b, t->s, t->n);
    TRY(buf_grow(b, t->n));  /* decoding never lengthens */
    const unsigned char *p = t->s, *e = t->s + t->n;
    char *out = b->p + b->len;
    size_t n = 0;
    while (p < e) {
        if (*p != '\\') {
            out[n++] = (char)*p++;
            continue;
        }
        size_t adv;
        uint32_t cp = unescape(p + 1, &adv);
        put_utf8(out, &n, cp);
        p += 1 + adv;
    }
    b->len += n;
    return ST_OK;
}

static const char HEX[] = "0123456789abcdef";

/* the token as a JSON string, escaped as msgspec escapes: '"', '\\' and control characters */
static int put_json_str(Buf *b, const Tok *t) {
    if (!t->esc) {
        TRY(buf_grow(b, t->n + 2));
        b->p[b->len++] = '"';
        memcpy(b->p + b->len, t->s, t->n);
        b->len += t->n;
        b->p[b->len++] = '"';
        return ST_OK;
    }
    TRY(buf_grow(b, t->n + 2));  /* msgspec's escapes are never longer than JSON's */
    const unsigned char *p = t->s, *e = t->s + t->n;
    char *out = b->p + b->len;
    size_t n = 0;
    out[n++] = '"';
    while (p < e) {
        if (*p != '\\') {
            out[n++] = (char)*p++;
            continue;
        }
        size_t adv;
        uint32_t cp = unescape(p + 1, &adv);
        p += 1 + adv;
        switch (cp) {
        case '"': out[n++] = '\\'; out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; out[n++] = '\\'; break;
        case 8: out[n++] = '\\'; out[n++] = 'b'; break;
        case 9: out[n++] = '\\'; out[n++] = 't'; break;
        case 10: out[n++] = '\\'; out[n++] = 'n'; break;
        case 12: out[n++] = '\\'; out[n++] = 'f'; break;
        case 13: out[n++] = '\\'; out[n++] = 'r'; break;
        default:
            if (cp < 0x20) {
                out[n++] = '\\'; out[n++] = 'u'; out[n++] = '0'; out[n++] = '0';
                out[n++] = HEX[cp >> 4]; out[n++] = HEX[cp & 15];
            } else {
                put_utf8(out, &n, cp);
            }
        }
    }
    out[n++] = '"';
    b->len += n;
    return ST_OK;
}

typedef struct { const unsigned char *s; size_t n; int is_int; } Num;

static int scan_num(Scan *st, Num *num) {
    const unsigned char *p = st->p, *e = st->end, *s = p;
    int is_int = 1;
    if (p < e && *p == '-') p++;
    if (p >= e) return ST_BAIL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9') p++;
    } else {
        return ST_BAIL;
    }
    if (p < e && *p == '.') {
        is_int = 0;
        p++;
        if (p >= e || *p < '0' || *p > '9') return ST_BAIL;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return ST_BAIL;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    num->s = s;
    num->n = (size_t)(p - s);
    num->is_int = is_int;
    st->p = p;
    return ST_OK;
}

/* decimal digits with an optional '-' (only if neg_ok) as int64; anything else declines */
static int digits_i64(const unsigned char *s, size_t n, int neg_ok, int64_t *out) {
    int neg = 0;
    if (n && *s == '-') {
        if (!neg_ok) return ST_BAIL;
        neg = 1;
        s++;
        n--;
    }
    if (!n || n > 19) return ST_BAIL;
    uint64_t v = 0;
    size_t k = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; n - k >= 8; k += 8) {  /* eight digits at a time (the SWAR steps of simdjson) */
        uint64_t x;
        memcpy(&x, s + k, 8);
        if (((x & 0xF0F0F0F0F0F0F0F0ULL) | (((x + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) >> 4)) !=
            0x3333333333333333ULL)
            return ST_BAIL;  /* a byte that is not a digit */
        x = ((x & 0x0F0F0F0F0F0F0F0FULL) * 2561) >> 8;
        x = ((x & 0x00FF00FF00FF00FFULL) * 6553601) >> 16;
        x = ((x & 0x0000FFFF0000FFFFULL) * 42949672960001ULL) >> 32;
        v = v * 100000000 + x;
    }
#endif
    for (; k < n; k++) {
        if (s[k] < '0' || s[k] > '9') return ST_BAIL;
        v = v * 10 + (uint64_t)(s[k] - '0');
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return ST_BAIL;
        *out = (int64_t)(0 - v);
    } else {
        if (v > (uint64_t)INT64_MAX) return ST_BAIL;
        *out = (int64_t)v;
    }
    return ST_OK;
}

static int num_f64(const Num *num, double *out) {
    char tmp[512];
    if (num->n >= sizeof tmp) return ST_BAIL;
    memcpy(tmp, num->s, num->n);
    tmp[num->n] = 0;
    char *end = NULL;
    double d = PyOS_string_to_double(tmp, &end, NULL);
    if (d == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return ST_BAIL;
    }
    if (end != tmp + num->n || !isfinite(d)) return ST_BAIL;  /* out of range: msgspec refuses it */
    *out = d;
    return ST_OK;
}

/* shortest significant digits (no leading or trailing zeros, ndg >= 1) and the decimal exponent
   of the first one, as msgspec writes them: fixed notation for exponents -5..15 (".0" when
   integral), otherwise d[.ddd]e<exp> with no '+' */
static int put_digits(Buf *b, int neg, const char *dg, size_t ndg, int sci) {
    char out[80];
    size_t n = 0;
    if (neg) out[n++] = '-';
    if (sci >= -5 && sci < 16) {
        if (sci >= 0) {
            if ((int)ndg <= sci + 1) {
                memcpy(out + n, dg, ndg);
                n += ndg;
                for (int k = (int)ndg; k < sci + 1; k++) out[n++] = '0';
                out[n++] = '.';
                out[n++] = '0';
            } else {
                memcpy(out + n, dg, (size_t)sci + 1);
                n += (size_t)sci + 1;
                out[n++] = '.';
                memcpy(out + n, dg + sci + 1, ndg - (size_t)sci - 1);
                n += ndg - (size_t)sci - 1;
            }
        } else {
            out[n++] = '0';
            out[n++] = '.';
            for (int k = 0; k < -sci - 1; k++) out[n++] = '0';
            memcpy(out + n, dg, ndg);
            n += ndg;
        }
    } else {
        out[n++] = dg[0];
        if (ndg > 1) {
            out[n++] = '.';
            memcpy(out + n, dg + 1, ndg - 1);
            n += ndg - 1;
        }
        n += (size_t)snprintf(out + n, sizeof out - n, "e%d", sci);
    }
    return buf_put(b, out, n);
}

/* a float as msgspec writes it: repr's shortest digits in put_digits' notation; NaN and
   infinities as null */
static int put_double(Buf *b, double d) {
    if (!isfinite(d)) return buf_lit(b, "null");
    char *r = PyOS_double_to_string(d, 'r', 0, 0, NULL);
    if (!r) {
        PyErr_Clear();
        return ST_NOMEM;
    }
    const char *p = r;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    char digits[32];
    size_t nd = 0;
    int point = -1;  /* digits before the decimal point */
    int exp10 = 0;
    for (; *p && *p != 'e'; p++) {
        if (*p == '.') point = (int)nd;
        else if (nd < sizeof digits) digits[nd++] = *p;
    }
    if (*p == 'e') exp10 = atoi(p + 1);
    PyMem_Free(r);
    if (point < 0) point = (int)nd;
    size_t lead = 0;  /* leading zeros */
    while (lead < nd && digits[lead] == '0') lead++;
    if (lead == nd) return neg ? buf_lit(b, "-0.0") : buf_lit(b, "0.0");
    int sci = point - 1 - (int)lead + exp10;
    size_t last = nd;
    while (last > lead && digits[last - 1] == '0') last--;
    return put_digits(b, neg, digits + lead, last - lead, sci);
}

static const double POW10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* A JSON number as a doubleValue: its value in *d, written as msgspec writes that double.
   Without a general-purpose conversion when the text has at most 15 significant digits and a
   modest exponent: any decimal of 15 digits or fewer survives decimal -> double -> decimal, so
   the shortest digits that read back as its double (repr's) are the text's own, trailing zeros
   dropped; the value is exact then too (Clinger: an integer below 2^53 times or over an exact
   power of ten is one correctly rounded operation). Anything else takes strtod and dtoa. */
static int put_number_double(Buf *b, const Num *num, double *d) {
    const unsigned char *p = num->s, *e = num->s + num->n;
    int neg = 0;
    if (p < e && *p == '-') {
        neg = 1;
        p++;
    }
    char dg[16];
    size_t ndg = 0, lead = 0;
    int sig_seen = 0, point = 0, slow = 0;  /* point: digits before the decimal point, leading zeros out */
    uint64_t mant = 0;
    for (; p < e && *p >= '0' && *p <= '9'; p++) {
        if (!sig_seen && *p == '0') continue;
        sig_seen = 1;
        point++;
        if (ndg < 15) dg[ndg] = (char)*p;
        ndg++;
    }
    if (p < e && *p == '.') {
        for (p++; p < e && *p >= '0' && *p <= '9'; p++) {
            if (!sig_seen && *p == '0') {
                lead++;
                continue;
            }
            sig_seen = 1;
            if (ndg < 15) dg[ndg] = (char)*p;
            ndg++;
        }
    }
    long exp10 = 0;
    if (p < e && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        p++;
        if (*p == '+' || *p == '-') eneg = *p++ == '-';
        for (; p < e; p++) {
            if (exp10 < 100000) exp10 = exp10 * 10 + (*p - '0');
        }
        if (eneg) exp10 = -exp10;
    }
    /* more than 15 digits, or a text num_f64 would decline: the general path */
    if (ndg > 15 || num->n >= 512) slow = 1;
    size_t kept = ndg < 15 ? ndg : 15;
    while (kept && dg[kept - 1] == '0') kept--;
    if (!slow && !kept) {  /* zero: an integer zero is 0.0 (msgspec reads an int), -0.0 keeps its sign */
        *d = neg && !num->is_int ? -0.0 : 0.0;
        return neg && !num->is_int ? buf_lit(b, "-0.0") : buf_lit(b, "0.0");
    }
    int sci = 0;
    if (!slow) {
        sci = sig_seen ? (point > 0 ? point - 1 : -(int)lead - 1) : 0;
        if (exp10 > 300 || exp10 < -300 || sci + exp10 > 300 || sci + exp10 < -300) slow = 1;
        else sci += (int)exp10;
    }
    if (slow) {
        int64_t i;
        if (num->is_int && digits_i64(num->s, num->n, 1, &i) == ST_OK) {
            *d = (double)i;  /* msgspec reads an integer, then makes it a float */
        } else {
            TRY(num_f64(num, d));
        }
        return put_double(b, *d);
    }
    for (size_t k = 0; k < kept; k++) mant = mant * 10 + (uint64_t)(dg[k] - '0');
    int e10 = sci - ((int)kept - 1);  /* value = mant * 10^e10 */
    if (e10 >= 0 && e10 <= 22) *d = (double)mant * POW10[e10];
    else if (e10 < 0 && e10 >= -22) *d = (double)mant / POW10[-e10];
    else TRY(num_f64(num, d));
    if (neg) *d = -*d;
    return put_digits(b, neg, dg, kept, sci);
}

/* skip any JSON value, validating it */
static int skip_value(Scan *st, int depth) {
    if (depth > MAX_SKIP_DEPTH) return ST_BAIL;
    int c = peek(st);
    if (c == '"') {
        Tok t;
        return scan_str(st, &t);
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        st->p++;
        if (peek(st) == close) {
            st->p++;
            return ST_OK;
        }
        for (;;) {
            if (c == '{') {
                Tok k;
                if (peek(st) != '"') return ST_BAIL;
                TRY(scan_str(st, &k));
                TRY(expect(st, ':'));
            }
            TRY(skip_value(st, depth + 1));
            int d = peek(st);
            st->p++;
            if (d == ',') continue;
            if (d == close) return ST_OK;
            return ST_BAIL;
        }
    }
    if (c == 't' && st->end - st->p >= 4 && !memcmp(st->p, "true", 4)) { st->p += 4; return ST_OK; }
    if (c == 'f' && st->end - st->p >= 5 && !memcmp(st->p, "false", 5)) { st->p += 5; return ST_OK; }
    if (c == 'n' && st->end - st->p >= 4 && !memcmp(st->p, "null", 4)) { st->p += 4; return ST_OK; }
    Num num;
    return scan_num(st, &num);
}

static int is_null(Scan *st) {
    if (peek(st) == 'n' && st->end - st->p >= 4 && !memcmp(st->p, "null", 4)) {
        st->p += 4;
        return 1;
    }
    return 0;
}

/* bytes a field name is usually made of: such a name has no escape and is valid UTF-8 */
static const unsigned char NAMECHAR[256] = {
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,
    ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['_'] = 1, ['.'] = 1,
};

/* a field name of NAMECHAR bytes at p (on its opening quote) directly followed by ':': read
   without scan_str (the token is the one scan_str would give), the cursor after the ':' */
static inline int plain_name(Scan *st, const unsigned char *p, Tok *key) {
    const unsigned char *q = p + 1, *e = st->end;
    while (q < e && NAMECHAR[*q]) q++;
    if (e - q < 2 || q[0] != '"' || q[1] != ':') return 0;
    key->s = p + 1;
    key->n = (size_t)(q - p - 1);
    key->esc = 0;
    st->p = q + 2;
    ws(st);
    return 1;
}

/* object iteration: *has = 1 with the key read and the cursor at its value, 0 at the end */
static int obj_first(Scan *st, Tok *key, int *has) {
    if (st->end - st->p >= 2 && st->p[0] == '{' && st->p[1] == '"' && plain_name(st, st->p + 1, key)) {
        *has = 1;
        return ST_OK;
    }
    TRY(expect(st, '{'));
    int c = peek(st);
    if (c == '}') {
        st->p++;
        *has = 0;
        return ST_OK;
    }
    if (c != '"') return ST_BAIL;
    TRY(scan_str(st, key));
    TRY(expect(st, ':'));
    ws(st);
    *has = 1;
    return ST_OK;
}

static int obj_next(Scan *st, Tok *key, int *has) {
    if (st->end - st->p >= 2 && st->p[0] == ',' && st->p[1] == '"' && plain_name(st, st->p + 1, key)) {
        *has = 1;
        return ST_OK;
    }
    int c = peek(st);
    st->p++;
    if (c == '}') {
        *has = 0;
        return ST_OK;
    }
    if (c != ',' || peek(st) != '"') return ST_BAIL;
    TRY(scan_str(st, key));
    TRY(expect(st, ':'));
    ws(st);
    *has = 1;
    return ST_OK;
}

static int arr_first(Scan *st, int *has) {
    TRY(expect(st, '['));
    if (peek(st) == ']') {
        st->p++;
        *has = 0;
        return ST_OK;
    }
    *has = 1;
    return ST_OK;
}

static int arr_next(Scan *st, int *has) {
    int c = peek(st);
    st->p++;
    if (c == ']') {
        *has = 0;
        return ST_OK;
    }
    if (c != ',') return ST_BAIL;
    *has = 1;
    return ST_OK;
}

/* a known field seen twice in one object: declined (which one wins is msgspec's business) */
#define ONCE(mask, bit) do { if ((mask) & (1u << (bit))) return ST_BAIL; (mask) |= 1u << (bit); } while (0)

static int read_str(Scan *st, Tok *t) {
    if (peek(st) != '"') return ST_BAIL;
    return scan_str(st, t);
}

static int read_i64(Scan *st, int64_t *v) {
    Num num;
    if (peek(st) == '"') return ST_BAIL;
    TRY(scan_num(st, &num));
    if (!num.is_int) return ST_BAIL;
    return digits_i64(num.s, num.n, 1, v);
}

/* a time: a JSON integer or a string of digits, 0 .. 2^63-1 */
static int read_time(Scan *st, int64_t *v) {
    if (peek(st) == '"') {
        Tok t;
        TRY(scan_str(st, &t));
        if (t.esc) return ST_BAIL;
        return digits_i64(t.s, t.n, 0, v);
    }
    TRY(read_i64(st, v));
    return *v < 0 ? ST_BAIL : ST_OK;
}

/* ---- AnyValue -> JSON ---------------------------------------------------------------------- */

typedef struct { const char *s; size_t n; } Key;

static int key_text(Scan *st, const Tok *t, Key *k) {
    if (!t->esc) {
        k->s = (const char *)t->s;
        k->n = t->n;
        return ST_OK;
    }
    if (st->karena_len + t->n > sizeof st->karena) return ST_BAIL;
    Buf tmp = {st->karena + st->karena_len, 0, t->n};  /* decoding never lengthens: no growth */
    TRY(put_decoded(&tmp, t));
    k->s = st->karena + st->karena_len;
    k->n = tmp.len;
    st->karena_len += tmp.len;
    return ST_OK;
}

static int keys_add(Key *keys, int *nkeys, const Key *k) {
    for (int j = 0; j < *nkeys; j++) {
        if (keys[j].n == k->n && memcmp(keys[j].s, k->s, k->n) == 0) return ST_BAIL;  /* duplicate */
    }
    if (*nkeys >= MAX_KEYS) return ST_BAIL;
    keys[(*nkeys)++] = *k;
    return ST_OK;
}

static int put_kvlist(Scan *st, Buf *b, int depth, int mode, Val *etype, Val *emsg);

static int put_any(Scan *st, Buf *b, int depth, Val *v, int null_ok);

/* an ArrayValue or KeyValueList ({"values": [...]}) at the cursor, written as a JSON array or object */
static int put_values(Scan *st, Buf *b, int depth, int kvlist) {
    Tok key;
    int has, wrote = 0;
    unsigned seen = 0;
    TRY(obj_first(st, &key, &has));
    while (has) {
        if (key.esc) return ST_BAIL;
        if (TOK_IS(&key, "values")) {
            ONCE(seen, 0);
            wrote = 1;
            if (kvlist) {
                TRY(put_kvlist(st, b, depth + 1, 0, NULL, NULL));
            } else {
                int h2, first = 1;
                TRY(buf_putc(b, '['));
                TRY(arr_first(st, &h2));
                while (h2) {
                    Val inner;
                    if (!first) TRY(buf_putc(b, ','));
                    first = 0;
                    TRY(put_any(st, b, depth + 1, &inner, 0));  /* an element must be an object */
                    TRY(arr_next(st, &h2));
                }
                TRY(buf_putc(b, ']'));
            }
        } else {
            TRY(skip_value(st, depth + 1));
        }
        TRY(obj_next(st, &key, &has));
    }
    if (!wrote) TRY(kvlist ? buf_lit(b, "{}") : buf_lit(b, "[]"));
    return ST_OK;
}

/* the scalar AnyValue fields, by put_any's numbering: stringValue (0), intValue (1), boolValue
   (2), doubleValue (3), bytesValue (6); the value at the cursor, written to b, described in v */
static int put_scalar(Scan *st, Buf *b, int field, Val *v) {
    switch (field) {
    case 1:
        if (peek(st) == '"') {
            Tok t;
            TRY(scan_str(st, &t));
            if (t.esc) return ST_BAIL;
            TRY(digits_i64(t.s, t.n, 1, &v->i));
        } else {
            TRY(read_i64(st, &v->i));
        }
        v->kind = V_INT;
        return buf_i64(b, v->i);
    case 2: {
        int c = peek(st);
        v->kind = V_BOOL;
        if (c == 't' && st->end - st->p >= 4 && !memcmp(st->p, "true", 4)) {
            st->p += 4;
            v->i = 1;
            return buf_lit(b, "true");
        }
        if (c == 'f' && st->end - st->p >= 5 && !memcmp(st->p, "false", 5)) {
            st->p += 5;
            v->i = 0;
            return buf_lit(b, "false");
        }
        return ST_BAIL;
    }
    case 3: {
        Num num;
        if (peek(st) == '"') return ST_BAIL;  /* "NaN" and friends: the Python tier */
        TRY(scan_num(st, &num));
        v->kind = V_DBL;
        return put_number_double(b, &num, &v->d);
    }
    default:  /* 0, 6 */
        TRY(read_str(st, &v->str));
        v->kind = V_STR;
        return put_json_str(b, &v->str);
    }
}

/* an AnyValue object at the cursor, written to b as JSON; v describes it */
static int put_any(Scan *st, Buf *b, int depth, Val *v, int null_ok) {
    if (depth > MAX_DEPTH) return ST_BAIL;
    v->kind = V_NULL;
    v->off = b->len;
    if (is_null(st)) {
        if (!null_ok) return ST_BAIL;  /* an array element must be an AnyValue object */
        TRY(buf_lit(b, "null"));
        v->len = 4;
        return ST_OK;
    }
    Tok key;
    int has, set = 0;
    unsigned seen = 0;
    TRY(obj_first(st, &key, &has));
    while (has) {
        if (key.esc) return ST_BAIL;
        int field = -1;
        if (TOK_IS(&key, "stringValue")) field = 0;
        else if (TOK_IS(&key, "intValue")) field = 1;
        else if (TOK_IS(&key, "boolValue")) field = 2;
        else if (TOK_IS(&key, "doubleValue")) field = 3;
        else if (TOK_IS(&key, "arrayValue")) field = 4;
        else if (TOK_IS(&key, "kvlistValue")) field = 5;
        else if (TOK_IS(&key, "bytesValue")) field = 6;
        if (field < 0) {
            TRY(skip_value(st, depth + 1));
        } else {
            ONCE(seen, field);
            if (is_null(st)) {
                /* absent */
            } else {
                if (set) return ST_BAIL;  /* two kinds in one AnyValue: precedence is not ours */
                set = 1;
                switch (field) {
                case 0:
                case 1:
                case 2:
                case 3:
                case 6:
                    TRY(put_scalar(st, b, field, v));
                    break;
                case 4:  /* {"values": [AnyValue, ...]} */
                case 5:  /* {"values": [KeyValue, ...]} */
                    TRY(put_values(st, b, depth, field == 5));
                    v->kind = V_COMPLEX;
                    break;
                }
            }
        }
        TRY(obj_next(st, &key, &has));
    }
    if (!set) TRY(buf_lit(b, "null"));
    v->len = b->len - v->off;
    return ST_OK;
}

/* a promoted attribute: keep it if it is the most preferred name seen so far */
static inline unsigned name_hash(const char *s, size_t n) {
    if (!n) return 0;
    const unsigned char *u = (const unsigned char *)s;
    return (unsigned)(n * 31 + u[0] * 7u + u[n - 1] * 13u + u[n / 2] * 17u) & (PROMOTED_SLOTS - 1);
}

static void promote(Scan *st, const Key *k, const Val *v, const Buf *b) {
    if (v->kind == V_NULL) return;  /* an empty AnyValue does not count as present */
    const Promoted *pr = st->prom;
    if (k->n >= 64 || !((pr->lengths >> k->n) & 1)) return;
    for (unsigned slot = name_hash(k->s, k->n);; slot = (slot + 1) & (PROMOTED_SLOTS - 1)) {
        int j = pr->slots[slot];
        if (j < 0) return;
        const PName *pn = &pr->names[j];
        if (pn->n == k->n && memcmp(pn->name, k->s, k->n) == 0) {
            PHit *h = &st->hits[pn->col];
            uint32_t bit = (uint32_t)1 << pn->col;
            if (!(st->hit_mask & bit) || pn->pri <= h->pri) {
                st->hit_mask |= bit;
                h->pri = pn->pri;
                h->v = *v;
                h->json = b;
            }
            return;
        }
    }
}

enum { KV_PLAIN, KV_PROMOTE, KV_EVENT };

static int key_is(const Key *k, const char *lit, size_t n) { return k->n == n && memcmp(k->s, lit, n) == 0; }

/* a KeyValue list ([{"key": ..., "value": AnyValue}, ...]) at the cursor, written to b as a JSON
   object. mode KV_PROMOTE: the span's own attributes (promoted names noted); KV_EVENT: an event's
   (exception.type / exception.message noted in etype / emsg) */
/* literal bytes at the cursor: consumed if they are there */
#define LIT(st, lit) lit_at((st), (lit), sizeof(lit) - 1)
static inline int lit_at(Scan *st, const char *lit, size_t n) {
    if ((size_t)(st->end - st->p) < n || memcmp(st->p, lit, n)) return 0;
    st->p += n;
    return 1;
}

/* One KeyValue as the Collector writes it, {"key":"K","value":{"<kind>Value":V}} with no
   whitespace and a scalar V, read without tokenising its field names. ST_BAIL when the entry is
   anything else (the caller rewinds and reads it field by field), never a verdict on the line. */
static int kv_fast(Scan *st, Buf *b, int depth, Tok *keytok, Val *v) {
    if (depth + 1 > MAX_DEPTH || !LIT(st, "{\"key\":")) return ST_BAIL;
    if (st->p >= st->end || *st->p != '"') return ST_BAIL;
    TRY(scan_str(st, keytok));
    if (!LIT(st, ",\"value\":{\"")) return ST_BAIL;
    int field;
    if (LIT(st, "stringValue\":")) field = 0;
    else if (LIT(st, "intValue\":")) field = 1;
    else if (LIT(st, "doubleValue\":")) field = 3;
    else if (LIT(st, "boolValue\":")) field = 2;
    else return ST_BAIL;
    if (st->p >= st->end || *st->p == 'n') return ST_BAIL;  /* null (absent): the careful reading */
    TRY(put_json_str(b, keytok));
    TRY(buf_putc(b, ':'));
    v->off = b->len;
    TRY(put_scalar(st, b, field, v));
    v->len = b->len - v->off;
    return LIT(st, "}}") ? ST_OK : ST_BAIL;
}

/* one KeyValue at the cursor, any layout: its key and its value (written to b as "key":value) */
static int kv_general(Scan *st, Buf *b, int depth, Tok *keytok, Val *v) {
    Tok fk;
    int h2, key_written = 0;
    unsigned seen = 0;
    size_t entry = b->len, val_at = b->len;
    TRY(obj_first(st, &fk, &h2));
    while (h2) {
        if (fk.esc) return ST_BAIL;
        if (TOK_IS(&fk, "key")) {
            ONCE(seen, 0);
            TRY(read_str(st, keytok));
            if (!(seen & 2)) {  /* the usual order: the key goes out now, the value after it */
                TRY(put_json_str(b, keytok));
                TRY(buf_putc(b, ':'));
                key_written = 1;
            }
        } else if (TOK_IS(&fk, "value")) {
            ONCE(seen, 1);
            val_at = b->len;
            TRY(put_any(st, b, depth + 1, v, 1));
        } else {
            TRY(skip_value(st, depth + 1));
        }
        TRY(obj_next(st, &fk, &h2));
    }
    if (!(seen & 2)) {  /* no value: null */
        val_at = b->len;
        TRY(buf_lit(b, "null"));
        v->kind = V_NULL;
        v->off = val_at;
        v->len = 4;
    }
    if (!key_written) {  /* the value came first (or no key: ""): move it behind the key */
        size_t vlen = b->len - val_at;
        size_t mark = b->len;
        TRY(put_json_str(b, keytok));
        TRY(buf_putc(b, ':'));
        size_t klen = b->len - mark;
        TRY(buf_grow(b, klen));
        /* b = [entry: value][mark: key] -> [entry: key][value] */
        memcpy(b->p + b->len, b->p + mark, klen);
        memmove(b->p + entry + klen, b->p + entry, vlen);
        memcpy(b->p + entry, b->p + b->len, klen);
        b->len = entry + klen + vlen;
        v->off = entry + klen;
    }
    return ST_OK;
}

/* a KeyValue list ([{"key": ..., "value": AnyValue}, ...]) at the cursor, written to b as a JSON
   object. mode KV_PROMOTE: the span's own attributes (promoted names noted); KV_EVENT: an event's
   (exception.type / exception.message noted in etype / emsg) */
static int put_kvlist(Scan *st, Buf *b, int depth, int mode, Val *etype, Val *emsg) {
    if (depth > MAX_DEPTH) return ST_BAIL;
    Key keys[MAX_KEYS];
    int nkeys = 0, has, first = 1;
    size_t arena_mark = st->karena_len;
    TRY(buf_putc(b, '{'));
    TRY(arr_first(st, &has));
    while (has) {
        Tok keytok = {(const unsigned char *)"", 0, 0};
        Val v = {V_NULL};
        if (!first) TRY(buf_putc(b, ','));
        first = 0;
        const unsigned char *at = st->p;
        size_t entry = b->len;
        int rc = kv_fast(st, b, depth, &keytok, &v);
        if (rc == ST_NOMEM) return rc;
        if (rc != ST_OK) {
            st->p = at;
            b->len = entry;
            keytok = (Tok){(const unsigned char *)"", 0, 0};
            v = (Val){V_NULL};
            TRY(kv_general(st, b, depth, &keytok, &v));
        }
        Key k;
        TRY(key_text(st, &keytok, &k));
        TRY(keys_add(keys, &nkeys, &k));
        if (mode == KV_PROMOTE) {
            promote(st, &k, &v, b);
        } else if (mode == KV_EVENT) {
            if (key_is(&k, "exception.type", 14)) *etype = v;
            else if (key_is(&k, "exception.message", 17)) *emsg = v;
        }
        TRY(arr_next(st, &has));
    }
    TRY(buf_putc(b, '}'));
    st->karena_len = arena_mark;
    return ST_OK;
}

/* ---- events and links --------------------------------------------------------------------- */

static int put_events(Scan *st, Buf *out) {
    int has, first = 1;
    TRY(buf_putc(out, '['));
    TRY(arr_first(st, &has));
    while (has) {
        Tok key, name = {(const unsigned char *)"", 0, 0};
        int h2;
        unsigned seen = 0;
        int64_t t = 0, dropped = 0;
        Val etype = {V_NULL}, emsg = {V_NULL};
        st->tmp.len = 0;
        TRY(obj_first(st, &key, &h2));
        while (h2) {
            if (key.esc) return ST_BAIL;
            if (TOK_IS(&key, "timeUnixNano")) {
                ONCE(seen, 0);
                TRY(read_time(st, &t));
            } else if (TOK_IS(&key, "name")) {
                ONCE(seen, 1);
                TRY(read_str(st, &name));
            } else if (TOK_IS(&key, "attributes")) {
                ONCE(seen, 2);
                TRY(put_kvlist(st, &st->tmp, 2, KV_EVENT, &etype, &emsg));
            } else if (TOK_IS(&key, "droppedAttributesCount")) {
                ONCE(seen, 3);
                TRY(read_i64(st, &dropped));
            } else {
                TRY(skip_value(st, 1));
            }
            TRY(obj_next(st, &key, &h2));
        }
        if (!(seen & 4)) TRY(buf_lit(&st->tmp, "{}"));
        if (name.esc) return ST_BAIL;  /* an escaped event name might spell "exception" */
        if (!st->exc_seen && TOK_IS(&name, "exception")) {
            st->exc_seen = 1;
            /* str() of a non-string value is Python's business */
            if (etype.kind != V_NULL && etype.kind != V_STR) return ST_BAIL;
            if (emsg.kind != V_NULL && emsg.kind != V_STR) return ST_BAIL;
            st->exc_type = etype;
            st->exc_msg = emsg;
        }
        if (!first) TRY(buf_putc(out, ','));
        first = 0;
        TRY(buf_lit(out, "{\"time_ns\":"));
        TRY(buf_i64(out, t));
        TRY(buf_lit(out, ",\"name\":"));
        TRY(put_json_str(out, &name));
        TRY(buf_lit(out, ",\"attributes\":"));
        TRY(buf_put(out, st->tmp.p, st->tmp.len));
        TRY(buf_lit(out, ",\"dropped_attributes_count\":"));
        TRY(buf_i64(out, dropped));
        TRY(buf_putc(out, '}'));
        TRY(arr_next(st, &has));
    }
    return buf_putc(out, ']');
}

static inline int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* 1 + the value of a base64 digit, 0 for any other byte */
static const unsigned char B64V[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8, ['I'] = 9,
    ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17,
    ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25,
    ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33,
    ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41,
    ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
    ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
    ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

enum { B64_NO = 0, B64_ID = 1, B64_ZERO = 2 };

/* An id written as base64 of its raw bytes (grpc-gateway exporters, Tempo), as normalize._norm_id
   reads it with b64decode(validate=True): 16 bytes are 22 digits and "==", 8 bytes 11 digits and
   "=" (no other text of a length divisible by 4 decodes to that many bytes); the bits past the
   last byte are ignored, as Python does. Lowercase hex into out (2 * nbytes characters). */
static int b64_id(const Tok *t, size_t nbytes, char *out) {
    size_t digits = nbytes == 16 ? 22 : 11;
    if (t->esc || t->n != (nbytes == 16 ? 24 : 12)) return B64_NO;
    for (size_t k = digits; k < t->n; k++)
        if (t->s[k] != '=') return B64_NO;
    uint32_t acc = 0;
    int bits = 0;
    size_t nb = 0;
    unsigned nonzero = 0;
    for (size_t k = 0; k < digits; k++) {
        unsigned v = B64V[t->s[k]];
        if (!v) return B64_NO;
        acc = (acc << 6) | (v - 1);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            unsigned byte = (acc >> bits) & 0xFF;
            nonzero |= byte;
            out[2 * nb] = HEX[byte >> 4];
            out[2 * nb + 1] = HEX[byte & 15];
            nb++;
        }
    }
    return nonzero ? B64_ID : B64_ZERO;
}

/* a kind or status code written as its name (otlp_model.span_kind / status_code: "SPAN_KIND_SERVER"
   or "SERVER"): its number; any other text (digits, unknown names, escapes) declines */
static int enum_name(Scan *st, const char *prefix, const char *const *names, int n, int64_t *out) {
    Tok t;
    TRY(scan_str(st, &t));
    if (t.esc) return ST_BAIL;
    const unsigned char *s = t.s;
    size_t len = t.n, plen = strlen(prefix);
    if (len > plen && !memcmp(s, prefix, plen)) {
        s += plen;
        len -= plen;
    }
    for (int k = 0; k < n; k++) {
        if (strlen(names[k]) == len && !memcmp(names[k], s, len)) {
            *out = k;
            return ST_OK;
        }
    }
    return ST_BAIL;
}

static const char *const KIND_NAMES[6] = {"UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"};
static const char *const STATUS_NAMES[3] = {"UNSET", "OK", "ERROR"};

/* An id that is not lowercase hex (canonical_id) as otlp_model's trace_id_hex, span_id_hex and
   parent_span_id_hex read it: hex of its width in either case (bytes.fromhex, written lowercase),
   or base64 (b64_id). Lowercase hex into out (width characters); B64_NO for anything else (a
   16-hex trace id, which the reference pads, included): the Python tiers decide. */
static int any_id(const Tok *t, size_t width, char *out) {
    if (t->esc) return B64_NO;
    if (t->n != width) return b64_id(t, width / 2, out);
    unsigned nonzero = 0;
    for (size_t k = 0; k < width; k++) {
        int h = hexval(t->s[k]);
        if (h < 0) return B64_NO;
        nonzero |= (unsigned)h;
        out[k] = HEX[h];
    }
    return nonzero ? B64_ID : B64_ZERO;
}

/* a severityNumber: a JSON integer, or a name of otlp_model._SEVERITY_NAMES as Go's protojson writes
   it (SEVERITY_NUMBER_INFO, SEVERITY_NUMBER_INFO2 .. INFO4, ..., SEVERITY_NUMBER_UNSPECIFIED: no
   INFO1, no bare name); any other string declines (the reference makes a null of unknown names) */
static int read_severity(Scan *st, int64_t *v) {
    static const char *const BASES[6] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
    if (peek(st) != '"') return read_i64(st, v);
    Tok t;
    TRY(scan_str(st, &t));
    const size_t plen = sizeof "SEVERITY_NUMBER_" - 1;
    if (t.esc || t.n <= plen || memcmp(t.s, "SEVERITY_NUMBER_", plen)) return ST_BAIL;
    const unsigned char *s = t.s + plen;
    size_t len = t.n - plen;
    if (len == 11 && !memcmp(s, "UNSPECIFIED", 11)) {
        *v = 0;
        return ST_OK;
    }
    int step = 1;
    if (s[len - 1] >= '2' && s[len - 1] <= '4') {
        step = s[len - 1] - '0';
        len--;
    }
    for (int k = 0; k < 6; k++) {
        if (strlen(BASES[k]) == len && !memcmp(BASES[k], s, len)) {
            *v = 4 * k + step;
            return ST_OK;
        }
    }
    return ST_BAIL;
}

/* a link's id: hex of the right length (either case) and not all zeros, written lowercase */
static int put_link_id(Buf *b, const Tok *t, size_t width) {
    if (t->esc || t->n != width) return ST_BAIL;
    char out[34];
    int nonzero = 0;
    out[0] = '"';
    for (size_t k = 0; k < width; k++) {
        int h = hexval(t->s[k]);
        if (h < 0) return ST_BAIL;
        nonzero |= h;
        out[k + 1] = HEX[h];
    }
    if (!nonzero) return ST_BAIL;
    out[width + 1] = '"';
    return buf_put(b, out, width + 2);
}

/* a link's id in hex (put_link_id) or base64 (b64_id); anything else declines */
static int put_any_link_id(Buf *b, const Tok *t, size_t width) {
    char out[34];
    if (t->n == width) return put_link_id(b, t, width);
    if (b64_id(t, width / 2, out + 1) != B64_ID) return ST_BAIL;
    out[0] = '"';
    out[width + 1] = '"';
    return buf_put(b, out, width + 2);
}

static int put_links(Scan *st, Buf *out) {
    int has, first = 1;
    TRY(buf_putc(out, '['));
    TRY(arr_first(st, &has));
    while (has) {
        Tok key, tid = {(const unsigned char *)"", 0, 0}, sid = tid, tstate = tid;
        int h2;
        unsigned seen = 0;
        int64_t dropped = 0, flags = 0;
        st->tmp.len = 0;
        TRY(obj_first(st, &key, &h2));
        while (h2) {
            if (key.esc) return ST_BAIL;
            if (TOK_IS(&key, "traceId")) {
                ONCE(seen, 0);
                TRY(read_str(st, &tid));
            } else if (TOK_IS(&key, "spanId")) {
                ONCE(seen, 1);
                TRY(read_str(st, &sid));
            } else if (TOK_IS(&key, "traceState")) {
                ONCE(seen, 2);
                TRY(read_str(st, &tstate));
            } else if (TOK_IS(&key, "attributes")) {
                ONCE(seen, 3);
                TRY(put_kvlist(st, &st->tmp, 2, KV_PLAIN, NULL, NULL));
            } else if (TOK_IS(&key, "droppedAttributesCount")) {
                ONCE(seen, 4);
                TRY(read_i64(st, &dropped));
            } else if (TOK_IS(&key, "flags")) {
                ONCE(seen, 5);
                TRY(read_i64(st, &flags));
            } else {
                TRY(skip_value(st, 1));
            }
            TRY(obj_next(st, &key, &h2));
        }
        if (!(seen & 8)) TRY(buf_lit(&st->tmp, "{}"));
        if (!first) TRY(buf_putc(out, ','));
        first = 0;
        TRY(buf_lit(out, "{\"trace_id\":"));
        TRY(put_any_link_id(out, &tid, 32));
        TRY(buf_lit(out, ",\"span_id\":"));
        TRY(put_any_link_id(out, &sid, 16));
        TRY(buf_lit(out, ",\"trace_state\":"));
        TRY(put_json_str(out, &tstate));
        TRY(buf_lit(out, ",\"attributes\":"));
        TRY(buf_put(out, st->tmp.p, st->tmp.len));
        TRY(buf_lit(out, ",\"dropped_attributes_count\":"));
        TRY(buf_i64(out, dropped));
        TRY(buf_lit(out, ",\"flags\":"));
        TRY(buf_i64(out, flags));
        TRY(buf_putc(out, '}'));
        TRY(arr_next(st, &has));
    }
    return buf_putc(out, ']');
}

/* ---- spans --------------------------------------------------------------------------------- */

#if !defined(__SSE2__)
/* 1 + the value of a lowercase hex digit, 0 for any other byte */
static const unsigned char LHEX[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9,
    ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};
#endif

/* lowercase hex of exactly `width` characters, not all zeros (the column check of the fast path) */
static int canonical_id(const Tok *t, size_t width) {
    if (t->esc || t->n != width) return 0;
#if defined(__SSE2__)
    /* 16 bytes at a time (width is 16 or 32): '0'-'9' or 'a'-'f', and some byte not '0' */
    int bad = 0, zeros = 0xFFFF;
    for (size_t k = 0; k < width; k += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(t->s + k));
        /* c in [lo, lo + n) <=> (signed)(c - lo - 128) < n - 128 */
        __m128i digit = _mm_cmplt_epi8(_mm_sub_epi8(x, _mm_set1_epi8((char)('0' + 128))), _mm_set1_epi8(10 - 128));
        __m128i lower = _mm_cmplt_epi8(_mm_sub_epi8(x, _mm_set1_epi8((char)('a' + 128))), _mm_set1_epi8(6 - 128));
        bad |= _mm_movemask_epi8(_mm_or_si128(digit, lower)) ^ 0xFFFF;
        zeros &= _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('0')));
    }
    return !bad && zeros != 0xFFFF;
#else
    unsigned ok = 1, nonzero = 0;
    for (size_t k = 0; k < width; k++) {
        unsigned h = LHEX[t->s[k]];
        ok &= h != 0;
        nonzero |= h > 1;
    }
    return ok && nonzero;
#endif
}

/* A promoted column is null on most rows: it is written only where a span has its attribute,
   after null rows up to there (scol_pad / icol_pad), and padded to the block's rows at the end. */
static int scol_pad(SCol *c, size_t rows) {
    size_t k = rows - c->valid.len;
    if (!k) return ST_OK;
    if (c->data.len > INT32_MAX) return ST_BAIL;
    int32_t off = (int32_t)c->data.len;
    TRY(buf_grow(&c->offs, k * sizeof off));
    TRY(buf_grow(&c->valid, k));
    for (size_t j = 0; j < k; j++) memcpy(c->offs.p + c->offs.len + j * sizeof off, &off, sizeof off);
    c->offs.len += k * sizeof off;
    memset(c->valid.p + c->valid.len, 0, k);
    c->valid.len += k;
    return ST_OK;
}

static int icol_pad(ICol *c, size_t rows) {
    size_t k = rows - c->valid.len;
    if (!k) return ST_OK;
    TRY(buf_grow(&c->vals, k * sizeof(int64_t)));
    TRY(buf_grow(&c->valid, k));
    memset(c->vals.p + c->vals.len, 0, k * sizeof(int64_t));
    c->vals.len += k * sizeof(int64_t);
    memset(c->valid.p + c->valid.len, 0, k);
    c->valid.len += k;
    return ST_OK;
}

static int put_promoted(Scan *st) {
    const Promoted *pr = st->prom;
    size_t row = (size_t)st->rows;
    for (uint32_t m = st->hit_mask; m; m &= m - 1) {
        int c = __builtin_ctz(m);
        PHit *h = &st->hits[c];
        if (pr->is_int[c]) {
            ICol *col = &st->pi[c];
            TRY(icol_pad(col, row));
            switch (h->v.kind) {
            case V_INT:
                TRY(icol_put(col, h->v.i, h->v.i >= INT32_MIN && h->v.i <= INT32_MAX));
                break;
            case V_BOOL:
                TRY(icol_put(col, h->v.i, 1));
                break;
            case V_DBL: {
                double d = h->v.d;
                if (isfinite(d) && trunc(d) >= -2147483648.0 && trunc(d) < 2147483648.0)
                    TRY(icol_put(col, (int64_t)trunc(d), 1));
                else
                    TRY(icol_put(col, 0, 0));
                break;
            }
            case V_COMPLEX:
                TRY(icol_put(col, 0, 0));
                break;
            default:  /* a string: int() of it is Python's business */
                return ST_BAIL;
            }
        } else {
            SCol *col = &st->ps[c];
            TRY(scol_pad(col, row));
            if (h->v.kind == V_STR) {
                TRY(put_decoded(&col->data, &h->v.str));
                TRY(scol_end_row(col, 1));
            } else {  /* its JSON text, as msgspec encodes the value */
                TRY(buf_put(&col->data, h->json->p + h->v.off, h->v.len));
                TRY(scol_end_row(col, 1));
            }
        }
    }
    return ST_OK;
}

static int put_exc(Scan *st, SCol *col, const Val *v) {
    if (!st->exc_seen || v->kind == V_NULL) return scol_null(col);
    TRY(put_decoded(&col->data, &v->str));
    return scol_end_row(col, 1);
}

static int span(Scan *st) {
    Tok key, tid = {0}, sid = {0}, parent = {(const unsigned char *)"", 0, 0}, tstate = parent, name = parent,
        smsg = parent;
    int has, have_tid = 0, have_sid = 0, have_start = 0, have_end = 0;
    unsigned seen = 0;
    int64_t flags = 0, da = 0, de = 0, dl = 0, kind = 0, start = 0, end = 0, scode = 0;
    SCol *s = st->s;
    st->hit_mask = 0;
    st->exc_seen = 0;
    st->karena_len = 0;
    TRY(obj_first(st, &key, &has));
    while (has) {
        if (key.esc) return ST_BAIL;
        switch (key.n) {  /* dispatch on length first */
        default:
            goto unknown;
        case 7:
            if (TOK_IS(&key, "traceId")) { ONCE(seen, 0); TRY(read_str(st, &tid)); have_tid = 1; break; }
            goto unknown;
        case 6:
            if (TOK_IS(&key, "spanId")) { ONCE(seen, 1); TRY(read_str(st, &sid)); have_sid = 1; break; }
            if (TOK_IS(&key, "events")) {
                ONCE(seen, 2);
                TRY(put_events(st, &s[S_EVENTS].data));
                break;
            }
            if (TOK_IS(&key, "status")) {
                ONCE(seen, 3);
                if (is_null(st)) break;
                Tok k2;
                int h2;
                unsigned seen2 = 0;
                TRY(obj_first(st, &k2, &h2));
                while (h2) {
                    if (k2.esc) return ST_BAIL;
                    if (TOK_IS(&k2, "code")) {
                        ONCE(seen2, 0);
                        if (peek(st) == '"') TRY(enum_name(st, "STATUS_CODE_", STATUS_NAMES, 3, &scode));
                        else TRY(read_i64(st, &scode));
                    }
                    else if (TOK_IS(&k2, "message")) { ONCE(seen2, 1); TRY(read_str(st, &smsg)); }
                    else TRY(skip_value(st, 1));
                    TRY(obj_next(st, &k2, &h2));
                }
                if (scode < 0 || scode > 2) return ST_BAIL;
                break;
            }
            goto unknown;
        case 10:
            if (TOK_IS(&key, "traceState")) { ONCE(seen, 4); TRY(read_str(st, &tstate)); break; }
            if (TOK_IS(&key, "attributes")) {
                ONCE(seen, 5);
                TRY(put_kvlist(st, &s[S_ATTRS].data, 1, KV_PROMOTE, NULL, NULL));
                break;
            }
            goto unknown;
        case 12:
            if (TOK_IS(&key, "parentSpanId")) { ONCE(seen, 6); TRY(read_str(st, &parent)); break; }
            goto unknown;
        case 5:
            if (TOK_IS(&key, "flags")) { ONCE(seen, 7); TRY(read_i64(st, &flags)); break; }
            if (TOK_IS(&key, "links")) {
                ONCE(seen, 8);
                TRY(put_links(st, &s[S_LINKS].data));
                break;
            }
            goto unknown;
        case 4:
            if (TOK_IS(&key, "name")) { ONCE(seen, 9); TRY(read_str(st, &name)); break; }
            if (TOK_IS(&key, "kind")) {
                ONCE(seen, 10);
                if (peek(st) == '"') TRY(enum_name(st, "SPAN_KIND_", KIND_NAMES, 6, &kind));  /* Tempo's */
                else TRY(read_i64(st, &kind));
                break;
            }
            goto unknown;
        case 17:
            if (TOK_IS(&key, "startTimeUnixNano")) {
                ONCE(seen, 11);
                TRY(read_time(st, &start));
                have_start = 1;
                break;
            }
            goto unknown;
        case 15:
            if (TOK_IS(&key, "endTimeUnixNano")) {
                ONCE(seen, 12);
                if (!is_null(st)) {
                    TRY(read_time(st, &end));
                    have_end = 1;
                }
                break;
            }
            goto unknown;
        case 22:
            if (TOK_IS(&key, "droppedAttributesCount")) { ONCE(seen, 13); TRY(read_i64(st, &da)); break; }
            goto unknown;
        case 18:
            if (TOK_IS(&key, "droppedEventsCount")) { ONCE(seen, 14); TRY(read_i64(st, &de)); break; }
            goto unknown;
        }
        goto next;
    unknown:
        if (key.n == 17 && TOK_IS(&key, "droppedLinksCount")) {
            ONCE(seen, 15);
            TRY(read_i64(st, &dl));
        } else {
            TRY(skip_value(st, 1));
        }
    next:
        TRY(obj_next(st, &key, &has));
    }
    if (!have_tid || !have_sid || !have_start) return ST_BAIL;
    /* ids: lowercase hex as they are; upper-case hex and base64 (Tempo, grpc-gateway) converted; else declined */
    char tid_hex[32], sid_hex[16], pid_hex[16];
    const char *tid_out = (const char *)tid.s, *sid_out = (const char *)sid.s;
    if (!canonical_id(&tid, 32)) {
        if (any_id(&tid, 32, tid_hex) != B64_ID) return ST_BAIL;
        tid_out = tid_hex;
    }
    if (!canonical_id(&sid, 16)) {
        if (any_id(&sid, 16, sid_hex) != B64_ID) return ST_BAIL;
        sid_out = sid_hex;
    }
    if (kind < 0 || kind > 5) return ST_BAIL;
    if ((flags | da | de | dl) < 0 || (flags | da | de | dl) >= ((int64_t)1 << 31)) return ST_BAIL;
    if (!have_end) end = start;

    /* the row */
    TRY(scol_bytes(&s[S_TRACE], tid_out, 32));
    TRY(scol_bytes(&s[S_SPAN], sid_out, 16));
    int pb;
    if (parent.n == 0 || (parent.n == 16 && !memcmp(parent.s, "0000000000000000", 16))) {
        TRY(scol_null(&s[S_PARENT]));  /* a root: "" or all zeros */
    } else if (canonical_id(&parent, 16)) {
        TRY(scol_bytes(&s[S_PARENT], (const char *)parent.s, 16));
    } else if ((pb = any_id(&parent, 16, pid_hex)) == B64_ID) {
        TRY(scol_bytes(&s[S_PARENT], pid_hex, 16));
    } else if (pb == B64_ZERO) {
        TRY(scol_null(&s[S_PARENT]));
    } else {
        return ST_BAIL;
    }
    if (tstate.n) { TRY(put_decoded(&s[S_TSTATE].data, &tstate)); TRY(scol_end_row(&s[S_TSTATE], 1)); }
    else TRY(scol_null(&s[S_TSTATE]));
    TRY(put_decoded(&s[S_NAME].data, &name));
    TRY(scol_end_row(&s[S_NAME], 1));
    if (smsg.n) { TRY(put_decoded(&s[S_SMSG].data, &smsg)); TRY(scol_end_row(&s[S_SMSG], 1)); }
    else TRY(scol_null(&s[S_SMSG]));
    if (!(seen & (1u << 5))) TRY(buf_lit(&s[S_ATTRS].data, "{}"));
    TRY(scol_end_row(&s[S_ATTRS], 1));
    if (!(seen & (1u << 2))) TRY(buf_lit(&s[S_EVENTS].data, "[]"));
    TRY(scol_end_row(&s[S_EVENTS], 1));
    if (!(seen & (1u << 8))) TRY(buf_lit(&s[S_LINKS].data, "[]"));
    TRY(scol_end_row(&s[S_LINKS], 1));
    if (end < start) {  /* otlp_model.WARN_END_BEFORE_START */
        TRY(buf_lit(&s[S_WARN].data, "[\"end time before start time\"]"));
        TRY(scol_end_row(&s[S_WARN], 1));
    } else {
        TRY(scol_null(&s[S_WARN]));
    }
    TRY(put_exc(st, &s[S_EXCT], &st->exc_type));
    TRY(put_exc(st, &s[S_EXCM], &st->exc_msg));
    TRY(icol_put(&st->i[I_KIND], kind, 1));
    TRY(icol_put(&st->i[I_START], start, 1));
    TRY(icol_put(&st->i[I_END], end, 1));
    TRY(icol_put(&st->i[I_STATUS], scode, 1));
    TRY(icol_put(&st->i[I_FLAGS], flags, 1));
    TRY(icol_put(&st->i[I_DATTR], da, 1));
    TRY(icol_put(&st->i[I_DEV], de, 1));
    TRY(icol_put(&st->i[I_DLINK], dl, 1));
    TRY(put_promoted(st));
    st->rows++;
    return ST_OK;
}

/* ---- log records --------------------------------------------------------------------------- */

static const Tok EMPTY_TOK = {(const unsigned char *)"", 0, 0};

/* "" -> null; lowercase hex of the width, not all zeros -> itself; other hex or base64 (any_id), not
   all zeros -> lowercase hex; anything else declines */
static int put_log_id(SCol *col, const Tok *t, size_t width) {
    if (!t->n) return scol_null(col);
    if (canonical_id(t, width)) return scol_bytes(col, (const char *)t->s, width);
    char out[32];
    if (any_id(t, width, out) != B64_ID) return ST_BAIL;
    return scol_bytes(col, out, width);
}

static int put_text_or_null(SCol *col, const Tok *t) {
    if (!t->n) return scol_null(col);
    TRY(put_decoded(&col->data, t));
    return scol_end_row(col, 1);
}

static int log_record(Scan *st) {
    Tok key, stext = EMPTY_TOK, tid = EMPTY_TOK, sid = EMPTY_TOK, ename = EMPTY_TOK;
    int64_t t = 0, ot = 0, sev = 0, flags = 0, dropped = 0;
    unsigned seen = 0;
    int has;
    Val body = {V_NULL};
    SCol *l = st->l;
    st->karena_len = 0;
    st->tmp.len = 0;
    TRY(obj_first(st, &key, &has));
    while (has) {
        if (key.esc) return ST_BAIL;
        if (TOK_IS(&key, "timeUnixNano")) { ONCE(seen, 0); TRY(read_time(st, &t)); }
        else if (TOK_IS(&key, "observedTimeUnixNano")) { ONCE(seen, 1); TRY(read_time(st, &ot)); }
        else if (TOK_IS(&key, "severityNumber")) { ONCE(seen, 2); TRY(read_severity(st, &sev)); }
        else if (TOK_IS(&key, "severityText")) { ONCE(seen, 3); TRY(read_str(st, &stext)); }
        else if (TOK_IS(&key, "body")) { ONCE(seen, 4); TRY(put_any(st, &st->tmp, 1, &body, 1)); }
        else if (TOK_IS(&key, "attributes")) {
            ONCE(seen, 5);
            TRY(put_kvlist(st, &l[L_ATTRS].data, 1, KV_PLAIN, NULL, NULL));
        }
        else if (TOK_IS(&key, "droppedAttributesCount")) { ONCE(seen, 6); TRY(read_i64(st, &dropped)); }
        else if (TOK_IS(&key, "flags")) { ONCE(seen, 7); TRY(read_i64(st, &flags)); }
        else if (TOK_IS(&key, "traceId")) { ONCE(seen, 8); TRY(read_str(st, &tid)); }
        else if (TOK_IS(&key, "spanId")) { ONCE(seen, 9); TRY(read_str(st, &sid)); }
        else if (TOK_IS(&key, "eventName")) { ONCE(seen, 10); TRY(read_str(st, &ename)); }
        else TRY(skip_value(st, 1));
        TRY(obj_next(st, &key, &has));
    }
    if ((sev | flags | dropped) < 0 || (sev | flags | dropped) >= ((int64_t)1 << 31)) return ST_BAIL;
    if (!(seen & (1u << 5))) TRY(buf_lit(&l[L_ATTRS].data, "{}"));
    TRY(scol_end_row(&l[L_ATTRS], 1));
    TRY(put_text_or_null(&l[L_SEVTEXT], &stext));
    if (body.kind == V_NULL) {
        TRY(scol_null(&l[L_BODY]));
    } else if (body.kind == V_STR) {  /* stringValue (or bytesValue's text) as it is */
        TRY(put_decoded(&l[L_BODY].data, &body.str));
        TRY(scol_end_row(&l[L_BODY], 1));
    } else {  /* anything else as its JSON text */
        TRY(scol_bytes(&l[L_BODY], st->tmp.p + body.off, body.len));
    }
    TRY(put_log_id(&l[L_TRACE], &tid, 32));
    TRY(put_log_id(&l[L_SPAN], &sid, 16));
    TRY(put_text_or_null(&l[L_EVENT], &ename));
    int64_t when = t ? t : ot;
    TRY(icol_put(&st->li[LI_TIME], when, when != 0));
    TRY(icol_put(&st->li[LI_OTIME], ot, ot != 0));
    TRY(icol_put(&st->li[LI_SEV], sev, 1));
    TRY(icol_put(&st->li[LI_FLAGS], flags, 1));
    TRY(icol_put(&st->li[LI_DROP], dropped, 1));
    st->lrows++;
    return ST_OK;
}

static int raw_value(Scan *st, Py_ssize_t *off, Py_ssize_t *len) {
    ws(st);
    const unsigned char *s = st->p;
    int c = peek(st);
    if (c != '{' && c != 'n') return ST_BAIL;  /* an object or null; anything else: the Python tiers */
    TRY(skip_value(st, 1));
    *off = (Py_ssize_t)(s - st->base);
    *len = (Py_ssize_t)(st->p - s);
    return ST_OK;
}

/* what differs between the span and the log halves of a document */
typedef struct {
    const char *scopes, *legacy_scopes, *records;  /* "scopeSpans", "instrumentationLibrarySpans", "spans" */
    int (*record)(Scan *);
    int logs;                                      /* rows and groups: st->lrows/lgroups, else rows/groups */
} Signal;

static const Signal SPANS = {"scopeSpans", "instrumentationLibrarySpans", "spans", span, 0};
static const Signal LOGS = {"scopeLogs", "instrumentationLibraryLogs", "logRecords", log_record, 1};

static inline int key_eq(const Tok *t, const char *lit) { return tok_is(t, lit, strlen(lit)); }

/* one scopeSpans / scopeLogs object: its records, and their group (if any) */
static int scope_group(Scan *st, const Signal *sig, int64_t line, Py_ssize_t res_off, Py_ssize_t res_len) {
    Tok key;
    int has;
    unsigned seen = 0;
    Group g = {line, res_off, res_len, -1, 0, -1, 0, 0, -1};
    Py_ssize_t *rows = sig->logs ? &st->lrows : &st->rows;
    Py_ssize_t rows0 = *rows;
    TRY(obj_first(st, &key, &has));
    while (has) {
        if (key.esc) return ST_BAIL;
        if (TOK_IS(&key, "scope")) {
            ONCE(seen, 0);
            TRY(raw_value(st, &g.scope_off, &g.scope_len));
        } else if (TOK_IS(&key, "instrumentationLibrary")) {
            ONCE(seen, 1);
            TRY(raw_value(st, &g.lib_off, &g.lib_len));
        } else if (key_eq(&key, sig->records)) {
            ONCE(seen, 2);
            int h2;
            TRY(arr_first(st, &h2));
            while (h2) {
                TRY(sig->record(st));
                TRY(arr_next(st, &h2));
            }
            g.records_end = (Py_ssize_t)(st->p - st->base);
        } else {
            TRY(skip_value(st, 1));
        }
        TRY(obj_next(st, &key, &has));
    }
    g.count = *rows - rows0;
    if (g.count) TRY(buf_put(sig->logs ? &st->lgroups : &st->groups, &g, sizeof g));
    return ST_OK;
}

static int scope_groups(Scan *st, const Signal *sig, int64_t line, Py_ssize_t res_off, Py_ssize_t res_len) {
    int h2;
    TRY(arr_first(st, &h2));
    while (h2) {
        TRY(scope_group(st, sig, line, res_off, res_len));
        TRY(arr_next(st, &h2));
    }
    return ST_OK;
}

/* one resourceSpans / resourceLogs object */
static int resource_group(Scan *st, const Signal *sig, int64_t line) {
    Tok key;
    int has;
    unsigned seen = 0;
    Py_ssize_t res_off = -1, res_len = 0;
    const unsigned char *scopes = NULL;
    TRY(obj_first(st, &key, &has));
    while (has) {
        if (key.esc) return ST_BAIL;
        if (TOK_IS(&key, "resource")) {
            ONCE(seen, 0);
            TRY(raw_value(st, &res_off, &res_len));
        } else if (key_eq(&key, sig->scopes) || key_eq(&key, sig->legacy_scopes)) {
            /* the legacy name alone reads like the current one; both in one object: which one
               counts (the first non-empty) is the Python tiers' business */
            ONCE(seen, 1);
            if (seen & 1) {  /* the resource is known: read the scopes now */
                TRY(scope_groups(st, sig, line, res_off, res_len));
            } else {  /* read after the resource, which may come later */
                scopes = st->p;
                TRY(skip_value(st, 1));
            }
        } else {
            TRY(skip_value(st, 1));
        }
        TRY(obj_next(st, &key, &has));
    }
    if (scopes) {
        const unsigned char *resume = st->p;
        st->p = scopes;
        TRY(scope_groups(st, sig, line, res_off, res_len));
        st->p = resume;
    }
    return ST_OK;
}

static int line_doc(Scan *st, int64_t line) {
    Tok key;
    int has;
    unsigned seen = 0;
    TRY(obj_first(st, &key, &has));
    while (has) {
        if (key.esc) return ST_BAIL;
        const Signal *sig = NULL;
        if (TOK_IS(&key, "resourceSpans") || TOK_IS(&key, "batches")) {
            ONCE(seen, 0);  /* Tempo's "batches" holds resourceSpans; both in one line: the Python tiers */
            sig = &SPANS;
        } else if (TOK_IS(&key, "resourceLogs")) {
            ONCE(seen, 1);
            sig = &LOGS;
        } else if (TOK_IS(&key, "result")) {
            return ST_BAIL;  /* Jaeger API v3's wrapper: the Python tiers */
        }
        if (sig) {
            int h2;
            TRY(arr_first(st, &h2));
            while (h2) {
                TRY(resource_group(st, sig, line));
                TRY(arr_next(st, &h2));
            }
        } else {
            TRY(skip_value(st, 1));
        }
        TRY(obj_next(st, &key, &has));
    }
    if (peek(st) != -1) return ST_BAIL;  /* trailing text */
    return ST_OK;
}

/* ---- rollback ------------------------------------------------------------------------------ */

typedef struct { size_t data, offs, valid; } SMark;
typedef struct { size_t vals, valid; } IMark;
typedef struct {
    Py_ssize_t rows, lrows;
    size_t groups, lgroups;
    SMark s[N_SFIXED], ps[MAX_PROMOTED_COLS], l[N_LS];
    IMark i[N_IFIXED], pi[MAX_PROMOTED_COLS], li[N_LI];
} Mark;

static void smark(const SCol *c, SMark *m) { m->data = c->data.len; m->offs = c->offs.len; m->valid = c->valid.len; }
static void sundo(SCol *c, const SMark *m) { c->data.len = m->data; c->offs.len = m->offs; c->valid.len = m->valid; }
static void imark(const ICol *c, IMark *m) { m->vals = c->vals.len; m->valid = c->valid.len; }
static void iundo(ICol *c, const IMark *m) { c->vals.len = m->vals; c->valid.len = m->valid; }

static void mark(Scan *st, Mark *m) {
    m->rows = st->rows;
    m->groups = st->groups.len;
    m->lrows = st->lrows;
    m->lgroups = st->lgroups.len;
    for (int k = 0; k < N_LS; k++) smark(&st->l[k], &m->l[k]);
    for (int k = 0; k < N_LI; k++) imark(&st->li[k], &m->li[k]);
    for (int k = 0; k < N_SFIXED; k++) smark(&st->s[k], &m->s[k]);
    for (int k = 0; k < N_IFIXED; k++) imark(&st->i[k], &m->i[k]);
    for (int k = 0; k < st->prom->ncols; k++) {
        smark(&st->ps[k], &m->ps[k]);
        imark(&st->pi[k], &m->pi[k]);
    }
}

static void undo(Scan *st, const Mark *m) {
    st->rows = m->rows;
    st->groups.len = m->groups;
    st->lrows = m->lrows;
    st->lgroups.len = m->lgroups;
    for (int k = 0; k < N_LS; k++) sundo(&st->l[k], &m->l[k]);
    for (int k = 0; k < N_LI; k++) iundo(&st->li[k], &m->li[k]);
    for (int k = 0; k < N_SFIXED; k++) sundo(&st->s[k], &m->s[k]);
    for (int k = 0; k < N_IFIXED; k++) iundo(&st->i[k], &m->i[k]);
    for (int k = 0; k < st->prom->ncols; k++) {
        sundo(&st->ps[k], &m->ps[k]);
        iundo(&st->pi[k], &m->pi[k]);
    }
}

/* ---- Python glue --------------------------------------------------------------------------- */

static void scol_hint(SCol *c, size_t rows, size_t data) {
    c->offs.hint = (rows + 1) * sizeof(int32_t);
    c->valid.hint = rows;
    c->data.hint = data;
}

static void icol_hint(ICol *c, size_t rows) {
    c->vals.hint = rows * sizeof(int64_t);
    c->valid.hint = rows;
}

/* first allocations for a block of `len` bytes: a span takes 100 bytes at least (its ids and
   start time), a log record hardly fewer; a column's text is a fraction of the block's */
static void size_hints(Scan *st, size_t len) {
    size_t rows = len / 100 + 16, data = len / 8;
    for (int k = 0; k < N_SFIXED; k++) scol_hint(&st->s[k], rows, data);
    scol_hint(&st->s[S_TRACE], rows, rows * 32);
    scol_hint(&st->s[S_SPAN], rows, rows * 16);
    scol_hint(&st->s[S_PARENT], rows, rows * 16);
    scol_hint(&st->s[S_ATTRS], rows, len / 2);
    scol_hint(&st->s[S_EVENTS], rows, len / 4);
    for (int k = 0; k < N_IFIXED; k++) icol_hint(&st->i[k], rows);
    for (int k = 0; k < st->prom->ncols; k++) {
        scol_hint(&st->ps[k], rows, data / 4);
        icol_hint(&st->pi[k], rows);
    }
    for (int k = 0; k < N_LS; k++) scol_hint(&st->l[k], rows, data);
    scol_hint(&st->l[L_ATTRS], rows, len / 2);
    scol_hint(&st->l[L_BODY], rows, len / 2);
    for (int k = 0; k < N_LI; k++) icol_hint(&st->li[k], rows);
}

static void scan_free(Scan *st) {
    for (int k = 0; k < N_SFIXED; k++) { buf_free(&st->s[k].data); buf_free(&st->s[k].offs); buf_free(&st->s[k].valid); }
    for (int k = 0; k < N_IFIXED; k++) { buf_free(&st->i[k].vals); buf_free(&st->i[k].valid); }
    for (int k = 0; k < MAX_PROMOTED_COLS; k++) {
        buf_free(&st->ps[k].data); buf_free(&st->ps[k].offs); buf_free(&st->ps[k].valid);
        buf_free(&st->pi[k].vals); buf_free(&st->pi[k].valid);
    }
    for (int k = 0; k < N_LS; k++) { buf_free(&st->l[k].data); buf_free(&st->l[k].offs); buf_free(&st->l[k].valid); }
    for (int k = 0; k < N_LI; k++) { buf_free(&st->li[k].vals); buf_free(&st->li[k].valid); }
    buf_free(&st->groups);
    buf_free(&st->lgroups);
    buf_free(&st->tmp);
}

/* validity bytes -> an Arrow bitmap (bytes), or None when every row is valid */
static PyObject *bitmap(const Buf *valid, Py_ssize_t n) {
    if (!n || !memchr(valid->p, 0, (size_t)n)) Py_RETURN_NONE;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (n + 7) / 8);
    if (!out) return NULL;
    unsigned char *bits = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t k = 0;
    for (; k + 8 <= n; k += 8) {  /* eight 0/1 bytes -> one byte, byte j to bit j */
        uint64_t x;
        memcpy(&x, valid->p + k, 8);
        bits[k >> 3] = (unsigned char)((x * 0x0102040810204080ULL) >> 56);
    }
    if (k < n) {
        unsigned char last = 0;
        for (Py_ssize_t j = k; j < n; j++)
            if (valid->p[j]) last |= (unsigned char)(1u << (j - k));
        bits[k >> 3] = last;
    }
    return out;
}

/* A buffer handed to Python without a copy: exports the memory of a Buf it took over. */
typedef struct {
    PyObject_HEAD
    char *p;
    Py_ssize_t len;
} Blob;

static int blob_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    Blob *b = (Blob *)self;
    return PyBuffer_FillInfo(view, self, b->p, b->len, 1, flags);
}

static void blob_dealloc(PyObject *self) {
    PyMem_RawFree(((Blob *)self)->p);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs blob_as_buffer = {blob_getbuffer, NULL};

static PyTypeObject BlobType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_otlpscan.Blob",
    .tp_basicsize = sizeof(Blob),
    .tp_dealloc = blob_dealloc,
    .tp_as_buffer = &blob_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Column memory of a scan, exported without a copy.",
};

/* the Buf's memory as a Blob (the Buf is left empty) */
static PyObject *bytes_of(Buf *b) {
    if (!b->len) return PyBytes_FromStringAndSize("", 0);
    Blob *blob = PyObject_New(Blob, &BlobType);
    if (!blob) return NULL;
    char *p = PyMem_RawRealloc(b->p, b->len);  /* give back the doubling's slack */
    blob->p = p ? p : b->p;
    blob->len = (Py_ssize_t)b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return (PyObject *)blob;
}

static PyObject *scol_tuple(SCol *c, Py_ssize_t n) {
    PyObject *bm = bitmap(&c->valid, n);
    if (!bm) return NULL;
    return Py_BuildValue("(NNN)", bm, bytes_of(&c->offs), bytes_of(&c->data));
}

static PyObject *icol_tuple(ICol *c, Py_ssize_t n) {
    PyObject *bm = bitmap(&c->valid, n);
    if (!bm) return NULL;
    return Py_BuildValue("(NN)", bm, bytes_of(&c->vals));
}

/* (line, resource_off, resource_len, scope_off, scope_len, lib_off, lib_len, rows, records_end) a group */
static PyObject *group_list(const Buf *gb) {
    Py_ssize_t ng = (Py_ssize_t)(gb->len / sizeof(Group));
    PyObject *out = PyList_New(ng);
    if (!out) return NULL;
    const Group *gs = (const Group *)gb->p;
    for (Py_ssize_t k = 0; k < ng; k++) {
        const Group *g = &gs[k];
        PyObject *t = Py_BuildValue("(Lnnnnnnnn)", (long long)g->line, g->res_off, g->res_len, g->scope_off,
                                    g->scope_len, g->lib_off, g->lib_len, g->count, g->records_end);
        if (!t) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k, t);
    }
    return out;
}

static int named_scols(PyObject *d, SCol *cols, const char **names, int ncols, Py_ssize_t rows) {
    for (int k = 0; k < ncols; k++) {
        PyObject *t = scol_tuple(&cols[k], rows);
        if (!t || PyDict_SetItemString(d, names[k], t) < 0) {
            Py_XDECREF(t);
            return -1;
        }
        Py_DECREF(t);
    }
    return 0;
}

static int named_icols(PyObject *d, ICol *cols, const char **names, int ncols, Py_ssize_t rows) {
    for (int k = 0; k < ncols; k++) {
        PyObject *t = icol_tuple(&cols[k], rows);
        if (!t || PyDict_SetItemString(d, names[k], t) < 0) {
            Py_XDECREF(t);
            return -1;
        }
        Py_DECREF(t);
    }
    return 0;
}

static int parse_promoted(PyObject *spec, Promoted *pr) {
    /* spec: (is_int flags a column, ((name, column, priority), ...)) */
    PyObject *flags, *names;
    if (!PyArg_ParseTuple(spec, "OO", &flags, &names)) return -1;
    PyObject *fl = PySequence_Fast(flags, "promoted flags");
    PyObject *nm = fl ? PySequence_Fast(names, "promoted names") : NULL;
    if (!nm) {
        Py_XDECREF(fl);
        return -1;
    }
    int rc = -1;
    Py_ssize_t nc = PySequence_Fast_GET_SIZE(fl), nn = PySequence_Fast_GET_SIZE(nm);
    if (nc > MAX_PROMOTED_COLS || nn > MAX_PROMOTED_NAMES) {
        PyErr_SetString(PyExc_ValueError, "too many promoted columns or names");
        goto done;
    }
    pr->ncols = (int)nc;
    for (Py_ssize_t k = 0; k < nc; k++) pr->is_int[k] = PyObject_IsTrue(PySequence_Fast_GET_ITEM(fl, k));
    pr->nnames = (int)nn;
    for (Py_ssize_t k = 0; k < nn; k++) {
        const char *name;
        Py_ssize_t len;
        int col, pri;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(nm, k), "s#ii", &name, &len, &col, &pri)) goto done;
        if (len >= (Py_ssize_t)sizeof pr->names[k].name || col < 0 || col >= nc) {
            PyErr_SetString(PyExc_ValueError, "a promoted name is 63 bytes at most, its column one of the flags");
            goto done;
        }
        memcpy(pr->names[k].name, name, (size_t)len);
        pr->names[k].n = (size_t)len;
        pr->lengths |= (uint64_t)1 << len;
        pr->names[k].col = col;
        pr->names[k].pri = pri;
    }
    memset(pr->slots, -1, sizeof pr->slots);
    for (int k = 0; k < pr->nnames; k++) {
        const PName *pn = &pr->names[k];
        int dup = 0;  /* a name listed twice: the first one counts, as the linear search had it */
        for (int j = 0; j < k; j++) dup |= pr->names[j].n == pn->n && !memcmp(pr->names[j].name, pn->name, pn->n);
        if (dup) continue;
        unsigned slot = name_hash(pn->name, pn->n);
        while (pr->slots[slot] >= 0) slot = (slot + 1) & (PROMOTED_SLOTS - 1);
        pr->slots[slot] = (signed char)k;
    }
    rc = 0;
done:
    Py_DECREF(fl);
    Py_DECREF(nm);
    return rc;
}

PyDoc_STRVAR(scan_doc,
"scan(data, promoted) -> (rows, lines, groups, declined, strings, ints, pstrings, pints,\n"
"                         log_rows, log_groups, log_strings, log_ints)\n\n"
"Scan the lines of `data` (bytes-like). Lines of OTLP/JSON spans and logs in the common shape become rows;\n"
"groups: (line, resource_off, resource_len, scope_off, scope_len, lib_off, lib_len, rows,\n"
"records_end) a (resource, scope) group, offsets into data (-1: absent; records_end is one past\n"
"the ']' of its records array); declined: (line, start, end) of every\n"
"line left to the Python tiers (lines numbered from 1, blank lines of <= 2 bytes skipped).\n"
"strings/pstrings: {name or column index: (validity bitmap or None, int32 offsets, data)};\n"
"ints/pints: {name or column index: (validity bitmap or None, int64 values)}.");

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer view;
    PyObject *spec;
    if (!PyArg_ParseTuple(args, "y*O", &view, &spec)) return NULL;
    Promoted prom;
    memset(&prom, 0, sizeof prom);
    if (parse_promoted(spec, &prom) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Scan *st = PyMem_Calloc(1, sizeof(Scan));
    PyObject *declined = PyList_New(0), *result = NULL;
    if (!st || !declined) {
        PyErr_NoMemory();
        goto fail;
    }
    st->prom = &prom;
    size_hints(st, (size_t)view.len);
    int rc = ST_OK;
    for (int k = 0; k < N_SFIXED && !rc; k++) rc = scol_init(&st->s[k]);
    for (int k = 0; k < prom.ncols && !rc; k++) rc = scol_init(&st->ps[k]);
    for (int k = 0; k < N_LS && !rc; k++) rc = scol_init(&st->l[k]);
    if (rc) {
        PyErr_NoMemory();
        goto fail;
    }
    const unsigned char *data = view.buf, *end = data + view.len, *pos = data;
    st->base = data;
    int64_t line = 0;
    while (pos < end) {
        const unsigned char *nl = memchr(pos, '\n', (size_t)(end - pos));
        const unsigned char *stop = nl ? nl : end;
        line++;
        const unsigned char *start = pos;
        pos = nl ? nl + 1 : end;
        if (stop - start <= 2) {  /* blank: skipped as the Python tiers skip it */
            int blank = 1;
            for (const unsigned char *q = start; q < stop; q++)
                if (!(*q == ' ' || *q == '\t' || *q == '\r' || *q == '\f' || *q == '\v')) blank = 0;
            if (blank) continue;
        }
        Mark m;
        mark(st, &m);
        st->p = start;
        st->end = stop;
        rc = line_doc(st, line);
        if (rc == ST_NOMEM) {
            PyErr_NoMemory();
            goto fail;
        }
        if (rc == ST_BAIL) {
            undo(st, &m);
            PyObject *t = Py_BuildValue("(Lnn)", (long long)line, (Py_ssize_t)(start - data), (Py_ssize_t)(stop - data));
            if (!t || PyList_Append(declined, t) < 0) {
                Py_XDECREF(t);
                goto fail;
            }
            Py_DECREF(t);
        }
    }
    Py_ssize_t n = st->rows, nl = st->lrows;
    PyObject *groups = group_list(&st->groups), *lgroups = group_list(&st->lgroups);
    PyObject *strings = PyDict_New(), *ints = PyDict_New(), *pstrings = PyDict_New(), *pints = PyDict_New();
    PyObject *lstrings = PyDict_New(), *lints = PyDict_New();
    if (!groups || !lgroups || !strings || !ints || !pstrings || !pints || !lstrings || !lints) goto fail2;
    if (named_scols(strings, st->s, SCOL_NAMES, N_SFIXED, n) < 0) goto fail2;
    if (named_icols(ints, st->i, ICOL_NAMES, N_IFIXED, n) < 0) goto fail2;
    if (named_scols(lstrings, st->l, LSCOL_NAMES, N_LS, nl) < 0) goto fail2;
    if (named_icols(lints, st->li, LICOL_NAMES, N_LI, nl) < 0) goto fail2;
    for (int k = 0; k < prom.ncols; k++) {
        if ((prom.is_int[k] ? icol_pad(&st->pi[k], (size_t)n) : scol_pad(&st->ps[k], (size_t)n)) != ST_OK) {
            PyErr_NoMemory();
            goto fail2;
        }
        PyObject *t = prom.is_int[k] ? icol_tuple(&st->pi[k], n) : scol_tuple(&st->ps[k], n);
        PyObject *key = PyLong_FromLong(k);
        PyObject *d = prom.is_int[k] ? pints : pstrings;
        if (!t || !key || PyDict_SetItem(d, key, t) < 0) { Py_XDECREF(t); Py_XDECREF(key); goto fail2; }
        Py_DECREF(t);
        Py_DECREF(key);
    }
    result = Py_BuildValue("(nLNNNNNNnNNN)", n, (long long)line, groups, declined, strings, ints, pstrings, pints,
                           nl, lgroups, lstrings, lints);
    declined = NULL;
    scan_free(st);
    PyMem_Free(st);
    PyBuffer_Release(&view);
    return result;
fail2:
    Py_XDECREF(groups);
    Py_XDECREF(lgroups);
    Py_XDECREF(strings);
    Py_XDECREF(ints);
    Py_XDECREF(pstrings);
    Py_XDECREF(pints);
    Py_XDECREF(lstrings);
    Py_XDECREF(lints);
fail:
    Py_XDECREF(declined);
    if (st) {
        scan_free(st);
        PyMem_Free(st);
    }
    PyBuffer_Release(&view);
    return NULL;
}

PyDoc_STRVAR(format_double_doc, "format_double(x) -> bytes: x as msgspec's JSON encoder writes it (for tests).");

static PyObject *format_double(PyObject *self, PyObject *arg) {
    double d = PyFloat_AsDouble(arg);
    if (d == -1.0 && PyErr_Occurred()) return NULL;
    Buf b = {0};
    if (put_double(&b, d)) {
        buf_free(&b);
        return PyErr_NoMemory();
    }
    PyObject *out = PyBytes_FromStringAndSize(b.p, (Py_ssize_t)b.len);
    buf_free(&b);
    return out;
}

PyDoc_STRVAR(line_close_doc,
"line_close(data, start, head) -> int: the offset of the first '\\n' at or after `start` followed by\n"
"`head` (a line's indentation and a closing bracket, say b'    }'), or -1. A pretty-printed JSON value\n"
"that opens a line closes at that line's indentation: the JSON stream's guess at a value's end\n"
"(ingest/json_stream.py), found at memory speed (str.find and memmem slow to ~0.6 GB/s on the\n"
"spaces of such documents).");

static PyObject *line_close(PyObject *self, PyObject *args) {
    Py_buffer view, hv;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "y*ny*", &view, &start, &hv)) return NULL;
    const unsigned char *d = view.buf, *h = hv.buf;
    Py_ssize_t n = view.len, m = hv.len, found = -1;
    if (m < 1 || start < 0) goto done;
    /* candidates: a '\n' whose byte m further on is the head's last byte (the bracket) */
    Py_ssize_t i = start, last = n - m - 1; /* the last '\n' that can start a match */
    const unsigned char want = h[m - 1];
#if defined(__SSE2__)
    const __m128i nl = _mm_set1_epi8('\n'), br = _mm_set1_epi8((char)want);
    for (; i + 16 <= last + 1; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(d + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(d + i + m));
        unsigned bits = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, nl), _mm_cmpeq_epi8(b, br)));
        while (bits) {
            int k = __builtin_ctz(bits);
            if (!memcmp(d + i + k + 1, h, (size_t)m)) {
                found = i + k;
                goto done;
            }
            bits &= bits - 1;
        }
    }
#endif
    for (; i <= last; i++)
        if (d[i] == '\n' && d[i + m] == want && !memcmp(d + i + 1, h, (size_t)m)) {
            found = i;
            break;
        }
done:
    PyBuffer_Release(&view);
    PyBuffer_Release(&hv);
    return PyLong_FromSsize_t(found);
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {"line_close", line_close, METH_VARARGS, line_close_doc},
    {"format_double", format_double, METH_O, format_double_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_otlpscan", "The native tier of the OTLP/JSON line reader.", -1, methods,
};

PyMODINIT_FUNC PyInit__otlpscan(void) {
    if (PyType_Ready(&BlobType) < 0) return NULL;
    return PyModule_Create(&module);
}
