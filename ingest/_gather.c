/* The writer's gather of a text column's rows from the chunks they came in (ingest/arrays.py
 * `take_texts`, used by ingest/writer.py): what pyarrow.compute.take gives for a chunked string
 * column and an order of its rows, without concatenating the chunks first. Arrow's take from a
 * chunked variable-width column copies every chunk into one array and then gathers from that; the
 * writer takes each buffer in two halves, one a thread, so every text column was copied whole twice
 * before a row of it was gathered.
 *
 * `locate` finds each row's chunk once for all the columns of a table (they share their chunks'
 * lengths); `take_texts` then makes a column in two passes: the first writes the offsets (and the
 * validity bits), the second copies the bytes, short values as one or two fixed 16-byte moves where
 * the source has the room. Buffers come in through the buffer protocol; the output buffers from `alloc` (the caller
 * passes pyarrow.allocate_buffer, so they are Arrow's own memory). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    Py_buffer valid, offsets, data;
    int has_valid;
    int64_t offset, length; /* the chunk's slice of its buffers */
} chunk_t;

static void release_chunks(chunk_t *c, Py_ssize_t k) {
    for (Py_ssize_t i = 0; i < k; i++) {
        if (c[i].has_valid) PyBuffer_Release(&c[i].valid);
        PyBuffer_Release(&c[i].offsets);
        PyBuffer_Release(&c[i].data);
    }
}

/* A writable buffer of `size` bytes from `alloc`, its view in `view`. */
static PyObject *allocate(PyObject *alloc, Py_ssize_t size, Py_buffer *view) {
    PyObject *b = PyObject_CallFunction(alloc, "n", size);
    if (!b) return NULL;
    if (PyObject_GetBuffer(b, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        Py_DECREF(b);
        return NULL;
    }
    if (view->len < size) {
        PyBuffer_Release(view);
        Py_DECREF(b);
        PyErr_SetString(PyExc_ValueError, "take_texts: alloc gave a short buffer");
        return NULL;
    }
    return b;
}

/* The chunks' buffers, checked against their slices; -1 (an exception set) on a bad one. */
static int get_chunks(PyObject *tuple, chunk_t *c, Py_ssize_t *got, int *any_valid) {
    Py_ssize_t k = PyTuple_GET_SIZE(tuple);
    for (*got = 0; *got < k; (*got)++) {
        PyObject *ov, *oo, *od;
        long long offset, length;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(tuple, *got), "OOOLL;a chunk is (validity, offsets, data, offset, length)",
                              &ov, &oo, &od, &offset, &length))
            return -1;
        chunk_t *ch = &c[*got];
        if (ov != Py_None) {
            if (PyObject_GetBuffer(ov, &ch->valid, PyBUF_SIMPLE) < 0) return -1;
            ch->has_valid = 1;
        }
        if (PyObject_GetBuffer(oo, &ch->offsets, PyBUF_SIMPLE) < 0) goto fail_valid;
        if (PyObject_GetBuffer(od, &ch->data, PyBUF_SIMPLE) < 0) goto fail_offsets;
        if (offset < 0 || length < 0 || (offset + length + 1) * 4 > ch->offsets.len ||
            (ch->has_valid && (offset + length + 7) / 8 > ch->valid.len)) {
            PyErr_SetString(PyExc_ValueError, "take_texts: a chunk's buffers are shorter than its rows");
            (*got)++; /* its buffers are held: released with the others */
            return -1;
        }
        ch->offset = offset;
        ch->length = length;
        *any_valid |= ch->has_valid;
        continue;
    fail_offsets:
        PyBuffer_Release(&ch->offsets);
    fail_valid:
        if (ch->has_valid) PyBuffer_Release(&ch->valid);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(locate_doc,
             "locate(lengths, order, where): where[i] = chunk << 32 | row within the chunk, of row order[i]\n\n"
             "lengths: the chunks' row counts (int64); order: row numbers across the chunks (8-byte items);\n"
             "where: uint64, as many. IndexError for a row past the chunks.");

/* Once for all the columns a table's rows are taken from (they share their chunks' lengths): a
   binary search a row (the rows of a sort alternate between chunks) was a third of a take's time. */
static PyObject *locate(PyObject *self, PyObject *args) {
    PyObject *ol, *oo, *ow;
    if (!PyArg_ParseTuple(args, "OOO", &ol, &oo, &ow)) return NULL;
    Py_buffer lb = {0}, ob = {0}, wb = {0};
    PyObject *result = NULL;
    int64_t *starts = NULL;
    if (PyObject_GetBuffer(ol, &lb, PyBUF_C_CONTIGUOUS) < 0) goto done;
    if (PyObject_GetBuffer(oo, &ob, PyBUF_C_CONTIGUOUS) < 0) goto done;
    if (PyObject_GetBuffer(ow, &wb, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) goto done;
    if (lb.itemsize != 8 || ob.itemsize != 8 || wb.itemsize != 8 || wb.len != ob.len || !lb.len) {
        PyErr_SetString(PyExc_ValueError, "locate: 8-byte lengths, and as many places as rows");
        goto done;
    }
    Py_ssize_t k = lb.len / 8, n = ob.len / 8;
    const int64_t *lengths = lb.buf, *order = ob.buf;
    uint64_t *where = wb.buf;
    if (!(starts = PyMem_Malloc(sizeof(int64_t) * (size_t)(k + 1)))) {
        PyErr_NoMemory();
        goto done;
    }
    starts[0] = 0;
    for (Py_ssize_t c = 0; c < k; c++) {
        if (lengths[c] < 0 || lengths[c] > UINT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "locate: a chunk's length out of range");
            goto done;
        }
        starts[c + 1] = starts[c] + lengths[c];
    }
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t last = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t row = order[i];
        if (row < 0 || row >= starts[k]) {
            bad = 1;
            break;
        }
        if (row < starts[last] || row >= starts[last + 1]) { /* the last chunk that starts at or before it */
            Py_ssize_t lo = 0, hi = k - 1;
            while (lo < hi) {
                Py_ssize_t mid = (lo + hi + 1) / 2;
                if (starts[mid] <= row)
                    lo = mid;
                else
                    hi = mid - 1;
            }
            last = lo;
        }
        where[i] = (uint64_t)last << 32 | (uint64_t)(row - starts[last]);
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_IndexError, "locate: a row past the column");
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(starts);
    if (wb.obj) PyBuffer_Release(&wb);
    if (ob.obj) PyBuffer_Release(&ob);
    if (lb.obj) PyBuffer_Release(&lb);
    return result;
}

