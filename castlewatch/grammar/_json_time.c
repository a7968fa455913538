/*
 * json_times: the event time of JSON log events, read without building any object (issue 11).
 *
 * Part of castlewatch.grammar._speedups (setup.py builds both files into it).  For each
 * chosen message, a strict RFC 8259 validator walks the text once and notes the value of
 * one top-level key; the time is decided only when the message is certainly one JSON object
 * that the general evaluator's decoders (orjson, and the standard library's json for what
 * orjson refuses) and msgspec all take, with that key at most once, and its value null, or a
 * string without escapes of exactly the form YYYY-MM-DDTHH:MM:SSZ (what CloudTrail writes).
 * Anything else (a character beyond U+00FF, an escape \u, a nesting deeper than
 * JSON_TIME_MAX_DEPTH, invalid JSON, another type or form of the time) is left undecided,
 * for the caller's own reading (castlewatch.engine.batch.literal_plan).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "_json_time.h"

#if PY_VERSION_HEX < 0x030C0000
#define JT_READY(s) PyUnicode_READY(s)
#else
#define JT_READY(s) 0
#endif

#define JSON_TIME_MAX_DEPTH 256
#define JT_NO_TIME INT64_MIN            /* null or absent: no time (bad_timestamp) */
#define JT_UNDECIDED (INT64_MIN + 2)    /* left to the caller */

typedef struct {
    const unsigned char *p, *end;
    int depth;
    const unsigned char *field;
    Py_ssize_t field_len;
    int seen;                          /* times the key occurred at the top level */
    const unsigned char *value;        /* its string's characters, or NULL for null */
    Py_ssize_t value_len;
} JsonScan;

static int jt_value(JsonScan *s);

static inline void
jt_ws(JsonScan *s)
{
    const unsigned char *p = s->p, *end = s->end;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    s->p = p;
}

/* A string at s->p (its opening quote); 0 and s->p past the closing quote, -1 when invalid or
   holding \u (undecided). *escaped: whether it had an escape. */
static int
jt_string(JsonScan *s, int *escaped)
{
    const unsigned char *p = s->p + 1, *end = s->end;
    int esc = 0;
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i control = _mm_set1_epi8(0x1f);
#endif
    for (;;) {
#ifdef __SSE2__
        if (end - p >= 16) {  /* 16 bytes at a time: the first '"', '\\' or control character */
            __m128i x = _mm_loadu_si128((const __m128i *)p);
            __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                                       _mm_cmpeq_epi8(_mm_max_epu8(x, control), control));
            int bits = _mm_movemask_epi8(hit);
            if (!bits) {
                p += 16;
                continue;
            }
            p += __builtin_ctz((unsigned)bits);
        }
        else
#endif
        {
            while (p < end && *p != '"' && *p != '\\' && *p >= 0x20)
                p++;
            if (p >= end)
                return -1;
        }
        if (*p == '"') {
            s->p = p + 1;
            *escaped = esc;
            return 0;
        }
        if (*p < 0x20 || p + 1 >= end)
            return -1;
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            esc = 1;
            p += 2;
            break;
        default:  /* \u (surrogates are where the decoders differ) or an invalid escape */
            return -1;
        }
    }
}

static inline int
jt_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int
jt_number(JsonScan *s)
{
    const unsigned char *p = s->p, *end = s->end;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return -1;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (p < end && jt_digit(*p))
            p++;
    else
        return -1;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !jt_digit(*p))
            return -1;
        while (p < end && jt_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !jt_digit(*p))
            return -1;
        while (p < end && jt_digit(*p))
            p++;
    }
    s->p = p;
    return 0;
}

static int
jt_word(JsonScan *s, const char *word, Py_ssize_t n)
{
    if (s->end - s->p < n || memcmp(s->p, word, (size_t)n) != 0)
        return -1;
    s->p += n;
    return 0;
}

/* Past a container's opener (``close`` its closer): 1 when it is empty (closed as well), 0 when
   an element follows, -1 when nested too deep. */
