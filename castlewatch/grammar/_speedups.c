/*
 * castlewatch.grammar._speedups: the two hot loops of the matcher, in C.
 *
 * Optional: castlewatch.grammar.literals falls back to pure Python (same results,
 * checked by the test suite on both backends) when this module is not built.
 *
 * - Literals(required, excluded, optional): a callable ``message -> bool`` that is
 *   True when every required literal occurs in the message, none of the excluded ones
 *   does, and (when ``optional`` is not empty) at least one optional one does: the
 *   substring rule of term patterns (spec section 3.2) and of the literal prefilters.
 *   Case-sensitive, code point for code point, exactly like Python's ``in``.
 * - plain_split(message): ``message.split()`` when that is exactly the space-delimited
 *   field split of spec section 6.2 (ASCII text without '"', '[' or \x1c-\x1f), else None.
 *
 * Strings in the 1-byte (Latin-1) representation are scanned with SSE2 where the
 * compiler targets it (every x86-64): the first and last byte of a literal are
 * compared 16 positions at a time and only candidate positions are confirmed with
 * memcmp.  Other representations use PyUnicode_Contains.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "_json_time.h"

/* Strings made through CPython 3.11's deprecated legacy C API may not be "ready" (no
   canonical representation yet); from 3.12 on, every string is. */
#if PY_VERSION_HEX < 0x030C0000
#define ENSURE_READY(s) PyUnicode_READY(s)
#else
#define ENSURE_READY(s) 0
#endif

/* 1 if p[0:m] occurs in h[0:n]; m >= 1. */
static int
find_bytes(const unsigned char *h, Py_ssize_t n, const unsigned char *p, Py_ssize_t m)
{
    Py_ssize_t i = 0;
    if (m > n)
        return 0;
    if (m == 1)
        return memchr(h, p[0], (size_t)n) != NULL;
#ifdef __SSE2__
    {
        const __m128i first = _mm_set1_epi8((char)p[0]);
        const __m128i last = _mm_set1_epi8((char)p[m - 1]);
        for (; i + m + 15 <= n; i += 16) {
            __m128i f = _mm_cmpeq_epi8(first, _mm_loadu_si128((const __m128i *)(h + i)));
            __m128i l = _mm_cmpeq_epi8(last, _mm_loadu_si128((const __m128i *)(h + i + m - 1)));
            unsigned mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(f, l));
            while (mask) {
                int bit = __builtin_ctz(mask);
                if (memcmp(h + i + bit + 1, p + 1, (size_t)(m - 2)) == 0)
                    return 1;
                mask &= mask - 1;
            }
        }
    }
#endif
    /* the positions the blocks did not cover (all of them without SSE2) */
    for (; i + m <= n; i++) {
        const unsigned char *c = memchr(h + i, p[0], (size_t)(n - m - i + 1));
        if (c == NULL)
            return 0;
        i = c - h;
        if (h[i + m - 1] == p[m - 1] && memcmp(h + i + 1, p + 1, (size_t)(m - 2)) == 0)
            return 1;
    }
    return 0;
}

typedef struct {
    PyObject *text;          /* the literal (str) */
    unsigned char *latin1;   /* its Latin-1 bytes, NULL when it has a code point > U+00FF */
    Py_ssize_t size;         /* its length in code points */
} Needle;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Py_ssize_t n_required, n_excluded, n_optional;
    Needle *needles;         /* required, then excluded, then optional */
} LiteralsObject;

/* Longer literals go to CPython's own search, linear in the worst case (two-way): the
   block scan confirms every position where the first and last byte match with memcmp,
   which for a long literal in a repetitive message costs up to its length each time. */
#define BLOCK_SCAN_MAX 64

/* 1 if the needle occurs in the message, 0 if not, -1 with an exception set. */
static int
contains(PyObject *message, const Needle *needle)
{
    if (needle->size == 0)
        return 1;
    if (PyUnicode_KIND(message) == PyUnicode_1BYTE_KIND && needle->size <= BLOCK_SCAN_MAX) {
        if (needle->latin1 == NULL)
            return 0;
        return find_bytes(PyUnicode_1BYTE_DATA(message), PyUnicode_GET_LENGTH(message),
                          needle->latin1, needle->size);
    }
    return PyUnicode_Contains(message, needle->text);
}

static PyObject *
literals_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    LiteralsObject *self = (LiteralsObject *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), i, end;
    PyObject *message;
    int found;

    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Literals() takes exactly one argument (the message)");
        return NULL;
    }
    message = args[0];
    if (!PyUnicode_Check(message)) {
        PyErr_Format(PyExc_TypeError, "the message must be str, not %.100s", Py_TYPE(message)->tp_name);
        return NULL;
    }
    if (ENSURE_READY(message) < 0)
        return NULL;
    for (i = 0; i < self->n_required; i++) {
        found = contains(message, &self->needles[i]);
        if (found < 0)
            return NULL;
        if (!found)
            Py_RETURN_FALSE;
    }
    end = self->n_required + self->n_excluded;
    for (; i < end; i++) {
        found = contains(message, &self->needles[i]);
        if (found < 0)
            return NULL;
        if (found)
            Py_RETURN_FALSE;
    }
    if (self->n_optional == 0)
        Py_RETURN_TRUE;
    end += self->n_optional;
    for (; i < end; i++) {
        found = contains(message, &self->needles[i]);
        if (found < 0)
            return NULL;
        if (found)
            Py_RETURN_TRUE;
    }
    Py_RETURN_FALSE;
}