PyDoc_STRVAR(take_texts_doc,
             "take_texts(chunks, where, alloc) -> (validity | None, offsets, data, null_count)\n\n"
             "The rows `where` (from `locate`: chunk << 32 | row within it) of a string or binary column with\n"
             "int32 offsets, whose chunks are (validity | None, offsets, data, offset, length) as Arrow has\n"
             "them; the new buffers come from alloc(size). IndexError for a place outside the chunks,\n"
             "ValueError for buffers that do not hold their rows, OverflowError when the rows' bytes pass\n"
             "2 GiB.");

static PyObject *take_texts(PyObject *self, PyObject *args) {
    PyObject *ochunks, *oorder, *alloc;
    if (!PyArg_ParseTuple(args, "O!OO", &PyTuple_Type, &ochunks, &oorder, &alloc)) return NULL;
    Py_ssize_t k = PyTuple_GET_SIZE(ochunks);
    if (k < 1) {
        PyErr_SetString(PyExc_ValueError, "take_texts: no chunks");
        return NULL;
    }
    chunk_t *c = PyMem_Calloc((size_t)k, sizeof(chunk_t));
    if (!c) return PyErr_NoMemory();
    Py_ssize_t got = 0;
    int any_valid = 0;
    PyObject *result = NULL, *bo = NULL, *bv = NULL, *bd = NULL;
    Py_buffer ord = {0}, vo = {0}, oo = {0}, dv = {0};
    const char **src = NULL;
    uint8_t *room = NULL;
    if (get_chunks(ochunks, c, &got, &any_valid) < 0) goto done;
    if (PyObject_GetBuffer(oorder, &ord, PyBUF_C_CONTIGUOUS) < 0) goto done;
    if (ord.itemsize != 8 || ord.len % 8) {
        PyErr_SetString(PyExc_TypeError, "take_texts: `where` must hold 8-byte places");
        goto done;
    }
    const uint64_t *where = ord.buf;
    Py_ssize_t n = ord.len / 8;
    if (!(bo = allocate(alloc, (n + 1) * 4, &oo))) goto done;
    if (any_valid) {
        if (!(bv = allocate(alloc, (n + 7) / 8, &vo))) goto done;
        memset(vo.buf, 0, (size_t)vo.len);
    }
    src = PyMem_Malloc(sizeof(char *) * (size_t)(n ? n : 1));
    room = PyMem_Malloc((size_t)(n ? n : 1));
    if (!src || !room) {
        PyErr_NoMemory();
        goto done;
    }
    int32_t *out = oo.buf;
    uint8_t *bits = bv ? vo.buf : NULL;
    int64_t total = 0, nulls = 0;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    out[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t ci = where[i] >> 32, local = where[i] & 0xFFFFFFFFu;
        if (ci >= (uint64_t)k || local >= (uint64_t)c[ci].length) {
            bad = 1;
            break;
        }
        const chunk_t *ch = &c[ci];
        int64_t j = ch->offset + (int64_t)local;
        if (ch->has_valid && !((((const uint8_t *)ch->valid.buf)[j >> 3] >> (j & 7)) & 1)) {
            nulls++;
        } else {
            const int32_t *o = ch->offsets.buf;
            int32_t a = o[j], b = o[j + 1];
            if (a < 0 || b < a || b > ch->data.len) {
                bad = 2;
                break;
            }
            total += b - a;
            if (total > INT32_MAX) {
                bad = 3;
                break;
            }
            src[i] = (const char *)ch->data.buf + a;
            room[i] = ch->data.len - a >= 32;
            if (bits) bits[i >> 3] |= (uint8_t)(1u << (i & 7));
        }
        out[i + 1] = (int32_t)total;
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        if (bad == 1)
            PyErr_SetString(PyExc_IndexError, "take_texts: a place outside the chunks");
        else if (bad == 2)
            PyErr_SetString(PyExc_ValueError, "take_texts: a chunk's offsets run outside its data");
        else
            PyErr_SetString(PyExc_OverflowError, "take_texts: the rows hold over 2 GiB");
        goto done;
    }
    if (!(bd = allocate(alloc, (Py_ssize_t)total + 32, &dv))) goto done; /* 32: room for the moves */
    char *dst = dv.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t a = out[i], len = out[i + 1] - a;
        if (!len) continue;
        if (len <= 32 && room[i]) { /* fixed-size copies the compiler inlines: no call a value */
            memcpy(dst + a, src[i], 16);
            if (len > 16) memcpy(dst + a + 16, src[i] + 16, 16);
        } else {
            memcpy(dst + a, src[i], (size_t)len);
        }
    }
    Py_END_ALLOW_THREADS
    if (bv && !nulls) Py_CLEAR(bv); /* a bitmap of all ones says nothing */
    result = Py_BuildValue("(OOOL)", bv ? bv : Py_None, bo, bd, (long long)nulls);
done:
    PyMem_Free(src);
    PyMem_Free(room);
    if (dv.obj) PyBuffer_Release(&dv);
    if (oo.obj) PyBuffer_Release(&oo);
    if (vo.obj) PyBuffer_Release(&vo);
    if (ord.obj) PyBuffer_Release(&ord);
    Py_XDECREF(bd);
    Py_XDECREF(bo);
    Py_XDECREF(bv);
    release_chunks(c, got);
    PyMem_Free(c);
    return result;
}

static PyMethodDef methods[] = {
    {"locate", locate, METH_VARARGS, locate_doc},
    {"take_texts", take_texts, METH_VARARGS, take_texts_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_gather", "The writer's gather of a text column's rows (ingest/arrays.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__gather(void) { return PyModule_Create(&module); }
