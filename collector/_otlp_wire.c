/* Serialized ExportTraceServiceRequest -> plain Python objects, in one pass over the bytes.
 *
 * Why: walking a parsed request through the protobuf runtime costs one Python wrapper per
 * KeyValue and AnyValue, and that walk was the largest single step of the collector's decode
 * (~12 us of ~66 per span, bench/README.md). Here the wire format is read directly into dicts.
 *
 * Goes out, the same values collector.decode_traces.read_request builds from a parsed message:
 *   [(resource_attributes, [(scope_name, scope_version, [span, ...]), ...]), ...]
 *   span = (trace_id_hex, span_id_hex, parent_span_id_hex, trace_state, name, kind, start_ns,
 *           end_ns, attributes, events, links, status_code, status_message)
 *   events = [{"time", "name", "attributes"}], links = [{"trace_id", "span_id", "attributes"}]
 * AnyValue as collector.attributes.decode_value: str, int, float, bool, list, dict, bytes as hex,
 * None when unset (or a profiles string index). Protobuf rules kept: unknown fields are skipped,
 * a singular field sent twice keeps its last value, a message field sent twice is merged, strings
 * must be valid UTF-8.
 * Anything else raises DecodeError (a ValueError).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 200 /* nesting of AnyValue; the protobuf runtime stops at 100 first */

typedef struct {
    const uint8_t *p, *end;
} Reader;

static PyObject *DecodeError;
static PyObject *s_empty;

static int fail(const char *what) {
    PyErr_Format(DecodeError, "malformed ExportTraceServiceRequest: %s", what);
    return -1;
}

static int read_varint(Reader *r, uint64_t *out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return fail("truncated varint");
        uint8_t byte = *r->p++;
        if (shift < 64) value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return 0;
        }
    }
    return fail("varint longer than 10 bytes");
}

static int read_tag(Reader *r, uint32_t *field, int *wire_type) {
    uint64_t tag;
    if (read_varint(r, &tag) < 0) return -1;
    if (tag > UINT32_MAX || (tag >> 3) == 0) return fail("bad field tag");
    *field = (uint32_t)(tag >> 3);
    *wire_type = (int)(tag & 7);
    return 0;
}

static int read_fixed64(Reader *r, uint64_t *out) {
    if (r->end - r->p < 8) return fail("truncated fixed64");
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--) value = (value << 8) | r->p[i];
    r->p += 8;
    *out = value;
    return 0;
}

static int read_bytes(Reader *r, Reader *out) {
    uint64_t length;
    if (read_varint(r, &length) < 0) return -1;
    if (length > (uint64_t)(r->end - r->p)) return fail("length past the end of the message");
    out->p = r->p;
    out->end = r->p + length;
    r->p += length;
    return 0;
}

static int skip_field(Reader *r, uint32_t field, int wire_type, int depth) {
    uint64_t ignored;
    Reader sub;
    switch (wire_type) {
    case 0:
        return read_varint(r, &ignored);
    case 1:
        if (r->end - r->p < 8) return fail("truncated fixed64");
        r->p += 8;
        return 0;
    case 2:
        return read_bytes(r, &sub);
    case 5:
        if (r->end - r->p < 4) return fail("truncated fixed32");
        r->p += 4;
        return 0;
    case 3: /* a group: skip up to its matching end */
        if (depth > MAX_DEPTH) return fail("groups nested too deep");
        for (;;) {
            uint32_t inner;
            int inner_type;
            if (read_tag(r, &inner, &inner_type) < 0) return -1;
            if (inner_type == 4) return inner == field ? 0 : fail("mismatched end of group");
            if (skip_field(r, inner, inner_type, depth + 1) < 0) return -1;
        }
    default:
        return fail("bad wire type");
    }
}

/* Short strings repeat (keys, model names, roles): one cache of str objects, keyed by their bytes,
 * saves building and hashing a new object each time. Direct-mapped; a miss replaces the slot. */
#define CACHE_SLOTS 4096
#define CACHE_MAX_LEN 48
static PyObject *cache[CACHE_SLOTS];

