/* The common case of `layers._parse`, compiled: plain ustar headers read into Entry objects.
 *
 * `scan` walks the headers that lie, with their contents, whole inside one buffer and stops at
 * the first header it does not take on: a zero block, a bad or unusual field, a metadata entry
 * (PAX, GNU long name), a non-ASCII name, a path left empty, aufs bookkeeping, or an entry that
 * runs past the buffer. `layers._parse` then reads that header as it reads every header without
 * this module, so the rules live in Python and this file only has to agree with them on the
 * entries it takes (tests/test_tarscan.py compares both on generated and mutated tars).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define BLOCK 512
#define PATH_MAX_BYTES (155 + 1 + 100)

enum { FILE_KIND, HARDLINK_KIND, DIR_KIND, SYMLINK_KIND, SPECIAL_KIND, WHITEOUT_KIND,
       OPAQUE_KIND, KIND_COUNT };

/* A numeric field spelt as octal digits, optionally after spaces and before NULs or spaces:
 * what `int(field.rstrip(b"\0 "), 8)` reads. 0 with *value set; -1 for any other spelling. */
static int octal(const unsigned char *field, Py_ssize_t length, long long *value)
{
    Py_ssize_t at = 0;
    long long result = 0;
    while (at < length && field[at] == ' ')
        at++;
    Py_ssize_t first = at;
    while (at < length && field[at] >= '0' && field[at] <= '7') {
        result = (result << 3) | (field[at] - '0');
        at++;
    }
    if (at == first)
        return -1;
    for (; at < length; at++)
        if (field[at] != 0 && field[at] != ' ')
            return -1;
    *value = result;
    return 0;
}

/* The bytes of a text field up to its first NUL. */
static Py_ssize_t text_length(const unsigned char *field, Py_ssize_t size)
{
    const unsigned char *nul = memchr(field, 0, (size_t)size);
    return nul ? nul - field : size;
}

static int ascii(const unsigned char *text, Py_ssize_t length)
{
    for (Py_ssize_t i = 0; i < length; i++)
        if (text[i] & 0x80)
            return 0;
    return 1;
}

/* `normalize_path`: empty and `.` parts dropped, `..` drops the part before it (none above the
 * root). Writes into out (at least `length` bytes) and returns the normalized length. */
static Py_ssize_t normalize(const unsigned char *raw, Py_ssize_t length, unsigned char *out)
{
    Py_ssize_t size = 0, at = 0;
    while (at <= length) {
        Py_ssize_t end = at;
        while (end < length && raw[end] != '/')
            end++;
        Py_ssize_t part = end - at;
        if (part == 0 || (part == 1 && raw[at] == '.')) {
            /* nothing */
        } else if (part == 2 && raw[at] == '.' && raw[at + 1] == '.') {
            while (size > 0 && out[size - 1] != '/')
                size--;
            if (size > 0)
                size--; /* the slash before the dropped part */
        } else {
            if (size > 0)
                out[size++] = '/';
            memcpy(out + size, raw + at, (size_t)part);
            size += part;
        }
        at = end + 1;
    }
    return size;
}

/* Modes, uids and gids repeat: one int object per value below SHARED_NUMBERS, made on first use
 * and kept, so a million entries do not hold a million copies of 0o644 (CPython shares only
 * -5..256). A new reference, or NULL with an exception. */
#define SHARED_NUMBERS 65536
static PyObject *shared_numbers[SHARED_NUMBERS];

static PyObject *number(long long value)
{
    if (value < 0 || value >= SHARED_NUMBERS)
        return PyLong_FromLongLong(value);
    PyObject **slot = &shared_numbers[value];
    if (*slot == NULL && (*slot = PyLong_FromLongLong(value)) == NULL)
        return NULL;
    return Py_NewRef(*slot);
}

static int starts_with(const unsigned char *text, Py_ssize_t length, const char *prefix)
{
    Py_ssize_t n = (Py_ssize_t)strlen(prefix);
    return length >= n && memcmp(text, prefix, (size_t)n) == 0;
}