static void
literals_clear_needles(LiteralsObject *self)
{
    Py_ssize_t i, n = self->n_required + self->n_excluded + self->n_optional;
    if (self->needles == NULL)
        return;
    for (i = 0; i < n; i++) {
        Py_XDECREF(self->needles[i].text);
        PyMem_Free(self->needles[i].latin1);
    }
    PyMem_Free(self->needles);
    self->needles = NULL;
}

static void
literals_dealloc(LiteralsObject *self)
{
    literals_clear_needles(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Fill needles[start:start+len(group)] from a tuple of str; -1 with an exception set. */
static int
load_group(Needle *needles, Py_ssize_t start, PyObject *group, const char *name)
{
    Py_ssize_t i, n = PyTuple_GET_SIZE(group);
    for (i = 0; i < n; i++) {
        PyObject *text = PyTuple_GET_ITEM(group, i);
        Needle *needle = &needles[start + i];
        if (!PyUnicode_Check(text)) {
            PyErr_Format(PyExc_TypeError, "%s literals must be str, not %.100s", name, Py_TYPE(text)->tp_name);
            return -1;
        }
        if (ENSURE_READY(text) < 0)
            return -1;
        /* an exact str copy of a str subclass: it cannot hold a reference back to this
           object (which takes no part in garbage collection), nor override anything */
        text = PyUnicode_FromObject(text);  /* a new reference; a copy for a subclass */
        if (text == NULL)
            return -1;
        needle->text = text;
        needle->size = PyUnicode_GET_LENGTH(text);
        if (PyUnicode_KIND(text) == PyUnicode_1BYTE_KIND) {
            needle->latin1 = PyMem_Malloc((size_t)needle->size + 1);
            if (needle->latin1 == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            memcpy(needle->latin1, PyUnicode_1BYTE_DATA(text), (size_t)needle->size);
        }
        /* else: a wider str always holds a code point > U+00FF (CPython keeps strings in
           the narrowest kind), so it never occurs in a 1-byte message: latin1 stays NULL */
    }
    return 0;
}

static PyObject *
literals_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"required", "excluded", "optional", NULL};
    PyObject *required, *excluded, *optional;
    LiteralsObject *self;
    Py_ssize_t total;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!:Literals", kwlist, &PyTuple_Type, &required,
                                     &PyTuple_Type, &excluded, &PyTuple_Type, &optional))
        return NULL;
    self = (LiteralsObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = literals_vectorcall;
    self->n_required = PyTuple_GET_SIZE(required);
    self->n_excluded = PyTuple_GET_SIZE(excluded);
    self->n_optional = PyTuple_GET_SIZE(optional);
    total = self->n_required + self->n_excluded + self->n_optional;
    self->needles = PyMem_Calloc((size_t)(total ? total : 1), sizeof(Needle));
    if (self->needles == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    if (load_group(self->needles, 0, required, "required") < 0
        || load_group(self->needles, self->n_required, excluded, "excluded") < 0
        || load_group(self->needles, self->n_required + self->n_excluded, optional, "optional") < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyObject *
literals_repr(LiteralsObject *self)
{
    return PyUnicode_FromFormat("<castlewatch Literals: %zd required, %zd excluded, %zd optional>",
                                self->n_required, self->n_excluded, self->n_optional);
}

PyDoc_STRVAR(literals_doc,
"Literals(required, excluded, optional)\n--\n\n"
"A callable message -> bool: every required literal occurs in the message, no\n"
"excluded one does, and at least one optional one does when any are given.\n"
"Each argument is a tuple of str; matching is Python's case-sensitive ``in``.");

static PyTypeObject LiteralsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "castlewatch.grammar._speedups.Literals",
    .tp_basicsize = sizeof(LiteralsObject),
    .tp_dealloc = (destructor)literals_dealloc,
    .tp_vectorcall_offset = offsetof(LiteralsObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_repr = (reprfunc)literals_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = literals_doc,
    .tp_new = literals_new,
};

/* 1 when message (a str) is ASCII with no '"', '[' or \x1c-\x1f, so that str.split()
   separates exactly its space-delimited fields (its bytes and length then in *data, *n);
   0 when not; -1 with an exception set. */
static int
plain_message(PyObject *message, const unsigned char **data, Py_ssize_t *n)
{
    Py_ssize_t i;
    unsigned char special = 0;

    if (!PyUnicode_Check(message)) {
        PyErr_Format(PyExc_TypeError, "the message must be str, not %.100s", Py_TYPE(message)->tp_name);
        return -1;
    }
    if (ENSURE_READY(message) < 0)
        return -1;
    if (!PyUnicode_IS_ASCII(message))
        return 0;
    *data = PyUnicode_1BYTE_DATA(message);
    *n = PyUnicode_GET_LENGTH(message);
    /* no early exit: the loop vectorises, and plain text is the common case */
    for (i = 0; i < *n; i++) {
        unsigned char c = (*data)[i];
        special |= (unsigned char)((c == '"') | (c == '[') | ((c & 0xFC) == 0x1C));
    }
    return !special;
}

static PyObject *
plain_split(PyObject *module, PyObject *message)
{
    const unsigned char *data;
    Py_ssize_t n;
    int plain;

    (void)module;
    plain = plain_message(message, &data, &n);
    if (plain < 0)
        return NULL;
    if (!plain)
        Py_RETURN_NONE;
    return PyUnicode_Split(message, NULL, -1);
}

PyDoc_STRVAR(plain_split_doc,
"plain_split(message, /)\n--\n\n"
"message.split() when the message is ASCII with no '\"', '[' or \\x1c-\\x1f (then\n"
"str.split() separates exactly the space-delimited fields), else None.");

static PyObject *
plain_field(PyObject *module, PyObject *args)
{
    PyObject *message, *field;
    const unsigned char *data;
    Py_ssize_t index, i, n, fields = 0, start = -1, end = -1;
    int plain;

    (void)module;
    if (!PyArg_ParseTuple(args, "Un:plain_field", &message, &index))
        return NULL;
    plain = plain_message(message, &data, &n);
    if (plain < 0)
        return NULL;
    if (!plain)
        Py_RETURN_NONE;
    /* the fields of str.split() on such a message: runs of anything but ' ' and '\t'-'\r' */
    i = 0;
    for (;;) {
        Py_ssize_t s;
        while (i < n && (data[i] == ' ' || (data[i] >= '\t' && data[i] <= '\r')))
            i++;
        if (i >= n)
            break;
        s = i;
        while (i < n && !(data[i] == ' ' || (data[i] >= '\t' && data[i] <= '\r')))
            i++;
        if (fields == index) {
            start = s;
            end = i;
        }
        fields++;
    }
    if (start < 0) {
        field = Py_None;
        Py_INCREF(field);
    } else {
        field = PyUnicode_New(end - start, 127);
        if (field == NULL)
            return NULL;
        memcpy(PyUnicode_1BYTE_DATA(field), data + start, (size_t)(end - start));
    }
    return Py_BuildValue("(nN)", fields, field);
}

PyDoc_STRVAR(plain_field_doc,
"plain_field(message, index, /)\n--\n\n"
"(len(fields), fields[index] or None when there are not that many) for\n"
"fields = message.split(), when the message is ASCII with no '\"', '[' or \\x1c-\\x1f\n"
"(as plain_split), else None: one field without the list of all of them.");

/* ---- blocks of lines (castlewatch.engine.batch) -------------------------------------------
 *
 * A block is the UTF-8 bytes of a batch's messages, each followed by '\n' (messages hold no
 * '\n'). Both functions return None when the block does not hold exactly n_lines lines.
 */

#define SCAN_HASH(w) ((uint32_t)((uint32_t)(w) * 2654435761u) >> 16)

/* Count the lines of a block: -1 if it does not end with '\n'. */
static Py_ssize_t
count_lines(const char *data, Py_ssize_t size)
{
    Py_ssize_t lines = 0;
    const char *p = data, *end = data + size;
    if (size == 0)
        return 0;
    if (data[size - 1] != '\n')
        return -1;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        lines++;
        p++;
    }
    return lines;
}

#define SCAN_BUCKETS (1 << 14)
#define SCAN_MAX_STRIDE 8

typedef struct {
    uint32_t hash;      /* of the 4 bytes at offset */
    int32_t literal;    /* index */
    int32_t offset;     /* of the 4 bytes in the literal */
    int32_t next;       /* next entry of the bucket, -1 */
} ScanEntry;

static PyObject *
scan_lines(PyObject *module, PyObject *args)
{
    PyObject *messages, *literals, *firsts, *masks = NULL, *flags = NULL, *out = NULL;
    Py_ssize_t n_lines, n_lit, words, i, line, n_entries = 0, stride;
    const unsigned char **lit_data = NULL;
    Py_ssize_t *lit_len = NULL, *lit_first = NULL;
    ScanEntry *entries = NULL;
    int32_t *head = NULL;
    unsigned char bitmap[8192];
    (void)module;

    if (!PyArg_ParseTuple(args, "O!O!O!n:scan_lines", &PyList_Type, &messages, &PyTuple_Type, &literals,
                          &PyTuple_Type, &firsts, &stride))
        return NULL;
    n_lines = PyList_GET_SIZE(messages);
    n_lit = PyTuple_GET_SIZE(literals);
    if (PyTuple_GET_SIZE(firsts) != n_lit || stride < 1) {
        PyErr_SetString(PyExc_ValueError, "one first window per literal, and a stride >= 1");
        return NULL;
    }
    words = (n_lit + 63) / 64;
    if (words == 0)
        words = 1;
    lit_data = PyMem_Calloc((size_t)(n_lit ? n_lit : 1), sizeof(*lit_data));
    lit_len = PyMem_Calloc((size_t)(n_lit ? n_lit : 1), sizeof(*lit_len));
    lit_first = PyMem_Calloc((size_t)(n_lit ? n_lit : 1), sizeof(*lit_first));
    head = PyMem_Malloc(SCAN_BUCKETS * sizeof(*head));
    if (!lit_data || !lit_len || !lit_first || !head) {
        PyErr_NoMemory();
        goto done;
    }
    for (i = 0; i < n_lit; i++) {
        PyObject *lit = PyTuple_GET_ITEM(literals, i);
        Py_ssize_t first = PyLong_AsSsize_t(PyTuple_GET_ITEM(firsts, i));
        if (first == -1 && PyErr_Occurred())
            goto done;
        if (!PyBytes_Check(lit) || PyBytes_GET_SIZE(lit) > 0x7fffffff || first < 0
            || first + stride + 3 > PyBytes_GET_SIZE(lit)) {
            PyErr_SetString(PyExc_ValueError, "literals must be bytes holding stride windows of 4 from their first");
            goto done;
        }
        lit_data[i] = (const unsigned char *)PyBytes_AS_STRING(lit);
        lit_len[i] = PyBytes_GET_SIZE(lit);
        lit_first[i] = first;
        n_entries += stride;
    }
    /* stride consecutive 4-byte windows of each literal: an occurrence has one at a probed
       position (one in every stride positions) */
    entries = PyMem_Calloc((size_t)(n_entries ? n_entries : 1), sizeof(*entries));
    if (entries == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memset(bitmap, 0, sizeof(bitmap));
    for (i = 0; i < SCAN_BUCKETS; i++)
        head[i] = -1;
    {
        Py_ssize_t e = 0, o;
        for (i = 0; i < n_lit; i++) {
            for (o = lit_first[i]; o < lit_first[i] + stride; o++, e++) {
                uint32_t w, h;
                memcpy(&w, lit_data[i] + o, 4);
                h = SCAN_HASH(w);
                entries[e].hash = h;
                entries[e].literal = (int32_t)i;
                entries[e].offset = (int32_t)o;
                entries[e].next = head[h & (SCAN_BUCKETS - 1)];
                head[h & (SCAN_BUCKETS - 1)] = (int32_t)e;
                bitmap[h >> 3] |= (unsigned char)(1u << (h & 7));
            }
        }
    }
    masks = PyBytes_FromStringAndSize(NULL, n_lines * words * 8);
    flags = PyBytes_FromStringAndSize(NULL, n_lines);
    if (masks == NULL || flags == NULL)
        goto done;
    memset(PyBytes_AS_STRING(masks), 0, (size_t)(n_lines * words * 8));
    {
        uint64_t *mask = (uint64_t *)PyBytes_AS_STRING(masks);
        unsigned char *flag = (unsigned char *)PyBytes_AS_STRING(flags);
        for (line = 0; line < n_lines; line++) {
            PyObject *message = PyList_GET_ITEM(messages, line);
            const unsigned char *data, *bs;
            Py_ssize_t n, p, k = 0;
            unsigned char f = 0;
            uint64_t *m = mask + line * words;
            if (!PyUnicode_Check(message) || ENSURE_READY(message) < 0 || PyUnicode_KIND(message) != PyUnicode_1BYTE_KIND) {
                PyErr_Clear();
                flag[line] = 4;  /* not scanned */
                continue;
            }
            data = PyUnicode_1BYTE_DATA(message);
            n = PyUnicode_GET_LENGTH(message);
            while (k < n && (data[k] == ' ' || (data[k] >= '\t' && data[k] <= '\r')))
                k++;
            if (k < n && data[k] == '{')
                f |= 2;
            bs = data;
            while ((bs = memchr(bs, '\\', (size_t)(data + n - bs))) != NULL) {
                if (bs + 1 < data + n && bs[1] == 'u') {
                    f |= 1;
                    break;
                }
                bs++;
            }
            if (n_lit) {
                for (p = 0; p + 4 <= n; p += stride) {
                    uint32_t w, h;
                    memcpy(&w, data + p, 4);
                    h = SCAN_HASH(w);
                    if (bitmap[h >> 3] & (1u << (h & 7))) {
                        int32_t e;
                        for (e = head[h & (SCAN_BUCKETS - 1)]; e >= 0; e = entries[e].next) {
                            Py_ssize_t j = entries[e].literal, start = p - entries[e].offset;
                            if (entries[e].hash == h && start >= 0 && start + lit_len[j] <= n
                                && !(m[j >> 6] & ((uint64_t)1 << (j & 63)))
                                && memcmp(data + start, lit_data[j], (size_t)lit_len[j]) == 0)
                                m[j >> 6] |= (uint64_t)1 << (j & 63);
                        }
                    }
                }
            }
            flag[line] = f;
        }
    }
    out = PyTuple_Pack(2, masks, flags);
done:
    Py_XDECREF(masks);
    Py_XDECREF(flags);
    PyMem_Free(lit_data);
    PyMem_Free(lit_len);
    PyMem_Free(lit_first);
    PyMem_Free(entries);
    PyMem_Free(head);
    return out;
}

PyDoc_STRVAR(scan_lines_doc,
"scan_lines(messages, literals, firsts, stride, /)\n--\n\n"
"Which literals occur in each message (a list of str), code point for code point as\n"
"Python's ``in``. literals: tuple of Latin-1 bytes; the scan probes a message every\n"
"stride bytes for the stride consecutive 4-byte windows of each literal that start at\n"
"firsts[j] (within it: firsts[j] + stride + 3 <= len). Returns\n"
"(masks, flags): masks holds ceil(len(literals) / 64) uint64 words per message, bit j\n"
"set when literals[j] occurs in it; flags one byte per message: 1 when it holds a\n"
"backslash followed by 'u', 2 when its first character that is not one of\n"
"' \\t\\n\\v\\f\\r' is '{', 4 when it was not scanned (a str not in the 1-byte\n"
"representation: a character beyond U+00FF).");

/* byte classes of the space-delimited split: 1 a separator (str.split() on ASCII without
   \x1c-\x1f), 2 a byte that makes the split not plain ('"', '[', \x1c-\x1f, non-ASCII),
   4 the end of a line ('\n', also a separator), 0 any other */
static unsigned char split_class[256];

static void
init_split_class(void)
{
    int c;
    for (c = 0; c < 256; c++)
        split_class[c] = (unsigned char)((c >= 0x80 || c == '"' || c == '[' || (c >= 0x1c && c <= 0x1f)) ? 2 : 0);
    split_class[' '] = split_class['\t'] = split_class['\v'] = split_class['\f'] = split_class['\r'] = 1;
    split_class['\n'] = 1 | 4;
}

#ifdef __SSE2__
/* Bit i of *ws: byte i of the 64 at p is a separator (space, \t \n \v \f \r); of *special:
   it is special (split_class 2). The bytes from limit on count as separators; none is read
   at or past end (the block's). */
static inline void
split_masks(const unsigned char *p, const unsigned char *limit, const unsigned char *end, uint64_t *ws,
            uint64_t *special)
{
    unsigned char copy[64];
    const unsigned char *at = p;
    uint64_t w = 0, sp = 0;
    int j;
    Py_ssize_t have = limit - p;
    if (end - p < 64) {  /* the block's last bytes: a copy, padded */
        memcpy(copy, p, (size_t)(end - p));
        memset(copy + (end - p), ' ', (size_t)(64 - (end - p)));
        at = copy;
    }
    for (j = 0; j < 4; j++) {
        const __m128i c = _mm_loadu_si128((const __m128i *)(at + 16 * j));
        const __m128i blank = _mm_or_si128(
            _mm_cmpeq_epi8(c, _mm_set1_epi8(' ')),
            _mm_cmpeq_epi8(_mm_subs_epu8(_mm_sub_epi8(c, _mm_set1_epi8(9)), _mm_set1_epi8(4)), _mm_setzero_si128()));
        const __m128i odd = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8('"')), _mm_cmpeq_epi8(c, _mm_set1_epi8('['))),
            _mm_cmpeq_epi8(_mm_subs_epu8(_mm_sub_epi8(c, _mm_set1_epi8(0x1c)), _mm_set1_epi8(3)), _mm_setzero_si128()));
        w |= (uint64_t)(unsigned)_mm_movemask_epi8(blank) << (16 * j);
        sp |= (uint64_t)(unsigned)(_mm_movemask_epi8(odd) | _mm_movemask_epi8(c)) << (16 * j);  /* and >= 0x80 */
    }
    if (have < 64) {
        w |= ~(uint64_t)0 << have;
        sp &= ((uint64_t)1 << have) - 1;
    }
    *ws = w;
    *special = sp;
}
#endif

