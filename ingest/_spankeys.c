/* The native loops of the span key set (ingest/spankeys.py): the fingerprint of a batch's keys,
 * the open-addressing table's find and put, the Bloom filter's test and add. Each is the loop the
 * numpy code in spankeys.py runs as a dozen whole-array passes (and, for the table, a round of
 * fancy indexing a probe step), with the same result: spankeys.py uses these when the module is
 * built and its numpy code otherwise, and tests/test_spankeys.py checks that the two agree.
 *
 * Arrays come in through the buffer protocol (numpy arrays, C-contiguous, native uint64 or uint8/
 * bool): no numpy headers are needed to build this. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define C1 0xBF58476D1CE4E5B9ULL
#define C2 0x94D049BB133111EBULL
#define SEED1 0x9E3779B97F4A7C15ULL
#define SEED2 0xD6E8FEB86659FD93ULL

static inline uint64_t mix(uint64_t x) {
    x ^= x >> 30;
    x *= C1;
    x ^= x >> 27;
    x *= C2;
    x ^= x >> 31;
    return x;
}

/* A buffer of `itemsize`-byte items, C-contiguous; `writable` asks for a writable one. */
static int get(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, int writable, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    if (view->itemsize != itemsize || view->len % itemsize) {
        PyErr_Format(PyExc_TypeError, "%s: items of %zd bytes expected", what, itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

#define N(view, t) ((Py_ssize_t)((view).len / (Py_ssize_t)sizeof(t)))

PyDoc_STRVAR(fingerprint_doc,
             "fingerprint(words, k, h1, h2): h1, h2 (uint64, n each) of the n keys of k words in `words`.");

static PyObject *fingerprint(PyObject *self, PyObject *args) {
    PyObject *ow, *o1, *o2;
    Py_ssize_t k;
    if (!PyArg_ParseTuple(args, "OnOO", &ow, &k, &o1, &o2)) return NULL;
    Py_buffer w, b1, b2;
    if (get(ow, &w, 8, 0, "words") < 0) return NULL;
    if (get(o1, &b1, 8, 1, "h1") < 0) goto fail_w;
    if (get(o2, &b2, 8, 1, "h2") < 0) goto fail_1;
    Py_ssize_t n = N(b1, uint64_t);
    if (k < 1 || N(w, uint64_t) != n * k || N(b2, uint64_t) != n) {
        PyErr_SetString(PyExc_ValueError, "fingerprint: sizes differ");
        goto fail_2;
    }
    const uint64_t *words = w.buf;
    uint64_t *h1 = b1.buf, *h2 = b2.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint64_t *key = words + i * k;
        uint64_t a = mix(key[0] ^ SEED1), b = mix(key[k - 1] ^ SEED2);
        for (Py_ssize_t j = 1; j < k; j++) {
            a = mix(a ^ key[j]);
            b = mix(b ^ key[k - 1 - j]);
        }
        h1[i] = a;
        h2[i] = b;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b2);
    PyBuffer_Release(&b1);
    PyBuffer_Release(&w);
    Py_RETURN_NONE;
fail_2:
    PyBuffer_Release(&b2);
fail_1:
    PyBuffer_Release(&b1);
fail_w:
    PyBuffer_Release(&w);
    return NULL;
}

/* The table: slots [0, slots) of h1, h2 (uint64) and used (uint8); a key's home slot is
 * ((h1 >> 32) * slots) >> 32, then linear probing (wrapping at `slots`). */
typedef struct {
    Py_buffer h1, h2, used;
    Py_ssize_t slots;
} Table;

static int table_get(Table *t, PyObject *o1, PyObject *o2, PyObject *ou, Py_ssize_t slots, int writable) {
    if (get(o1, &t->h1, 8, writable, "table h1") < 0) return -1;
    if (get(o2, &t->h2, 8, writable, "table h2") < 0) goto f1;
    if (get(ou, &t->used, 1, writable, "table used") < 0) goto f2;
    if (slots < 1 || N(t->h1, uint64_t) < slots || N(t->h2, uint64_t) < slots || t->used.len < slots) {
        PyErr_SetString(PyExc_ValueError, "table: fewer slots than asked for");
        PyBuffer_Release(&t->used);
        goto f2;
    }
    t->slots = slots;
    return 0;
f2:
    PyBuffer_Release(&t->h2);
f1:
    PyBuffer_Release(&t->h1);
    return -1;
}

static void table_release(Table *t) {
    PyBuffer_Release(&t->used);
    PyBuffer_Release(&t->h2);
    PyBuffer_Release(&t->h1);
}

static inline Py_ssize_t home(uint64_t h1, Py_ssize_t slots) {
    return (Py_ssize_t)(((h1 >> 32) * (uint64_t)slots) >> 32);
}

/* The keys (q1, q2) of a call: two uint64 buffers of one length; on failure both are released. */
static int keys_get(PyObject *o1, PyObject *o2, Py_buffer *q1, Py_buffer *q2) {
    if (get(o1, q1, 8, 0, "q1") < 0) return -1;
    if (get(o2, q2, 8, 0, "q2") < 0) {
        PyBuffer_Release(q1);
        return -1;
    }
    if (N(*q1, uint64_t) != N(*q2, uint64_t)) {
        PyErr_SetString(PyExc_ValueError, "q1 and q2 differ in length");
        PyBuffer_Release(q2);
        PyBuffer_Release(q1);
        return -1;
    }
    return 0;
}

static void keys_release(Py_buffer *q1, Py_buffer *q2) {
    PyBuffer_Release(q2);
    PyBuffer_Release(q1);
}

PyDoc_STRVAR(table_find_doc,
             "table_find(h1s, h2s, used, slots, q1, q2, found): found[i] = 1 when key i is in the table.");

static PyObject *table_find(PyObject *self, PyObject *args) {
    PyObject *o1, *o2, *ou, *oq1, *oq2, *of;
    Py_ssize_t slots;
    if (!PyArg_ParseTuple(args, "OOOnOOO", &o1, &o2, &ou, &slots, &oq1, &oq2, &of)) return NULL;
    Table t;
    Py_buffer q1, q2, f;
    if (table_get(&t, o1, o2, ou, slots, 0) < 0) return NULL;
    if (keys_get(oq1, oq2, &q1, &q2) < 0) {
        table_release(&t);
        return NULL;
    }
    Py_ssize_t n = N(q1, uint64_t);
    if (get(of, &f, 1, 1, "found") < 0 || f.len != n) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "table_find: found differs in length");
            PyBuffer_Release(&f);
        }
        keys_release(&q1, &q2);
        table_release(&t);
        return NULL;
    }
    const uint64_t *th1 = t.h1.buf, *th2 = t.h2.buf, *k1 = q1.buf, *k2 = q2.buf;
    const uint8_t *used = t.used.buf;
    uint8_t *found = f.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t s = home(k1[i], slots);
        uint8_t hit = 0;
        while (used[s]) {  /* an empty slot ends the search (the table is never full) */
            if (th1[s] == k1[i] && th2[s] == k2[i]) {
                hit = 1;
                break;
            }
            if (++s == slots) s = 0;
        }
        found[i] = hit;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&f);
    keys_release(&q1, &q2);
    table_release(&t);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(table_put_doc,
             "table_put(h1s, h2s, used, slots, q1, q2): insert keys that are distinct and not in the table\n"
             "(the caller keeps the count under the slots).");