/* What a FILE's content gives its entry: (digest, offset, content), each a new reference. */
static int file_content(const unsigned char *content, long long size, PyObject *path,
                        PyObject *size_object, PyObject *capture, PyObject *hasher,
                        int hash_contents, PyObject *origin, long long position,
                        PyObject **digest, PyObject **offset, PyObject **kept)
{
    int captured = 0;
    if (capture != Py_None) {
        PyObject *answer = PyObject_CallFunctionObjArgs(capture, path, size_object, NULL);
        if (answer == NULL)
            return -1;
        captured = PyObject_IsTrue(answer);
        Py_DECREF(answer);
        if (captured < 0)
            return -1;
    }
    if (captured) {
        *kept = PyBytes_FromStringAndSize((const char *)content, (Py_ssize_t)size);
        if (*kept == NULL)
            return -1;
        *digest = PyObject_CallOneArg(hasher, *kept);
        return *digest == NULL ? -1 : 0;
    }
    if (hash_contents) {
        PyObject *view = PyMemoryView_FromMemory((char *)content, (Py_ssize_t)size, PyBUF_READ);
        if (view == NULL)
            return -1;
        *digest = PyObject_CallOneArg(hasher, view);
        Py_DECREF(view);
        return *digest == NULL ? -1 : 0;
    }
    if (origin != Py_None) {
        PyObject *here = PyLong_FromLongLong(position);
        if (here == NULL)
            return -1;
        *offset = PyNumber_Add(origin, here);
        Py_DECREF(here);
        return *offset == NULL ? -1 : 0;
    }
    return 0;
}

/* scan(buffer, at, entries, entry_type, kinds, capture, hasher, hash_contents, offset_origin)
 *   -> at
 *
 * Appends an `entry_type(path, kind, size, mode, uid, gid, link_target, digest, offset,
 * content)` to `entries` for each header it takes from `buffer[at:]`, and returns the position
 * after the last one taken. `kinds` are the EntryKind members by value. A FILE's content is
 * kept and hashed with `hasher` when `capture(path, size)` says so (capture may be None), else
 * hashed when `hash_contents`, else given `offset = offset_origin + its position in buffer`
 * when offset_origin is not None. */