/* Split the line at p (it ends at the next '\n', before end) into its fields: the first k
   fields' offsets from base into row[2 * f], row[2 * f + 1]; their count into *fields, the
   split_class 2 bytes seen into *special (non-zero: the line is not plain). Returns the
   position of the line's '\n'. */
static const unsigned char *
split_line(const unsigned char *base, const unsigned char *p, const unsigned char *end, int32_t *row,
           Py_ssize_t k, Py_ssize_t *fields, unsigned char *special)
{
    const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
    Py_ssize_t starts = 0;
    unsigned char odd = 0;
#ifdef __SSE2__
    Py_ssize_t ends = 0;
    uint64_t before = 1;  /* the byte before the line counts as a separator */
    const unsigned char *at;
    for (at = p; at < nl; at += 64) {
        uint64_t ws, sp, prev, first, last;
        split_masks(at, nl, end, &ws, &sp);
        odd |= sp != 0;
        prev = (ws << 1) | before;
        before = ws >> 63;
        first = ~ws & prev;  /* a field starts: not a separator, after one */
        last = ws & ~prev;   /* a field ended just before: a separator, after a field byte */
        while (first) {
            if (starts < k)
                row[starts * 2] = (int32_t)(at - base + __builtin_ctzll(first));
            starts++;
            first &= first - 1;
        }
        while (last) {
            if (ends < k)
                row[ends * 2 + 1] = (int32_t)(at - base + __builtin_ctzll(last));
            ends++;
            last &= last - 1;
        }
    }
    if (ends < starts) {  /* the last field reaches the '\n', 64 bytes on */
        if (ends < k)
            row[ends * 2 + 1] = (int32_t)(nl - base);
        ends++;
    }
#else
    unsigned char cls;
    for (;;) {
        while ((cls = split_class[*p]) == 1)  /* separators, not the end of the line */
            p++;
        if (cls & 4)
            break;
        if (starts < k)
            row[starts * 2] = (int32_t)(p - base);
        while (!((cls = split_class[*p]) & 1)) {
            odd |= cls;
            p++;
        }
        if (starts < k)
            row[starts * 2 + 1] = (int32_t)(p - base);
        starts++;
        if (cls & 4)
            break;
    }
#endif
    *fields = starts;
    *special = odd;
    return nl;
}