static int
jt_open(JsonScan *s, unsigned char close)
{
    if (++s->depth > JSON_TIME_MAX_DEPTH)
        return -1;
    s->p++;
    jt_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return 1;
    }
    return 0;
}

/* After an element of a container: 0 past a ',' (another element follows), 1 past ``close``
   (the container done), -1 at anything else. */
static int
jt_next(JsonScan *s, unsigned char close)
{
    jt_ws(s);
    if (s->p >= s->end)
        return -1;
    if (*s->p == ',') {
        s->p++;
        jt_ws(s);
        return 0;
    }
    if (*s->p != close)
        return -1;
    s->p++;
    s->depth--;
    return 1;
}

/* An object at s->p; top: the one whose key ``field`` is looked for. */
static int
jt_object(JsonScan *s, int top)
{
    int escaped, state = jt_open(s, '}');
    while (state == 0) {
        const unsigned char *key;
        Py_ssize_t key_len;
        if (s->p >= s->end || *s->p != '"')
            return -1;
        key = s->p + 1;
        if (jt_string(s, &escaped) < 0)
            return -1;
        key_len = (s->p - 1) - key;
        jt_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return -1;
        s->p++;
        jt_ws(s);
        if (top && !escaped && key_len == s->field_len && memcmp(key, s->field, (size_t)key_len) == 0) {
            if (++s->seen > 1)
                return -1;  /* a duplicate: which one a decoder keeps is for the caller to read */
            if (s->p < s->end && *s->p == '"') {
                const unsigned char *value = s->p + 1;
                if (jt_string(s, &escaped) < 0 || escaped)
                    return -1;
                s->value = value;
                s->value_len = (s->p - 1) - value;
            }
            else if (jt_word(s, "null", 4) == 0)
                s->value = NULL;
            else
                return -1;  /* another type: the caller decides */
        }
        else if (jt_value(s) < 0)
            return -1;
        state = jt_next(s, '}');
    }
    return state < 0 ? -1 : 0;
}

static int
jt_array(JsonScan *s)
{
    int state = jt_open(s, ']');
    while (state == 0) {
        if (jt_value(s) < 0)
            return -1;
        state = jt_next(s, ']');
    }
    return state < 0 ? -1 : 0;
}

static int
jt_value(JsonScan *s)
{
    int escaped;
    jt_ws(s);
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '{': return jt_object(s, 0);
    case '[': return jt_array(s);
    case '"': return jt_string(s, &escaped);
    case 't': return jt_word(s, "true", 4);
    case 'f': return jt_word(s, "false", 5);
    case 'n': return jt_word(s, "null", 4);
    default: return jt_number(s);
    }
}

/* Epoch ms of YYYY-MM-DDTHH:MM:SSZ (a valid date and time, year from 1), else JT_UNDECIDED. */
static int64_t
jt_iso_z(const unsigned char *t, Py_ssize_t n)
{
    static const int at[14] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18};
    static const int64_t month_days[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t d[14], year, month, day, hour, minute, second, y, era, yoe, doy, days, limit;
    int i;
    if (n != 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':' || t[19] != 'Z')
        return JT_UNDECIDED;
    for (i = 0; i < 14; i++) {
        if (!jt_digit(t[at[i]]))
            return JT_UNDECIDED;
        d[i] = t[at[i]] - '0';
    }
    year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3];
    month = d[4] * 10 + d[5];
    day = d[6] * 10 + d[7];
    hour = d[8] * 10 + d[9];
    minute = d[10] * 10 + d[11];
    second = d[12] * 10 + d[13];
    if (year < 1 || month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59)
        return JT_UNDECIDED;
    limit = month_days[month] + (month == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0));
    if (day < 1 || day > limit)
        return JT_UNDECIDED;
    y = year - (month <= 2);
    era = y / 400;  /* y >= 0 */
    yoe = y - era * 400;
    doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    return (((days * 24 + hour) * 60 + minute) * 60 + second) * 1000;
}