static PyObject *make_str(Reader s) {
    Py_ssize_t length = s.end - s.p;
    if (length == 0) return Py_NewRef(s_empty);
    if (length > CACHE_MAX_LEN) return PyUnicode_DecodeUTF8((const char *)s.p, length, NULL);
    uint32_t hash = 2166136261u;
    for (const uint8_t *q = s.p; q < s.end; q++) hash = (hash ^ *q) * 16777619u;
    PyObject **slot = &cache[hash & (CACHE_SLOTS - 1)];
    if (*slot != NULL) {
        Py_ssize_t cached_length;
        const char *cached = PyUnicode_AsUTF8AndSize(*slot, &cached_length);
        if (cached != NULL && cached_length == length && memcmp(cached, s.p, length) == 0) return Py_NewRef(*slot);
    }
    PyObject *value = PyUnicode_DecodeUTF8((const char *)s.p, length, NULL);
    if (value == NULL) return NULL;
    Py_XSETREF(*slot, Py_NewRef(value));
    return value;
}

static PyObject *make_str_field(Reader *r) {
    Reader s;
    if (read_bytes(r, &s) < 0) return NULL;
    PyObject *value = make_str(s);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        fail("string field is not valid UTF-8");
    }
    return value;
}

static PyObject *make_hex(Reader s) {
    static const char digits[] = "0123456789abcdef";
    Py_ssize_t length = s.end - s.p;
    if (length == 0) return Py_NewRef(s_empty);
    PyObject *out = PyUnicode_New(2 * length, 127);
    if (out == NULL) return NULL;
    Py_UCS1 *data = PyUnicode_1BYTE_DATA(out);
    for (Py_ssize_t i = 0; i < length; i++) {
        data[2 * i] = digits[s.p[i] >> 4];
        data[2 * i + 1] = digits[s.p[i] & 15];
    }
    return out;
}

static PyObject *make_hex_field(Reader *r) {
    Reader s;
    if (read_bytes(r, &s) < 0) return NULL;
    return make_hex(s);
}

/* A string field read into *slot, replacing what an earlier occurrence left there. */
static int set_str_field(Reader *r, PyObject **slot) {
    PyObject *value = make_str_field(r);
    if (value == NULL) return -1;
    Py_XSETREF(*slot, value);
    return 0;
}

static int set_hex_field(Reader *r, PyObject **slot) {
    PyObject *value = make_hex_field(r);
    if (value == NULL) return -1;
    Py_XSETREF(*slot, value);
    return 0;
}

static int read_key_values(Reader r, PyObject *into, int depth);

/* One AnyValue message merged into (*kind, *value): a later oneof member replaces an earlier
 * one, except that two arrays (or two key-value lists) are merged, as protobuf merges them. */
static int read_any_value(Reader r, int depth, int *kind, PyObject **value) {
    if (depth > MAX_DEPTH) return fail("values nested too deep");
    while (r.p < r.end) {
        uint32_t field;
        int wire_type;
        uint64_t number;
        Reader sub;
        PyObject *item = NULL;
        if (read_tag(&r, &field, &wire_type) < 0) return -1;
        if (field == 1 && wire_type == 2) {
            item = make_str_field(&r);
        } else if (field == 2 && wire_type == 0) {
            if (read_varint(&r, &number) < 0) return -1;
            item = PyBool_FromLong(number != 0);
        } else if (field == 3 && wire_type == 0) {
            if (read_varint(&r, &number) < 0) return -1;
            item = PyLong_FromLongLong((long long)number);
        } else if (field == 4 && wire_type == 1) {
            double real;
            if (read_fixed64(&r, &number) < 0) return -1;
            memcpy(&real, &number, sizeof real);
            item = PyFloat_FromDouble(real);
        } else if (field == 5 && wire_type == 2) {
            if (read_bytes(&r, &sub) < 0) return -1;
            PyObject *list = *kind == 5 ? Py_NewRef(*value) : PyList_New(0);
            if (list == NULL) return -1;
            while (sub.p < sub.end) { /* ArrayValue: 1 = repeated AnyValue */
                uint32_t inner;
                int inner_type;
                Reader element;
                if (read_tag(&sub, &inner, &inner_type) < 0) goto array_failed;
                if (inner != 1 || inner_type != 2) {
                    if (skip_field(&sub, inner, inner_type, depth) < 0) goto array_failed;
                    continue;
                }
                if (read_bytes(&sub, &element) < 0) goto array_failed;
                int element_kind = 0;
                PyObject *element_value = NULL;
                if (read_any_value(element, depth + 1, &element_kind, &element_value) < 0) {
                    Py_XDECREF(element_value);
                    goto array_failed;
                }
                int appended = PyList_Append(list, element_value ? element_value : Py_None);
                Py_XDECREF(element_value);
                if (appended < 0) goto array_failed;
            }
            item = list;
            goto store;
        array_failed:
            Py_DECREF(list);
            return -1;
        } else if (field == 6 && wire_type == 2) {
            if (read_bytes(&r, &sub) < 0) return -1;
            PyObject *dict = *kind == 6 ? Py_NewRef(*value) : PyDict_New();
            if (dict == NULL) return -1;
            if (read_key_values(sub, dict, depth + 1) < 0) {
                Py_DECREF(dict);
                return -1;
            }
            item = dict;
        } else if (field == 7 && wire_type == 2) {
            if (read_bytes(&r, &sub) < 0) return -1;
            item = make_hex(sub);
        } else if (field == 8 && wire_type == 0) { /* string_value_strindex: profiles only, no value here */
            if (read_varint(&r, &number) < 0) return -1;
            item = Py_NewRef(Py_None);
        } else {
            if (skip_field(&r, field, wire_type, depth) < 0) return -1;
            continue;
        }
    store:
        if (item == NULL) return -1;
        Py_XSETREF(*value, item);
        *kind = (int)field;
    }
    return 0;
}