#define SPLIT_MAX_DIGIT_FIELDS 16

/* split_block's optional arguments: a sequence of at most SPLIT_MAX_DIGIT_FIELDS items (a new
   reference, its size in *n), or NULL with an exception set. */
static PyObject *
split_arguments(PyObject *given, const char *what, Py_ssize_t *n)
{
    PyObject *seq = PySequence_Fast(given, "split_block's digit and equal fields must be sequences");
    if (seq == NULL)
        return NULL;
    *n = PySequence_Fast_GET_SIZE(seq);
    if (*n > SPLIT_MAX_DIGIT_FIELDS) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "at most %d %s", SPLIT_MAX_DIGIT_FIELDS, what);
        return NULL;
    }
    return seq;
}

/* A field index in range(k) into *out: 0, or -1 with an exception set. */
static int
field_index(PyObject *item, Py_ssize_t k, Py_ssize_t *out)
{
    *out = PyLong_AsSsize_t(item);
    if (*out == -1 && PyErr_Occurred())
        return -1;
    if (*out < 0 || *out >= k) {
        PyErr_SetString(PyExc_ValueError, "a field index must be in range(k)");
        return -1;
    }
    return 0;
}

/* The field indexes of a sequence (at most SPLIT_MAX_DIGIT_FIELDS, each in range(k)) into
   out[0:*n]: 0, or -1 with an exception set. */