static int64_t
jt_message(const unsigned char *data, Py_ssize_t n, const unsigned char *field, Py_ssize_t field_len)
{
    JsonScan s;
    s.p = data;
    s.end = data + n;
    s.depth = 0;
    s.field = field;
    s.field_len = field_len;
    s.seen = 0;
    s.value = NULL;
    s.value_len = 0;
    jt_ws(&s);
    if (s.p >= s.end || *s.p != '{' || jt_object(&s, 1) < 0)
        return JT_UNDECIDED;
    jt_ws(&s);
    if (s.p != s.end)
        return JT_UNDECIDED;
    if (s.seen == 0 || s.value == NULL)
        return JT_NO_TIME;
    return jt_iso_z(s.value, s.value_len);
}

typedef struct {
    const unsigned char *data;  /* NULL: not in the 1-byte representation (undecided) */
    Py_ssize_t len;
} JtLine;

PyObject *
json_times(PyObject *module, PyObject *args)
{
    PyObject *messages, *field, *out = NULL;
    Py_buffer rows;
    Py_ssize_t n_rows, n_messages, i, field_len;
    const char *field_data;
    int64_t *times;
    JtLine *lines = NULL;
    (void)module;

    if (!PyArg_ParseTuple(args, "O!y*U:json_times", &PyList_Type, &messages, &rows, &field))
        return NULL;
    field_data = PyUnicode_AsUTF8AndSize(field, &field_len);
    if (field_data == NULL)
        goto done;
    if (rows.len % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "rows must be int64");
        goto done;
    }
    n_rows = rows.len / 8;
    n_messages = PyList_GET_SIZE(messages);
    lines = PyMem_Malloc((size_t)(n_rows ? n_rows : 1) * sizeof(*lines));
    out = PyBytes_FromStringAndSize(NULL, n_rows * 8);
    if (lines == NULL || out == NULL) {
        if (lines == NULL)
            PyErr_NoMemory();
        Py_CLEAR(out);
        goto done;
    }
    /* with the GIL: where each message's characters are (the list holds them: nothing frees
       or changes them while the scan below runs without it) */
    for (i = 0; i < n_rows; i++) {
        int64_t row;
        PyObject *message;
        memcpy(&row, (const char *)rows.buf + i * 8, 8);
        if (row < 0 || row >= n_messages) {
            PyErr_SetString(PyExc_IndexError, "a row beyond the messages");
            Py_CLEAR(out);
            goto done;
        }
        message = PyList_GET_ITEM(messages, row);
        lines[i].data = NULL;
        lines[i].len = 0;
        if (!PyUnicode_Check(message) || JT_READY(message) < 0 || PyUnicode_KIND(message) != PyUnicode_1BYTE_KIND) {
            PyErr_Clear();
            continue;
        }
        lines[i].data = PyUnicode_1BYTE_DATA(message);
        lines[i].len = PyUnicode_GET_LENGTH(message);
    }
    times = (int64_t *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS  /* the file source's next chunk is split meanwhile (a replay) */
    for (i = 0; i < n_rows; i++)
        times[i] = lines[i].data == NULL ? JT_UNDECIDED
                   : jt_message(lines[i].data, lines[i].len, (const unsigned char *)field_data, field_len);
    Py_END_ALLOW_THREADS
done:
    PyMem_Free(lines);
    PyBuffer_Release(&rows);
    return out;
}

const char json_times_doc[] =
"json_times(messages, rows, field, /)\n--\n\n"
"For each row of ``rows`` (int64 indexes into the list ``messages``, as bytes), the time\n"
"of that message as int64 bytes: epoch ms of the top-level ``field`` when the message is\n"
"certainly one JSON object with that key at most once, its value null or absent\n"
"(INT64_MIN) or a string YYYY-MM-DDTHH:MM:SSZ without escapes; INT64_MIN + 2 (undecided)\n"
"for every other message (see the file's comment).";