static PyObject *table_put(PyObject *self, PyObject *args) {
    PyObject *o1, *o2, *ou, *oq1, *oq2;
    Py_ssize_t slots;
    if (!PyArg_ParseTuple(args, "OOOnOO", &o1, &o2, &ou, &slots, &oq1, &oq2)) return NULL;
    Table t;
    Py_buffer q1, q2;
    if (table_get(&t, o1, o2, ou, slots, 1) < 0) return NULL;
    if (keys_get(oq1, oq2, &q1, &q2) < 0) {
        table_release(&t);
        return NULL;
    }
    Py_ssize_t n = N(q1, uint64_t);
    uint64_t *th1 = t.h1.buf, *th2 = t.h2.buf;
    const uint64_t *k1 = q1.buf, *k2 = q2.buf;
    uint8_t *used = t.used.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t s = home(k1[i], slots);
        while (used[s])
            if (++s == slots) s = 0;
        th1[s] = k1[i];
        th2[s] = k2[i];
        used[s] = 1;
    }
    Py_END_ALLOW_THREADS
    keys_release(&q1, &q2);
    table_release(&t);
    Py_RETURN_NONE;
}

/* The blocked Bloom filter: a key sets 4 bits of one word, the word h2 & (size - 1), the bits
 * h2 >> 58 and (h2 >> 40, 46, 52) & 63. */
