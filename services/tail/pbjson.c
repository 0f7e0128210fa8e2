#include "pbjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* protobuf-c itself recurses without a limit; our schema nests 3 deep. A deeper message can
 * only come from a recursive type, and is cut here rather than risking the stack. */
#define PBJSON_MAX_DEPTH 64

struct pbjson {
    struct jsonw *w;
    int unmasked;
};

enum personal { NOT_PERSONAL, PERSONAL_NAME, PERSONAL_PHONE, PERSONAL_OTHER };

/* Messages whose every field is personal data (the proto says so in their comment), and
 * the mask each known field gets; fields not listed get PERSONAL_OTHER. */
static const struct {
    const char *message, *field;
    enum personal kind;
} personal_fields[] = {
    {"casewire.v1.Person", "name", PERSONAL_NAME},
    {"casewire.v1.Person", "phone", PERSONAL_PHONE},
};

static enum personal personal_kind(const ProtobufCMessageDescriptor *md,
                                   const ProtobufCFieldDescriptor *f)
{
    int personal_message = 0;
    for (size_t i = 0; i < sizeof personal_fields / sizeof personal_fields[0]; i++) {
        if (strcmp(md->name, personal_fields[i].message) != 0) continue;
        personal_message = 1;
        if (strcmp(f->name, personal_fields[i].field) == 0) return personal_fields[i].kind;
    }
    return personal_message ? PERSONAL_OTHER : NOT_PERSONAL;
}

/* What to print for string s: s itself, its mask (in buf), or a scrubbed copy (*owned, which
 * the caller frees). NULL when a copy could not be made: the line is then marked failed. */
static const char *shown_text(struct pbjson *c, const char *s, enum personal p,
                              char buf[CW_MASK_NAME_MAX], char **owned)
{
    *owned = NULL;
    if (!s) return "";
    if (c->unmasked) return s;
    switch (p) {
    case PERSONAL_PHONE: return cw_mask_phone(buf, s);
    case PERSONAL_NAME:
    case PERSONAL_OTHER: return cw_mask_name(buf, s);
    case NOT_PERSONAL: break;
    }
    if (!strpbrk(s, "0123456789")) return s; /* nothing a phone could hide in */
    *owned = strdup(s);
    if (!*owned) {
        c->w->failed = 1;
        return NULL;
    }
    cw_log_scrub(*owned);
    return *owned;
}

static void write_text(struct pbjson *c, const char *s, enum personal p, int as_key)
{
    _Static_assert(CW_MASK_NAME_MAX >= CW_MASK_PHONE_MAX, "one buffer holds either mask");
    char buf[CW_MASK_NAME_MAX], *owned;
    const char *t = shown_text(c, s, p, buf, &owned);
    if (!t) return;
    if (as_key)
        jsonw_key(c->w, t);
    else
        jsonw_string(c->w, t);
    free(owned);
}

/* Length of the prefix every value name of the enum shares, cut after its last '_':
 * CHANNEL_UNSPECIFIED, CHANNEL_WEB... -> "CHANNEL_". Derived from the values rather than the
 * enum's name, which does not always match (FollowUpOutcome has FOLLOWUP_OUTCOME_...). */
static size_t enum_prefix_len(const ProtobufCEnumDescriptor *ed)
{
    if (ed->n_values == 0) return 0;
    const char *first = ed->values[0].name;
    size_t common = strlen(first);
    for (unsigned i = 1; i < ed->n_values; i++) {
        const char *n = ed->values[i].name;
        size_t k = 0;
        while (k < common && n[k] == first[k]) k++;
        common = k;
    }
    while (common > 0 && first[common - 1] != '_') common--;
    /* A value equal to the prefix up to its '_' would print as "": keep the whole names. */
    for (unsigned i = 0; i < ed->n_values; i++)
        if (ed->values[i].name[common] == '\0') return 0;
    return common;
}