static PyObject *scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "scan takes 9 arguments");
        return NULL;
    }
    PyObject *buffer = args[0], *entries = args[2], *entry_type = args[3], *kinds = args[4];
    PyObject *capture = args[5], *hasher = args[6], *origin = args[8];
    if (!PyBytes_Check(buffer) || !PyList_Check(entries) || !PyTuple_Check(kinds)
        || PyTuple_GET_SIZE(kinds) != KIND_COUNT) {
        PyErr_SetString(PyExc_TypeError, "scan: bad arguments");
        return NULL;
    }
    int hash_contents = PyObject_IsTrue(args[7]);
    if (hash_contents < 0)
        return NULL;
    Py_ssize_t at = PyLong_AsSsize_t(args[1]);
    if (at == -1 && PyErr_Occurred())
        return NULL;
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(buffer);
    Py_ssize_t end = PyBytes_GET_SIZE(buffer);
    if (at < 0 || at > end) {
        PyErr_SetString(PyExc_ValueError, "scan: position outside the buffer");
        return NULL;
    }
    unsigned char joined[PATH_MAX_BYTES], path[PATH_MAX_BYTES], target[100];

    while (end - at >= BLOCK) {
        const unsigned char *h = data + at;
        /* the checksum: the header's bytes with its own field read as 8 spaces */
        long long stored, sum = 8 * ' ';
        for (int i = 0; i < 148; i++)
            sum += h[i];
        for (int i = 156; i < BLOCK; i++)
            sum += h[i];
        if (octal(h + 148, 8, &stored) < 0 || stored != sum)
            break; /* also the zero block, whose field holds no digit */
        unsigned char typeflag = h[156];
        if (typeflag == 'x' || typeflag == 'g' || typeflag == 'L' || typeflag == 'K')
            break;
        long long size, mode, uid, gid;
        if (octal(h + 124, 12, &size) < 0 || octal(h + 100, 8, &mode) < 0
            || octal(h + 108, 8, &uid) < 0 || octal(h + 116, 8, &gid) < 0)
            break;
        Py_ssize_t name_length = text_length(h, 100), length = 0;
        if (h[345] != 0 && memcmp(h + 257, "ustar\0", 6) == 0) {
            Py_ssize_t prefix_length = text_length(h + 345, 155);
            memcpy(joined, h + 345, (size_t)prefix_length);
            joined[prefix_length] = '/';
            length = prefix_length + 1;
        }
        memcpy(joined + length, h, (size_t)name_length);
        length += name_length;
        if (!ascii(joined, length))
            break;
        if (typeflag == 0 && length > 0 && joined[length - 1] == '/')
            typeflag = '5'; /* only the pre-POSIX type: '0' is a file */
        /* links, devices, directories, FIFOs have no data section, whatever the size says */
        if (typeflag >= '1' && typeflag <= '6')
            size = 0;
        long long padded = size + ((BLOCK - size % BLOCK) % BLOCK);
        if (padded > end - at - BLOCK)
            break; /* the content runs past this buffer */
        Py_ssize_t path_length = normalize(joined, length, path);
        if (path_length == 0)
            break;

        int kind;
        Py_ssize_t slash = path_length;
        while (slash > 0 && path[slash - 1] != '/')
            slash--;
        const unsigned char *base = path + slash;
        Py_ssize_t base_length = path_length - slash;
        if (starts_with(base, base_length, ".wh.")) {
            if (base_length == 12 && memcmp(base, ".wh..wh..opq", 12) == 0) {
                kind = OPAQUE_KIND;
                path_length = slash > 0 ? slash - 1 : 0;
            } else if (starts_with(base, base_length, ".wh..wh.") || base_length == 4) {
                break; /* aufs bookkeeping, or a whiteout of nothing */
            } else {
                kind = WHITEOUT_KIND;
                memmove(path + slash, base + 4, (size_t)(base_length - 4));
                path_length -= 4;
            }
        } else if (typeflag == '0' || typeflag == 0 || typeflag == '7') {
            kind = FILE_KIND;
        } else if (typeflag == '5') {
            kind = DIR_KIND;
        } else if (typeflag == '1') {
            kind = HARDLINK_KIND;
        } else if (typeflag == '2') {
            kind = SYMLINK_KIND;
        } else {
            kind = SPECIAL_KIND;
        }
        Py_ssize_t link_length = 0;
        if (kind == HARDLINK_KIND) {
            link_length = text_length(h + 157, 100);
            if (!ascii(h + 157, link_length))
                break;
            link_length = normalize(h + 157, link_length, target);
        }

        /* taken: from here on a failure is an exception, not a stop */
        PyObject *values[10] = {NULL, PyTuple_GET_ITEM(kinds, kind), NULL, NULL, NULL, NULL,
                                NULL, NULL, NULL, NULL};
        PyObject *digest = NULL, *offset = NULL, *kept = NULL, *entry = NULL;
        int failed = 0;
        values[0] = PyUnicode_DecodeASCII((const char *)path, path_length, NULL);
        values[2] = PyLong_FromLongLong(kind == FILE_KIND ? size : 0);
        values[3] = number(mode & 07777);
        values[4] = number(uid);
        values[5] = number(gid);
        if (kind == HARDLINK_KIND)
            values[6] = PyUnicode_DecodeASCII((const char *)target, link_length, NULL);
        else if (kind == SYMLINK_KIND)
            values[6] = PyUnicode_DecodeUTF8((const char *)h + 157, text_length(h + 157, 100),
                                             "surrogateescape");
        else
            values[6] = Py_NewRef(Py_None);
        for (int i = 0; i < 7; i++)
            failed |= values[i] == NULL;
        if (!failed && kind == FILE_KIND)
            failed = file_content(data + at + BLOCK, size, values[0], values[2], capture, hasher,
                                  hash_contents, origin, (long long)at + BLOCK, &digest,
                                  &offset, &kept) < 0;
        if (!failed) {
            values[7] = digest ? digest : Py_None;
            values[8] = offset ? offset : Py_None;
            values[9] = kept ? kept : Py_None;
            entry = PyObject_Vectorcall(entry_type, values, 10, NULL);
            failed = entry == NULL || PyList_Append(entries, entry) < 0;
        }
        Py_XDECREF(entry);
        Py_XDECREF(digest);
        Py_XDECREF(offset);
        Py_XDECREF(kept);
        Py_XDECREF(values[0]);
        for (int i = 2; i < 7; i++)
            Py_XDECREF(values[i]);
        if (failed)
            return NULL;
        at += BLOCK + (Py_ssize_t)padded;
    }
    return PyLong_FromSsize_t(at);
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "Read the plain ustar entries that lie whole in a buffer (see the module's comment)."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#ifdef Py_mod_multiple_interpreters /* the shared numbers belong to one interpreter */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "imagescope._tarscan",
    "Plain ustar headers read into entries, compiled (the fast path of imagescope.layers).",
    0, methods, slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__tarscan(void)
{
    return PyModuleDef_Init(&module_def);
}