static inline uint64_t bloom_bits(uint64_t h2) {
    return (1ULL << (h2 >> 58)) | (1ULL << ((h2 >> 40) & 63)) | (1ULL << ((h2 >> 46) & 63)) |
           (1ULL << ((h2 >> 52) & 63));
}

PyDoc_STRVAR(bloom_doc,
             "bloom(words, size, h2, maybe): with `maybe` (uint8, n), maybe[i] = 1 when key i may have been\n"
             "added; with None, add the keys.");

static PyObject *bloom(PyObject *self, PyObject *args) {
    PyObject *ow, *oh, *om;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "OnOO", &ow, &size, &oh, &om)) return NULL;
    int adding = om == Py_None;
    Py_buffer w, h, m;
    if (get(ow, &w, 8, adding, "bloom words") < 0) return NULL;
    if (size < 1 || (size & (size - 1)) || N(w, uint64_t) < size) {
        PyErr_SetString(PyExc_ValueError, "bloom: size is not a power of 2 within the words");
        PyBuffer_Release(&w);
        return NULL;
    }
    if (get(oh, &h, 8, 0, "h2") < 0) {
        PyBuffer_Release(&w);
        return NULL;
    }
    Py_ssize_t n = N(h, uint64_t);
    if (!adding) {
        if (get(om, &m, 1, 1, "maybe") < 0) goto fail;
        if (m.len != n) {
            PyErr_SetString(PyExc_ValueError, "bloom: sizes differ");
            PyBuffer_Release(&m);
            goto fail;
        }
    }
    uint64_t *words = w.buf, mask = (uint64_t)size - 1;
    const uint64_t *h2 = h.buf;
    Py_BEGIN_ALLOW_THREADS
    if (adding) {
        for (Py_ssize_t i = 0; i < n; i++) words[h2[i] & mask] |= bloom_bits(h2[i]);
    } else {
        uint8_t *maybe = m.buf;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t bits = bloom_bits(h2[i]);
            maybe[i] = (words[h2[i] & mask] & bits) == bits;
        }
    }
    Py_END_ALLOW_THREADS
    if (!adding) PyBuffer_Release(&m);
    PyBuffer_Release(&h);
    PyBuffer_Release(&w);
    Py_RETURN_NONE;
fail:
    PyBuffer_Release(&h);
    PyBuffer_Release(&w);
    return NULL;
}

static PyMethodDef methods[] = {
    {"fingerprint", fingerprint, METH_VARARGS, fingerprint_doc},
    {"table_find", table_find, METH_VARARGS, table_find_doc},
    {"table_put", table_put, METH_VARARGS, table_put_doc},
    {"bloom", bloom, METH_VARARGS, bloom_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_spankeys", "The native loops of the span key set (ingest/spankeys.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__spankeys(void) { return PyModule_Create(&module); }