static int
field_indexes(PyObject *given, const char *what, Py_ssize_t k, Py_ssize_t *out, Py_ssize_t *n)
{
    Py_ssize_t i;
    PyObject *seq = split_arguments(given, what, n);
    if (seq == NULL)
        return -1;
    for (i = 0; i < *n; i++)
        if (field_index(PySequence_Fast_GET_ITEM(seq, i), k, &out[i]) < 0)
            break;
    Py_DECREF(seq);
    return i < *n ? -1 : 0;
}

static PyObject *
split_block(PyObject *module, PyObject *args)
{
    Py_buffer block;
    Py_ssize_t n_lines, k, line, n_digits = 0, d;
    PyObject *bounds = NULL, *flags = NULL, *numbers = NULL, *out = NULL, *digit_fields = NULL;
    Py_ssize_t wanted[SPLIT_MAX_DIGIT_FIELDS];
    PyObject *equal_fields = NULL, *equals = NULL, *key_fields = NULL, *keys = NULL, *equal_seq = NULL;
    Py_ssize_t n_keys = 0, q;
    Py_ssize_t key_field[SPLIT_MAX_DIGIT_FIELDS];
    Py_ssize_t n_equal = 0, e;
    Py_ssize_t equal_field[SPLIT_MAX_DIGIT_FIELDS];
    const char *equal_text[SPLIT_MAX_DIGIT_FIELDS];
    Py_ssize_t equal_len[SPLIT_MAX_DIGIT_FIELDS];
    (void)module;

    if (!PyArg_ParseTuple(args, "y*nn|OOO:split_block", &block, &k, &n_lines, &digit_fields, &equal_fields,
                          &key_fields))
        return NULL;
    if (key_fields == Py_None)
        key_fields = NULL;
    if (digit_fields == Py_None)
        digit_fields = NULL;
    if (equal_fields == Py_None)
        equal_fields = NULL;
    if (k < 1 || block.len >= 0x7fffffff) {
        PyErr_SetString(PyExc_ValueError, "k must be >= 1 and the block under 2 GiB");
        goto done;
    }
    if (digit_fields != NULL && field_indexes(digit_fields, "digit fields", k, wanted, &n_digits) < 0)
        goto done;
    if (key_fields != NULL && field_indexes(key_fields, "key fields", k, key_field, &n_keys) < 0)
        goto done;
    if (equal_fields != NULL) {  /* ((field index, bytes), ...): held in equal_seq until the end */
        equal_seq = split_arguments(equal_fields, "equal fields", &n_equal);
        if (equal_seq == NULL)
            goto done;
        for (e = 0; e < n_equal; e++) {
            PyObject *pair = PySequence_Fast_GET_ITEM(equal_seq, e), *text;
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyBytes_Check(text = PyTuple_GET_ITEM(pair, 1))) {
                PyErr_SetString(PyExc_TypeError, "an equal field must be (index, bytes)");
                goto done;
            }
            if (field_index(PyTuple_GET_ITEM(pair, 0), k, &equal_field[e]) < 0)
                goto done;
            equal_text[e] = PyBytes_AS_STRING(text);
            equal_len[e] = PyBytes_GET_SIZE(text);
        }
    }
    if (count_lines(block.buf, block.len) != n_lines) {
        out = Py_None;
        Py_INCREF(out);
        goto done;
    }
    bounds = PyBytes_FromStringAndSize(NULL, n_lines * k * 2 * 4);
    flags = PyBytes_FromStringAndSize(NULL, n_lines);
    if (bounds == NULL || flags == NULL)
        goto done;
    if (digit_fields != NULL && (numbers = PyBytes_FromStringAndSize(NULL, n_lines * n_digits * 8)) == NULL)
        goto done;
    if (equal_fields != NULL && (equals = PyBytes_FromStringAndSize(NULL, n_lines * n_equal)) == NULL)
        goto done;
    if (key_fields != NULL && (keys = PyBytes_FromStringAndSize(NULL, n_lines * n_keys * 8)) == NULL)
        goto done;
    {
        const unsigned char *base = block.buf, *p = base, *end = base + block.len;
        int32_t *b = (int32_t *)PyBytes_AS_STRING(bounds);
        unsigned char *flag = (unsigned char *)PyBytes_AS_STRING(flags);
        int64_t *number = numbers != NULL ? (int64_t *)PyBytes_AS_STRING(numbers) : NULL;
        unsigned char *equal = equals != NULL ? (unsigned char *)PyBytes_AS_STRING(equals) : NULL;
        uint64_t *key = keys != NULL ? (uint64_t *)PyBytes_AS_STRING(keys) : NULL;
        for (line = 0; line < n_lines; line++) {
            Py_ssize_t fields = 0;
            unsigned char special = 0;
            int32_t *row = b + line * k * 2;
            memset(row, 0, (size_t)(k * 2 * 4));
            p = split_line(base, p, end, row, k, &fields, &special);
            flag[line] = (unsigned char)(!special && fields == k);
            for (d = 0; d < n_digits; d++) {  /* 1-15 ASCII digits: their value, else -1 */
                int64_t value = -1;
                if (flag[line]) {
                    const unsigned char *q = base + row[wanted[d] * 2], *e = base + row[wanted[d] * 2 + 1];
                    if (e - q >= 1 && e - q <= 15) {
                        value = 0;
                        for (; q < e; q++) {
                            if (*q < '0' || *q > '9') {
                                value = -1;
                                break;
                            }
                            value = value * 10 + (*q - '0');
                        }
                    }
                }
                number[line * n_digits + d] = value;
            }
            for (e = 0; e < n_equal; e++) {  /* the field is exactly the literal's bytes */
                unsigned char same = 0;
                if (flag[line]) {
                    int32_t a = row[equal_field[e] * 2], z = row[equal_field[e] * 2 + 1];
                    same = (unsigned char)(z - a == equal_len[e] && memcmp(base + a, equal_text[e], (size_t)equal_len[e]) == 0);
                }
                equal[line * n_equal + e] = same;
            }
            for (q = 0; q < n_keys; q++) {  /* up to 7 bytes and their count in one number */
                uint64_t packed = UINT64_MAX;
                if (flag[line]) {
                    int32_t a = row[key_field[q] * 2], z = row[key_field[q] * 2 + 1], t;
                    if (z - a <= 7) {
                        packed = (uint64_t)(z - a) << 56;
                        for (t = 0; t < z - a; t++)
                            packed |= (uint64_t)base[a + t] << (8 * t);
                    }
                }
                key[line * n_keys + q] = packed;
            }
            p++;  /* past the '\n' */
        }
    }
    if (keys != NULL)
        out = PyTuple_Pack(5, bounds, flags, numbers != NULL ? numbers : Py_None, equals != NULL ? equals : Py_None, keys);
    else if (equals != NULL)
        out = PyTuple_Pack(4, bounds, flags, numbers != NULL ? numbers : Py_None, equals);
    else
        out = numbers != NULL ? PyTuple_Pack(3, bounds, flags, numbers) : PyTuple_Pack(2, bounds, flags);
