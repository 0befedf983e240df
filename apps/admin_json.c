/* A small JSON reader for ordo-admin: recursive descent over one telemetry reply into a
 * flat node array; depth and node count are bounded, so bad input only returns an error. */
#include "apps/admin_json.h"

#include <errno.h>
#include <string.h>

struct admin_json_cur {
    struct admin_json *j;
    size_t pos;
    uint32_t depth;
};

static int admin_json_value(struct admin_json_cur *c, int32_t *out);

static void admin_json_ws(struct admin_json_cur *c)
{
    while (c->pos < c->j->text_len) {
        char ch = c->j->text[c->pos];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
            break;
        }
        c->pos++;
    }
}

static int admin_json_new(struct admin_json_cur *c, uint8_t type, int32_t *out)
{
    struct admin_json *j = c->j;
    if (j->n >= j->cap) {
        return -ENOSPC;
    }
    struct admin_json_node *nd = &j->nodes[j->n];
    memset(nd, 0, sizeof(*nd));
    nd->type = type;
    nd->off = (uint32_t)c->pos;
    nd->child = -1;
    nd->next = -1;
    *out = (int32_t)j->n++;
    return 0;
}

/* Scans a string starting at its opening quote; off and len get its content. */
static int admin_json_str(struct admin_json_cur *c, uint32_t *off, uint32_t *len)
{
    const char *t = c->j->text;
    c->pos++;
    size_t start = c->pos;
    while (c->pos < c->j->text_len) {
        unsigned char ch = (unsigned char)t[c->pos];
        if (ch == '"') {
            *off = (uint32_t)start;
            *len = (uint32_t)(c->pos - start);
            c->pos++;
            return 0;
        }
        if (ch < 0x20) {
            return -EINVAL;
        }
        c->pos += (ch == '\\') ? 2 : 1;
    }
    return -EINVAL;
}

static int admin_json_num(struct admin_json_cur *c)
{
    const char *t = c->j->text;
    size_t start = c->pos;
    while (c->pos < c->j->text_len && strchr("+-0123456789.eE", t[c->pos]) != NULL &&
           t[c->pos] != '\0') {
        c->pos++;
    }
    return c->pos > start ? 0 : -EINVAL;
}

static int admin_json_word(struct admin_json_cur *c, const char *w)
{
    size_t n = strlen(w);
    if (c->j->text_len - c->pos < n || memcmp(c->j->text + c->pos, w, n) != 0) {
        return -EINVAL;
    }
    c->pos += n;
    return 0;
}

/* Parses the elements (or members) of a container whose opener is at c->pos. */
static int admin_json_items(struct admin_json_cur *c, int32_t self, char close, int is_obj)
{
    int32_t prev = -1;
    c->pos++;
    admin_json_ws(c);
    if (c->pos < c->j->text_len && c->j->text[c->pos] == close) {
        c->pos++;
        return 0;
    }
    for (;;) {
        uint32_t koff = 0, klen = 0;
        if (is_obj) {
            if (c->pos >= c->j->text_len || c->j->text[c->pos] != '"' ||
                admin_json_str(c, &koff, &klen) != 0) {
                return -EINVAL;
            }
            admin_json_ws(c);
            if (c->pos >= c->j->text_len || c->j->text[c->pos] != ':') {
                return -EINVAL;
            }
            c->pos++;
        }
        int32_t kid;
        int rc = admin_json_value(c, &kid);
        if (rc != 0) {
            return rc;
        }
        c->j->nodes[kid].key_off = koff;
        c->j->nodes[kid].key_len = klen;
        if (prev < 0) {
            c->j->nodes[self].child = kid;
        } else {
            c->j->nodes[prev].next = kid;
        }
        prev = kid;
        admin_json_ws(c);
        if (c->pos >= c->j->text_len) {
            return -EINVAL;
        }
        char ch = c->j->text[c->pos++];
        if (ch == close) {
            return 0;
        }
        if (ch != ',') {
            return -EINVAL;
        }
        admin_json_ws(c);
    }
}

static int admin_json_scalar(struct admin_json_cur *c, char ch, int32_t *out)
{
    static const char *const words[] = {"null", "true", "false"};
    static const uint8_t types[] = {ADMIN_JSON_NULL, ADMIN_JSON_BOOL, ADMIN_JSON_BOOL};
    int rc;
    if (ch == '"') {
        rc = admin_json_new(c, ADMIN_JSON_STR, out);
        return rc != 0 ? rc : admin_json_str(c, &c->j->nodes[*out].off, &c->j->nodes[*out].len);
    }
    for (size_t i = 0; i < sizeof(types); i++) {
        if (ch == words[i][0]) {
            rc = admin_json_new(c, types[i], out);
            return rc != 0 ? rc : admin_json_word(c, words[i]);
        }
    }
    rc = admin_json_new(c, ADMIN_JSON_NUM, out);
    return rc != 0 ? rc : admin_json_num(c);
}