/* One KeyValue message into `into`; a later duplicate key wins, as in the OTel SDK. */
static int read_key_value(Reader r, PyObject *into, int depth) {
    PyObject *key = NULL, *value = NULL;
    int kind = 0;
    while (r.p < r.end) {
        uint32_t field;
        int wire_type;
        Reader sub;
        if (read_tag(&r, &field, &wire_type) < 0) goto failed;
        if (field == 1 && wire_type == 2) {
            if (set_str_field(&r, &key) < 0) goto failed;
        } else if (field == 2 && wire_type == 2) {
            if (read_bytes(&r, &sub) < 0 || read_any_value(sub, depth, &kind, &value) < 0) goto failed;
        } else if (skip_field(&r, field, wire_type, depth) < 0) {
            goto failed;
        }
    }
    int stored = PyDict_SetItem(into, key ? key : s_empty, value ? value : Py_None);
    Py_XDECREF(key);
    Py_XDECREF(value);
    return stored;
failed:
    Py_XDECREF(key);
    Py_XDECREF(value);
    return -1;
}

/* Every field `number` (a repeated KeyValue) of a message into `into`; other fields skipped. */
static int read_attributes_field(Reader r, uint32_t number, PyObject *into, int depth) {
    while (r.p < r.end) {
        uint32_t field;
        int wire_type;
        Reader sub;
        if (read_tag(&r, &field, &wire_type) < 0) return -1;
        if (field == number && wire_type == 2) {
            if (read_bytes(&r, &sub) < 0 || read_key_value(sub, into, depth) < 0) return -1;
        } else if (skip_field(&r, field, wire_type, depth) < 0) {
            return -1;
        }
    }
    return 0;
}

static int read_key_values(Reader r, PyObject *into, int depth) {
    return read_attributes_field(r, 1, into, depth);
}

/* A small message read into a dict of the fields listed, in their order; a field not sent reads as
 * 0 (a time), "" (a string or id) or {} (attributes). Span.Event and Span.Link are read this way. */
typedef enum { TIME, STRING, HEX, ATTRIBUTES } FieldKind;
typedef struct {
    uint32_t number;
    FieldKind kind;
    const char *key;
} Field;
#define MAX_FIELDS 4
static const Field EVENT_FIELDS[] = {{1, TIME, "time"}, {2, STRING, "name"}, {3, ATTRIBUTES, "attributes"}, {0}};
static const Field LINK_FIELDS[] = {{1, HEX, "trace_id"}, {2, HEX, "span_id"}, {4, ATTRIBUTES, "attributes"}, {0}};

static int read_field(Reader *r, FieldKind kind, PyObject **slot) {
    Reader sub;
    uint64_t time;
    switch (kind) {
    case TIME:
        if (read_fixed64(r, &time) < 0) return -1;
        Py_XSETREF(*slot, PyLong_FromUnsignedLongLong(time));
        return *slot == NULL ? -1 : 0;
    case STRING:
        return set_str_field(r, slot);
    case HEX:
        return set_hex_field(r, slot);
    default: /* ATTRIBUTES: the dict is made before the loop */
        return read_bytes(r, &sub) < 0 || read_key_value(sub, *slot, 0) < 0 ? -1 : 0;
    }
}