done:
    Py_XDECREF(bounds);
    Py_XDECREF(flags);
    Py_XDECREF(numbers);
    Py_XDECREF(equals);
    Py_XDECREF(keys);
    Py_XDECREF(equal_seq);
    PyBuffer_Release(&block);
    return out;
}

PyDoc_STRVAR(split_block_doc,
"split_block(block, k, n_lines, digit_fields=None, equal_fields=None, key_fields=None, /)\n--\n\n"
"The space-delimited fields of each line of a block (its lines each end with '\\n').\n"
"Returns (bounds, flags): bounds holds k (start, end) int32 byte offsets into the block\n"
"per line; flags one byte per line, 1 when the line is ASCII without '\"', '[' or\n"
"\\x1c-\\x1f (so that str.split() gives its fields exactly) and has exactly k fields,\n"
"else 0 (its bounds are then not to be used). None when the block does not hold\n"
"n_lines lines. With digit_fields (at most 16 field indexes < k), a third item: int64\n"
"numbers, per line one per digit field, the field's value when the line's flag is 1 and\n"
"the field is 1 to 15 ASCII digits, else -1. With equal_fields (at most 16 pairs (field\n"
"index < k, bytes)), a fourth item: per line one byte per pair, 1 when the line's flag is 1\n"
"and the field's bytes are the pair's bytes, else 0 (the third is None without digit_fields).\n"
"With key_fields (at most 16 field indexes < k), a fifth item: uint64 per line per key field,\n"
"the field's length << 56 | its bytes (little-endian) when the line's flag is 1 and the field\n"
"is at most 7 bytes, else 2**64 - 1 (the fourth is None without equal_fields).");