static int admin_json_value(struct admin_json_cur *c, int32_t *out)
{
    admin_json_ws(c);
    if (c->pos >= c->j->text_len) {
        return -EINVAL;
    }
    char ch = c->j->text[c->pos];
    if (ch != '{' && ch != '[') {
        int rc = admin_json_scalar(c, ch, out);
        /* A string's slice was set by admin_json_str; other scalars end here. */
        if (rc == 0 && ch != '"') {
            c->j->nodes[*out].len = (uint32_t)c->pos - c->j->nodes[*out].off;
        }
        return rc;
    }
    if (c->depth >= ADMIN_JSON_DEPTH_MAX) {
        return -EINVAL;
    }
    int rc = admin_json_new(c, ch == '{' ? ADMIN_JSON_OBJ : ADMIN_JSON_ARR, out);
    if (rc != 0) {
        return rc;
    }
    c->depth++;
    rc = admin_json_items(c, *out, ch == '{' ? '}' : ']', ch == '{');
    c->depth--;
    c->j->nodes[*out].len = (uint32_t)c->pos - c->j->nodes[*out].off;
    return rc;
}

int admin_json_parse(struct admin_json *j, const char *text, size_t len,
                     struct admin_json_node *nodes, uint32_t cap)
{
    memset(j, 0, sizeof(*j));
    if (len > UINT32_MAX) {
        return -EINVAL;
    }
    j->text = text;
    j->text_len = len;
    j->nodes = nodes;
    j->cap = cap;
    struct admin_json_cur c = {.j = j};
    int32_t root;
    int rc = admin_json_value(&c, &root);
    if (rc != 0) {
        return rc;
    }
    admin_json_ws(&c);
    /* The telemetry server may pad a reply with a NUL; anything else is trailing junk. */
    if (c.pos < len && text[c.pos] != '\0') {
        return -EINVAL;
    }
    return 0;
}

int32_t admin_json_get(const struct admin_json *j, int32_t obj, const char *key)
{
    if (obj < 0 || (uint32_t)obj >= j->n || j->nodes[obj].type != ADMIN_JSON_OBJ) {
        return -1;
    }
    size_t kl = strlen(key);
    for (int32_t i = j->nodes[obj].child; i >= 0; i = j->nodes[i].next) {
        const struct admin_json_node *nd = &j->nodes[i];
        if (nd->key_len == kl && memcmp(j->text + nd->key_off, key, kl) == 0) {
            return i;
        }
    }
    return -1;
}

int32_t admin_json_path(const struct admin_json *j, int32_t obj, const char *path)
{
    char part[64];
    const char *p = path;
    while (obj >= 0) {
        const char *dot = strchr(p, '.');
        size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof(part)) {
            return -1;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        obj = admin_json_get(j, obj, part);
        if (dot == NULL) {
            return obj;
        }
        p = dot + 1;
    }
    return -1;
}

int admin_json_u64(const struct admin_json *j, int32_t node, uint64_t *out)
{
    if (node < 0 || (uint32_t)node >= j->n || j->nodes[node].type != ADMIN_JSON_NUM) {
        return -EINVAL;
    }
    const struct admin_json_node *nd = &j->nodes[node];
    uint64_t v = 0;
    for (uint32_t i = 0; i < nd->len; i++) {
        char ch = j->text[nd->off + i];
        if (ch < '0' || ch > '9' || v > (UINT64_MAX - (uint64_t)(ch - '0')) / 10) {
            return -EINVAL;
        }
        v = v * 10 + (uint64_t)(ch - '0');
    }
    if (nd->len == 0) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int admin_json_text(const struct admin_json *j, int32_t node, char *buf, size_t cap)
{
    if (cap == 0) {
        return -EINVAL;
    }
    buf[0] = '\0';
    if (node < 0 || (uint32_t)node >= j->n || j->nodes[node].type >= ADMIN_JSON_ARR) {
        return -EINVAL;
    }
    const struct admin_json_node *nd = &j->nodes[node];
    size_t n = nd->len < cap - 1 ? nd->len : cap - 1;
    memcpy(buf, j->text + nd->off, n);
    buf[n] = '\0';
    return 0;
}

void admin_json_key(const struct admin_json *j, int32_t node, char *buf, size_t cap)
{
    if (cap == 0) {
        return;
    }
    buf[0] = '\0';
    if (node < 0 || (uint32_t)node >= j->n) {
        return;
    }
    const struct admin_json_node *nd = &j->nodes[node];
    size_t n = nd->key_len < cap - 1 ? nd->key_len : cap - 1;
    memcpy(buf, j->text + nd->key_off, n);
    buf[n] = '\0';
}
