/* Cluster configuration loader (stub until the implementation lands; see conf.h). */
#include "engine/runtime/conf.h"

#include <errno.h>
#include <string.h>

int conf_load(const char *path, struct conf *out, struct ordo_errmsg *err)
{
    memset(out, 0, sizeof(*out));
    ordo_errmsg_set(err, "%s: configuration loader not implemented yet", path);
    return ORDO_ECONFIG;
}

void conf_free(struct conf *c)
{
    memset(c, 0, sizeof(*c));
}

void conf_replica_defaults(struct conf_replica *r)
{
    memset(r, 0, sizeof(*r));
}

const struct conf_node *conf_node_find(const struct conf *c, uint32_t id)
{
    for (uint32_t i = 0; i < c->nodes_n; i++) {
        if (c->nodes[i].id == id) {
            return &c->nodes[i];
        }
    }
    return NULL;
}

bool conf_subnet_allows(const struct conf *c, uint32_t ipv4)
{
    (void)c;
    (void)ipv4;
    return false;
}

const uint8_t *conf_client_key(const struct conf *c, uint64_t client_id)
{
    (void)c;
    (void)client_id;
    return NULL;
}

int conf_eal_argv(const char *args, const char *prog, struct conf_argv *out,
                  struct ordo_errmsg *err)
{
    (void)args;
    (void)prog;
    memset(out, 0, sizeof(*out));
    ordo_errmsg_set(err, "conf_eal_argv not implemented yet");
    return ORDO_ECONFIG;
}

int conf_lcores_list(const struct conf_replica *r, char *buf, size_t len)
{
    (void)r;
    (void)buf;
    (void)len;
    return -ENOSPC;
}