/* ascii_lines: the plain lines of a chunk as str objects, in one pass (formats.py). */

static int
plain_ascii(const unsigned char *p, Py_ssize_t len)
{
    /* 1 when p[0:len] is ASCII without '\r' */
    unsigned char acc = 0;
    Py_ssize_t i;
    for (i = 0; i < len; i++)
        acc |= p[i];
    if (acc & 0x80)
        return 0;
    return memchr(p, '\r', (size_t)len) == NULL;
}

static PyObject *
ascii_lines(PyObject *module, PyObject *args)
{
    Py_buffer buf;
    Py_ssize_t start, max_line, end;
    PyObject *lines = NULL, *out = NULL;
    (void)module;

    if (!PyArg_ParseTuple(args, "y*nn:ascii_lines", &buf, &start, &max_line))
        return NULL;
    if (start < 0 || start > buf.len || max_line < 0) {
        PyErr_SetString(PyExc_ValueError, "start must be within the buffer and max_line >= 0");
        goto done;
    }
    lines = PyList_New(0);
    if (lines == NULL)
        goto done;
    {
        const unsigned char *base = buf.buf, *p = base + start, *stop = base + buf.len, *nl;
        while ((nl = memchr(p, '\n', (size_t)(stop - p))) != NULL) {
            Py_ssize_t len = nl - p;
            PyObject *line;
            if (len == 0 || len > max_line || !plain_ascii(p, len))
                goto plain_no;
            line = PyUnicode_New(len, 127);
            if (line == NULL)
                goto done;
            memcpy(PyUnicode_1BYTE_DATA(line), p, (size_t)len);
            if (PyList_Append(lines, line) < 0) {
                Py_DECREF(line);
                goto done;
            }
            Py_DECREF(line);
            p = nl + 1;
        }
        end = p - base;
        if (stop - p > max_line + 1 || !plain_ascii(p, stop - p))
            goto plain_no;
    }
    out = Py_BuildValue("(On)", lines, end);
    goto done;
plain_no:
    out = Py_None;
    Py_INCREF(out);
done:
    Py_XDECREF(lines);
    PyBuffer_Release(&buf);
    return out;
}

