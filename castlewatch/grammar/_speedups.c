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
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

static PyObject *
plain_split(PyObject *module, PyObject *message)
{
    const unsigned char *data;
    Py_ssize_t i, n;
    unsigned char special = 0;

    (void)module;
    if (!PyUnicode_Check(message)) {
        PyErr_Format(PyExc_TypeError, "the message must be str, not %.100s", Py_TYPE(message)->tp_name);
        return NULL;
    }
    if (ENSURE_READY(message) < 0)
        return NULL;
    if (!PyUnicode_IS_ASCII(message))
        Py_RETURN_NONE;
    data = PyUnicode_1BYTE_DATA(message);
    n = PyUnicode_GET_LENGTH(message);
    /* no early exit: the loop vectorises, and plain text is the common case */
    for (i = 0; i < n; i++) {
        unsigned char c = data[i];
        special |= (unsigned char)((c == '"') | (c == '[') | ((c & 0xFC) == 0x1C));
    }
    if (special)
        Py_RETURN_NONE;
    return PyUnicode_Split(message, NULL, -1);
}

PyDoc_STRVAR(plain_split_doc,
"plain_split(message, /)\n--\n\n"
"message.split() when the message is ASCII with no '\"', '[' or \\x1c-\\x1f (then\n"
"str.split() separates exactly the space-delimited fields), else None.");

static PyMethodDef speedups_methods[] = {
    {"plain_split", (PyCFunction)plain_split, METH_O, plain_split_doc},
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
