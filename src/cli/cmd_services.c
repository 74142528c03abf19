/* colony services: a table of the registry's services with instance counts
 * and health, or the instances of one service. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/commands.h"
#include "cli/registry_client.h"

/* Worst status of an instance's checks: 0 passing, 1 warning, 2 critical. */
static int instance_status(json_t *entry)
{
    int worst = 0;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(entry, "Checks"), i, c)
    {
        const char *s = json_string_value(json_object_get(c, "Status"));
        int v = s && strcmp(s, "passing") == 0 ? 0 : s && strcmp(s, "warning") == 0 ? 1 : 2;
        if (v > worst) worst = v;
    }
    return worst;
}

static json_t *get_json(const cli_registry *reg, const char *path)
{
    cli_http_response r;
    if (cli_registry_call(reg, "GET", path, NULL, 0, &r)) return NULL;
    json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    if (!j) {
        char prefix[1200];
        snprintf(prefix, sizeof(prefix), "services: registry %s%s", reg->url, path);
        if (r.status == 200)
            fprintf(stderr, "colony %s: the answer is not JSON\n", prefix);
        else
            cli_http_print_status(prefix, &r);
    }
    cli_http_response_free(&r);
    return j;
}

static int show_service(const cli_registry *reg, const char *name)
{
    static const char *const names[] = {"passing", "warning", "critical"};
    char path[1024];
    snprintf(path, sizeof(path), "/v1/health/service/%s", name);
    json_t *entries = get_json(reg, path);
    if (!entries) return 1;
    printf("%-24s %-28s %-9s %s\n", "ID", "ADDRESS", "STATUS", "TAGS");
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        json_t *svc = json_object_get(e, "Service");
        const char *addr = json_string_value(json_object_get(svc, "Address"));
        if (!addr || !*addr)
            addr = json_string_value(json_object_get(json_object_get(e, "Node"), "Address"));
        char hostport[300];
        snprintf(hostport, sizeof(hostport), "%s:%lld", addr ? addr : "",
                 (long long)json_integer_value(json_object_get(svc, "Port")));
        char *tags = json_dumps(json_object_get(svc, "Tags"), JSON_COMPACT);
        printf("%-24s %-28s %-9s %s\n", json_string_value(json_object_get(svc, "ID")), hostport,
               names[instance_status(e)], tags ? tags : "[]");
        free(tags);
    }
    json_decref(entries);
    return 0;
}

int colony_cli_services(int argc, char **argv)
{
    cli_registry reg;
    if (cli_registry_args(&reg, &argc, argv)) return 2;
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: colony services [--registry URL] [--token T] [--timeout D] [NAME]\n\n"
               "Lists services with their instances and health, or one service's instances.\n");
        return 0;
    }
    if (argc > 1) return show_service(&reg, argv[1]);
    json_t *services = get_json(&reg, "/v1/catalog/services");
    if (!services) return 1;
    printf("%-24s %9s %8s %8s %9s  %s\n", "SERVICE", "INSTANCES", "PASSING", "WARNING", "CRITICAL",
           "TAGS");
    const char *name;
    json_t *tags;
    json_object_foreach(services, name, tags)
    {
        char path[1024];
        snprintf(path, sizeof(path), "/v1/health/service/%s", name);
        json_t *entries = get_json(&reg, path);
        int counts[3] = {0, 0, 0};
        size_t i;
        json_t *e;
        json_array_foreach(entries, i, e) counts[instance_status(e)]++;
        char *tag_text = json_dumps(tags, JSON_COMPACT);
        printf("%-24s %9zu %8d %8d %9d  %s\n", name, json_array_size(entries), counts[0], counts[1],
               counts[2], tag_text ? tag_text : "[]");
        free(tag_text);
        json_decref(entries);
    }
    json_decref(services);
    return 0;
}