static void write_enum(struct pbjson *c, const ProtobufCEnumDescriptor *ed, int v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
    if (!ev) {
        jsonw_int(c->w, v); /* unknown to this build (newer producer): keep the number */
        return;
    }
    char low[128];
    const char *name = ev->name + enum_prefix_len(ed);
    size_t n = strlen(name);
    if (n >= sizeof low) {
        jsonw_string(c->w, ev->name); /* absurdly long: the protobuf name, unchanged */
        return;
    }
    for (size_t i = 0; i <= n; i++)
        low[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
    jsonw_string(c->w, low);
}

/* Size of one element of a repeated field's array, as protobuf-c lays it out. */
static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return 8;
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static void write_message(struct pbjson *c, const ProtobufCMessage *m, int depth);

/* One value of field f stored at member (a scalar, a string pointer, bytes or a message). */
static void write_value(struct pbjson *c, const ProtobufCFieldDescriptor *f, const void *member,
                        enum personal p, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: jsonw_int(c->w, *(const int32_t *)member); break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: jsonw_uint(c->w, *(const uint32_t *)member); break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: jsonw_int(c->w, *(const int64_t *)member); break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: jsonw_uint(c->w, *(const uint64_t *)member); break;
    case PROTOBUF_C_TYPE_FLOAT: jsonw_double(c->w, *(const float *)member, 1); break;
    case PROTOBUF_C_TYPE_DOUBLE: jsonw_double(c->w, *(const double *)member, 0); break;
    case PROTOBUF_C_TYPE_BOOL: jsonw_bool(c->w, *(const protobuf_c_boolean *)member); break;
    case PROTOBUF_C_TYPE_ENUM: write_enum(c, f->descriptor, *(const int *)member); break;
    case PROTOBUF_C_TYPE_STRING: write_text(c, *(char *const *)member, p, 0); break;
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = member;
        /* Personal bytes have no mask function: show nothing of them. */
        if (p != NOT_PERSONAL && !c->unmasked)
            jsonw_string(c->w, "***");
        else
            jsonw_base64(c->w, b->data, b->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        write_message(c, *(const ProtobufCMessage *const *)member, depth + 1);
        break;
    }
}

static int is_default(const ProtobufCFieldDescriptor *f, const void *member)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)member;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)member)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(const ProtobufCMessage *const *)member == NULL;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)member == 0;
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)member == 0;
    default: break;
    }
    /* Integers, bools and enums: all bytes zero. */
    static const char zero[8];
    return memcmp(member, zero, elem_size(f->type)) == 0;
}

static int is_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                      const void *member)
{
    const char *base = (const char *)m;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    switch (f->label) {
    case PROTOBUF_C_LABEL_REQUIRED: return 1;
    case PROTOBUF_C_LABEL_REPEATED: return *(const size_t *)(base + f->quantifier_offset) > 0;
    case PROTOBUF_C_LABEL_NONE: return !is_default(f, member);
    case PROTOBUF_C_LABEL_OPTIONAL: break;
    }
    /* proto2 optional, proto3 `optional`: pointers are set or not, scalars have a has_ flag. */
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = *(char *const *)member;
        return s && s != (const char *)f->default_value;
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) return *(const ProtobufCMessage *const *)member != NULL;
    return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
}

/* protoc turns `map<K, V> some_field` into a repeated SomeFieldEntry {key = 1; value = 2}.
 * protobuf-c keeps no map flag, so recognise the shape and the name protoc gives it. */
static int is_map_field(const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE) return 0;
    const ProtobufCMessageDescriptor *md = f->descriptor;
    if (md->n_fields != 2 || md->fields[0].id != 1 || md->fields[1].id != 2 ||
        strcmp(md->fields[0].name, "key") != 0 || strcmp(md->fields[1].name, "value") != 0)
        return 0;
    char want[256];
    size_t k = 0;
    int cap_next = 1;
    for (const char *s = f->name; *s; s++) {
        if (k + sizeof "Entry" >= sizeof want) return 0;
        if (*s == '_') {
            cap_next = 1;
            continue;
        }
        want[k++] = (cap_next && *s >= 'a' && *s <= 'z') ? (char)(*s - 'a' + 'A') : *s;
        cap_next = 0;
    }
    memcpy(want + k, "Entry", sizeof "Entry");
    return strcmp(md->short_name, want) == 0;
}

/* A map key as a JSON object key: strings as they are, numbers and bools as their text. */
static void write_map_key(struct pbjson *c, const ProtobufCMessage *entry)
{
    const ProtobufCFieldDescriptor *kf = &entry->descriptor->fields[0];
    const void *member = (const char *)entry + kf->offset;
    char num[24];
    switch (kf->type) {
    case PROTOBUF_C_TYPE_STRING:
        write_text(c, *(char *const *)member, personal_kind(entry->descriptor, kf), 1);
        return;
    case PROTOBUF_C_TYPE_BOOL:
        jsonw_key(c->w, *(const protobuf_c_boolean *)member ? "true" : "false");
        return;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(num, sizeof num, "%lld", (long long)*(const int64_t *)member);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(num, sizeof num, "%llu", (unsigned long long)*(const uint64_t *)member);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: snprintf(num, sizeof num, "%u", *(const uint32_t *)member); break;
    default: snprintf(num, sizeof num, "%d", *(const int32_t *)member); break;
    }
    jsonw_key(c->w, num);
}