PyDoc_STRVAR(ascii_lines_doc,
"ascii_lines(buf, start, max_line, /)\n--\n\n"
"The lines of buf[start:] that end with '\\n', as str, and the offset after the last\n"
"'\\n': (lines, end). None unless every byte from start is ASCII, none is '\\r', no\n"
"line is empty or longer than max_line bytes, and the bytes after the last '\\n' are at\n"
"most max_line + 1 (the conditions of StreamParser._plain_chunk in formats.py).");

/* ascii_block: the block of a batch of ASCII messages, each followed by '\n' (blocks.py). */

static PyObject *
ascii_block(PyObject *module, PyObject *messages)
{
    Py_ssize_t n, i, total = 0;
    PyObject *out;
    char *w;
    (void)module;

    if (!PyList_Check(messages)) {
        PyErr_SetString(PyExc_TypeError, "messages must be a list of str");
        return NULL;
    }
    n = PyList_GET_SIZE(messages);
    for (i = 0; i < n; i++) {
        PyObject *m = PyList_GET_ITEM(messages, i);
        if (!PyUnicode_Check(m)) {
            PyErr_Format(PyExc_TypeError, "a message must be str, not %.100s", Py_TYPE(m)->tp_name);
            return NULL;
        }
        if (ENSURE_READY(m) < 0)
            return NULL;
        if (!PyUnicode_IS_ASCII(m))
            Py_RETURN_NONE;
        total += PyUnicode_GET_LENGTH(m) + 1;
    }
    out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL)
        return NULL;
    w = PyBytes_AS_STRING(out);
    for (i = 0; i < n; i++) {
        PyObject *m = PyList_GET_ITEM(messages, i);
        Py_ssize_t len = PyUnicode_GET_LENGTH(m);
        memcpy(w, PyUnicode_1BYTE_DATA(m), (size_t)len);
        w += len;
        *w++ = '\n';
    }
    return out;
}

PyDoc_STRVAR(ascii_block_doc,
"ascii_block(messages, /)\n--\n\n"
"The bytes of a list of ASCII str messages, each followed by '\\n' (what\n"
"('\\n'.join(messages) + '\\n').encode() gives, in one copy; b'' for no messages), or\n"
"None when a message is not ASCII.");

/* whole_floats: an int64 array as the JSON text of the same numbers as floats (jsonl.py). */

static PyObject *
whole_floats(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    PyObject *out;
    Py_ssize_t n, i;
    char *w, *start;
    (void)module;

    if (PyObject_GetBuffer(arg, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (view.itemsize != 8 || view.format == NULL || (strcmp(view.format, "l") != 0 && strcmp(view.format, "q") != 0
                                                      && strcmp(view.format, "<q") != 0 && strcmp(view.format, "<l") != 0)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "whole_floats takes a contiguous int64 array");
        return NULL;
    }
    n = view.len / 8;
    out = PyBytes_FromStringAndSize(NULL, 2 + n * 23);  /* '-', 19 digits, ".0", ',' */
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    w = start = PyBytes_AS_STRING(out);
    *w++ = '[';
    for (i = 0; i < n; i++) {
        int64_t v;
        uint64_t u;
        char digits[20];
        int k = 0;
        memcpy(&v, (const char *)view.buf + i * 8, 8);
        if (i)
            *w++ = ',';
        if (v < 0) {
            *w++ = '-';
            u = (uint64_t)0 - (uint64_t)v;
        }
        else
            u = (uint64_t)v;
        do {
            digits[k++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        while (k)
            *w++ = digits[--k];
        *w++ = '.';
        *w++ = '0';
    }
    *w++ = ']';
    PyBuffer_Release(&view);
    if (_PyBytes_Resize(&out, w - start) < 0)
        return NULL;
    return out;
}

PyDoc_STRVAR(whole_floats_doc,
"whole_floats(array, /)\n--\n\n"
"The JSON array of the int64 values of a contiguous buffer, each written as a float is\n"
"by orjson and Python's repr for a whole number below 1e16: b'[1.0,-40.0]'.");

static PyMethodDef speedups_methods[] = {
    {"plain_split", (PyCFunction)plain_split, METH_O, plain_split_doc},
    {"plain_field", (PyCFunction)plain_field, METH_VARARGS, plain_field_doc},
    {"scan_lines", (PyCFunction)scan_lines, METH_VARARGS, scan_lines_doc},
    {"split_block", (PyCFunction)split_block, METH_VARARGS, split_block_doc},
    {"ascii_lines", (PyCFunction)ascii_lines, METH_VARARGS, ascii_lines_doc},
    {"ascii_block", (PyCFunction)ascii_block, METH_O, ascii_block_doc},
    {"json_times", (PyCFunction)json_times, METH_VARARGS, json_times_doc},
    {"whole_floats", (PyCFunction)whole_floats, METH_O, whole_floats_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "castlewatch.grammar._speedups",
    .m_doc = "C versions of castlewatch's literal scan and plain field split (optional).",
    .m_size = -1,
    .m_methods = speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *module;
    if (PyType_Ready(&LiteralsType) < 0)
        return NULL;
    init_split_class();
    module = PyModule_Create(&speedups_module);
    if (module == NULL)
        return NULL;
    Py_INCREF(&LiteralsType);
    if (PyModule_AddObject(module, "Literals", (PyObject *)&LiteralsType) < 0) {
        Py_DECREF(&LiteralsType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