static PyObject *read_as_dict(Reader r, const Field *fields) {
    PyObject *values[MAX_FIELDS] = {NULL}, *out = NULL;
    int count = 0;
    for (; fields[count].number; count++) {
        if (fields[count].kind == ATTRIBUTES && (values[count] = PyDict_New()) == NULL) goto done;
    }
    while (r.p < r.end) {
        uint32_t field;
        int wire_type, i = 0;
        if (read_tag(&r, &field, &wire_type) < 0) goto done;
        while (i < count && !(fields[i].number == field && wire_type == (fields[i].kind == TIME ? 1 : 2))) i++;
        if (i < count ? read_field(&r, fields[i].kind, &values[i]) : skip_field(&r, field, wire_type, 0)) goto done;
    }
    out = PyDict_New();
    for (int i = 0; out != NULL && i < count; i++) {
        if (values[i] == NULL) values[i] = fields[i].kind == TIME ? PyLong_FromLong(0) : Py_NewRef(s_empty);
        if (values[i] == NULL || PyDict_SetItemString(out, fields[i].key, values[i]) < 0) Py_CLEAR(out);
    }
done:
    for (int i = 0; i < count; i++) Py_XDECREF(values[i]);
    return out;
}

static int append_new(PyObject *list, PyObject *item) {
    if (item == NULL) return -1;
    int appended = PyList_Append(list, item);
    Py_DECREF(item);
    return appended;
}

/* Span: 1 trace_id, 2 span_id, 3 trace_state, 4 parent_span_id, 5 name, 6 kind, 7 start, 8 end,
 * 9 attributes, 11 events, 13 links, 15 status (2 message, 3 code). */
static PyObject *read_span(Reader r) {
    enum { TRACE_ID, SPAN_ID, PARENT, TRACE_STATE, NAME, STATUS_MESSAGE, STRINGS };
    PyObject *strings[STRINGS] = {NULL};
    PyObject *attributes = PyDict_New(), *events = PyList_New(0), *links = PyList_New(0), *span = NULL;
    uint64_t start = 0, end = 0, kind = 0, code = 0;
    if (attributes == NULL || events == NULL || links == NULL) goto done;
    while (r.p < r.end) {
        uint32_t field;
        int wire_type, failed = 0;
        Reader sub;
        if (read_tag(&r, &field, &wire_type) < 0) goto done;
        if (wire_type == 2 && field <= 5) {
            static const int slot_of[] = {0, TRACE_ID, SPAN_ID, TRACE_STATE, PARENT, NAME};
            int slot = slot_of[field];
            failed = slot == TRACE_STATE || slot == NAME ? set_str_field(&r, &strings[slot])
                                                         : set_hex_field(&r, &strings[slot]);
        } else if (field == 6 && wire_type == 0) {
            failed = read_varint(&r, &kind);
        } else if (field == 7 && wire_type == 1) {
            failed = read_fixed64(&r, &start);
        } else if (field == 8 && wire_type == 1) {
            failed = read_fixed64(&r, &end);
        } else if (field == 9 && wire_type == 2) {
            failed = read_bytes(&r, &sub) < 0 || read_key_value(sub, attributes, 0) < 0;
        } else if (field == 11 && wire_type == 2) {
            failed = read_bytes(&r, &sub) < 0 || append_new(events, read_as_dict(sub, EVENT_FIELDS)) < 0;
        } else if (field == 13 && wire_type == 2) {
            failed = read_bytes(&r, &sub) < 0 || append_new(links, read_as_dict(sub, LINK_FIELDS)) < 0;
        } else if (field == 15 && wire_type == 2) {
            if (read_bytes(&r, &sub) < 0) goto done;
            while (!failed && sub.p < sub.end) {
                uint32_t inner;
                int inner_type;
                if (read_tag(&sub, &inner, &inner_type) < 0) goto done;
                if (inner == 2 && inner_type == 2) {
                    failed = set_str_field(&sub, &strings[STATUS_MESSAGE]);
                } else if (inner == 3 && inner_type == 0) {
                    failed = read_varint(&sub, &code);
                } else {
                    failed = skip_field(&sub, inner, inner_type, 0);
                }
            }
        } else {
            failed = skip_field(&r, field, wire_type, 0);
        }
        if (failed) goto done;
    }
    for (int i = 0; i < STRINGS; i++) {
        if (strings[i] == NULL) strings[i] = Py_NewRef(s_empty);
    }
    /* Enums are int32 on the wire (negative ones sign-extended), as the protobuf runtime reads them. */
    span = Py_BuildValue("(OOOOOiKKOOOiO)", strings[TRACE_ID], strings[SPAN_ID], strings[PARENT], strings[TRACE_STATE],
                         strings[NAME], (int)(int32_t)kind, (unsigned long long)start, (unsigned long long)end,
                         attributes, events, links, (int)(int32_t)code, strings[STATUS_MESSAGE]);
done:
    for (int i = 0; i < STRINGS; i++) Py_XDECREF(strings[i]);
    Py_XDECREF(attributes);
    Py_XDECREF(events);
    Py_XDECREF(links);
    return span;
}