/* Repeated duplicates of a key are all written: the last one wins in protobuf, and it wins
 * in JSON readers such as jq too. */
static void write_map(struct pbjson *c, ProtobufCMessage *const *entries, size_t n, int depth)
{
    jsonw_object_begin(c->w);
    for (size_t i = 0; i < n; i++) {
        const ProtobufCMessage *e = entries[i];
        if (!e) continue;
        const ProtobufCFieldDescriptor *vf = &e->descriptor->fields[1];
        write_map_key(c, e);
        write_value(c, vf, (const char *)e + vf->offset, personal_kind(e->descriptor, vf), depth);
    }
    jsonw_object_end(c->w);
}

static void write_repeated(struct pbjson *c, const ProtobufCMessage *m,
                           const ProtobufCFieldDescriptor *f, int depth)
{
    size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
    const char *arr = *(const char *const *)((const char *)m + f->offset);
    if (is_map_field(f)) {
        write_map(c, (ProtobufCMessage *const *)arr, n, depth + 1);
        return;
    }
    enum personal p = personal_kind(m->descriptor, f);
    size_t size = elem_size(f->type);
    jsonw_array_begin(c->w);
    for (size_t i = 0; i < n; i++) write_value(c, f, arr + i * size, p, depth);
    jsonw_array_end(c->w);
}

static const char *wire_type_name(ProtobufCWireType t)
{
    switch (t) {
    case PROTOBUF_C_WIRE_TYPE_VARINT: return "varint";
    case PROTOBUF_C_WIRE_TYPE_64BIT: return "64-bit";
    case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED: return "length-delimited";
    case PROTOBUF_C_WIRE_TYPE_32BIT: return "32-bit";
    }
    return "other";
}

/* Bytes of the field's value. protobuf-c keeps a length-delimited field with its length
 * prefix (a varint): report the content's length, as the sender meant it. */
static size_t unknown_value_len(const ProtobufCMessageUnknownField *u)
{
    if (u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) return u->len;
    size_t prefix = 0;
    while (prefix < u->len && (u->data[prefix] & 0x80)) prefix++;
    return prefix < u->len ? u->len - prefix - 1 : 0;
}

static void write_unknown_fields(struct pbjson *c, const ProtobufCMessage *m)
{
    jsonw_key(c->w, "_unknown_fields");
    jsonw_array_begin(c->w);
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        jsonw_object_begin(c->w);
        jsonw_key(c->w, "number");
        jsonw_uint(c->w, u->tag);
        jsonw_key(c->w, "wire_type");
        jsonw_string(c->w, wire_type_name(u->wire_type));
        jsonw_key(c->w, "length");
        jsonw_uint(c->w, unknown_value_len(u));
        jsonw_object_end(c->w);
    }
    jsonw_array_end(c->w);
}

static void write_message(struct pbjson *c, const ProtobufCMessage *m, int depth)
{
    jsonw_object_begin(c->w);
    if (m && depth > PBJSON_MAX_DEPTH) {
        jsonw_key(c->w, "_error");
        jsonw_string(c->w, "nested too deeply to print");
        m = NULL;
    }
    if (m) {
        const ProtobufCMessageDescriptor *md = m->descriptor;
        for (unsigned i = 0; i < md->n_fields; i++) {
            const ProtobufCFieldDescriptor *f = &md->fields[i];
            const void *member = (const char *)m + f->offset;
            if (!is_present(m, f, member)) continue;
            jsonw_key(c->w, f->name);
            if (f->label == PROTOBUF_C_LABEL_REPEATED)
                write_repeated(c, m, f, depth);
            else
                write_value(c, f, member, personal_kind(md, f), depth);
        }
        if (m->n_unknown_fields) write_unknown_fields(c, m);
    }
    jsonw_object_end(c->w);
}

void pbjson_write_message(struct jsonw *w, const ProtobufCMessage *msg, int unmasked)
{
    struct pbjson c = {.w = w, .unmasked = unmasked};
    write_message(&c, msg, 0);
}