/* ScopeSpans: 1 scope (1 name, 2 version), 2 spans. */
static PyObject *read_scope_spans(Reader r) {
    PyObject *name = NULL, *version = NULL, *spans = PyList_New(0), *out = NULL;
    if (spans == NULL) return NULL;
    while (r.p < r.end) {
        uint32_t field;
        int wire_type;
        Reader sub;
        if (read_tag(&r, &field, &wire_type) < 0) goto done;
        if (field == 1 && wire_type == 2) {
            if (read_bytes(&r, &sub) < 0) goto done;
            while (sub.p < sub.end) {
                uint32_t inner;
                int inner_type, failed;
                if (read_tag(&sub, &inner, &inner_type) < 0) goto done;
                if (inner == 1 && inner_type == 2) {
                    failed = set_str_field(&sub, &name);
                } else if (inner == 2 && inner_type == 2) {
                    failed = set_str_field(&sub, &version);
                } else {
                    failed = skip_field(&sub, inner, inner_type, 0);
                }
                if (failed) goto done;
            }
        } else if (field == 2 && wire_type == 2) {
            if (read_bytes(&r, &sub) < 0 || append_new(spans, read_span(sub)) < 0) goto done;
        } else if (skip_field(&r, field, wire_type, 0) < 0) {
            goto done;
        }
    }
    out = Py_BuildValue("(OOO)", name ? name : s_empty, version ? version : s_empty, spans);
done:
    Py_XDECREF(name);
    Py_XDECREF(version);
    Py_DECREF(spans);
    return out;
}

/* ResourceSpans: 1 resource (1 attributes), 2 scope_spans. */
static PyObject *read_resource_spans(Reader r) {
    PyObject *attributes = PyDict_New(), *scopes = PyList_New(0), *out = NULL;
    if (attributes == NULL || scopes == NULL) goto done;
    while (r.p < r.end) {
        uint32_t field;
        int wire_type;
        Reader sub;
        if (read_tag(&r, &field, &wire_type) < 0) goto done;
        if (field == 1 && wire_type == 2) {
            if (read_bytes(&r, &sub) < 0 || read_attributes_field(sub, 1, attributes, 0) < 0) goto done;
        } else if (field == 2 && wire_type == 2) {
            if (read_bytes(&r, &sub) < 0 || append_new(scopes, read_scope_spans(sub)) < 0) goto done;
        } else if (skip_field(&r, field, wire_type, 0) < 0) {
            goto done;
        }
    }
    out = PyTuple_Pack(2, attributes, scopes);
done:
    Py_XDECREF(attributes);
    Py_XDECREF(scopes);
    return out;
}

static PyObject *read_trace_request(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    Reader r = {(const uint8_t *)view.buf, (const uint8_t *)view.buf + view.len};
    PyObject *out = PyList_New(0);
    while (out != NULL && r.p < r.end) {
        uint32_t field;
        int wire_type;
        Reader sub;
        int failed;
        if (read_tag(&r, &field, &wire_type) < 0) {
            failed = 1;
        } else if (field == 1 && wire_type == 2) {
            failed = read_bytes(&r, &sub) < 0 || append_new(out, read_resource_spans(sub)) < 0;
        } else {
            failed = skip_field(&r, field, wire_type, 0) < 0;
        }
        if (failed) Py_CLEAR(out);
    }
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"read_trace_request", read_trace_request, METH_O,
     "read_trace_request(data) -> [(resource_attributes, [(scope_name, scope_version, [span, ...])])]\n\n"
     "A serialized ExportTraceServiceRequest as plain Python values; see collector.decode_traces."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, .m_name = "_otlp_wire", .m_size = -1, .m_methods = methods,
};

PyMODINIT_FUNC PyInit__otlp_wire(void) {
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    DecodeError = PyErr_NewException("collector._otlp_wire.DecodeError", PyExc_ValueError, NULL);
    s_empty = PyUnicode_FromString("");
    if (DecodeError == NULL || s_empty == NULL || PyModule_AddObjectRef(module, "DecodeError", DecodeError) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
