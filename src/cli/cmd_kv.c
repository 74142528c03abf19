/* colony kv get|put|delete|ls: the registry's KV store from the shell. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/commands.h"
#include "cli/registry_client.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: colony kv [--registry URL] [--token T] [--timeout D] COMMAND\n\n"
                 "  get KEY              print the value\n"
                 "  put KEY VALUE        store VALUE (\"-\" reads it from stdin)\n"
                 "  delete KEY           delete a key (--recurse: every key under it)\n"
                 "  ls [PREFIX]          list keys, one level at a time\n\n"
                 "The registry is --registry, $COLONY_REGISTRY_URL or http://127.0.0.1:8500;\n"
                 "--timeout bounds each call (default 10s).\n");
}

/* Percent-encodes a key for a URL path, keeping '/' separators. */
static void encode_key(const char *key, char *out, size_t size)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)key; *p && o + 4 < size; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~/", *p))
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, size - o, "%%%02X", *p);
    }
    out[o] = '\0';
}

static char *read_stdin(size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) {
            char *grown = realloc(buf, cap * 2);
            if (!grown) {
                free(buf);
                return NULL;
            }
            buf = grown;
            cap *= 2;
        }
    }
    *len = n;
    return buf;
}

static int report(const cli_http_response *r, const char *key)
{
    if (r->status == 404) {
        fprintf(stderr, "colony kv: %s: not found\n", key);
        return 1;
    }
    if (r->status != 200) {
        cli_http_print_status("kv: registry", r);
        return 1;
    }
    return 0;
}

int colony_cli_kv(int argc, char **argv)
{
    cli_registry reg;
    if (cli_registry_args(&reg, &argc, argv)) return 2;
    int recurse = 0;
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--recurse") == 0)
            recurse = 1;
        else
            argv[n++] = argv[i];
    }
    if (n < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    const char *key = n > 2 ? argv[2] : "";
    char path[4096], enc[3000];
    encode_key(key, enc, sizeof(enc));
    cli_http_response r = {0};
    int rc = 1;
    if (strcmp(cmd, "get") == 0 && n == 3) {
        snprintf(path, sizeof(path), "/v1/kv/%s?raw", enc);
        if (cli_registry_call(&reg, "GET", path, NULL, 0, &r)) return 1;
        rc = report(&r, key);
        if (!rc) {
            fwrite(r.body, 1, r.len, stdout);
            if (r.len && r.body[r.len - 1] != '\n' && isatty(1)) putchar('\n');
        }
    } else if (strcmp(cmd, "put") == 0 && n == 4) {
        size_t len = strlen(argv[3]);
        char *value = strcmp(argv[3], "-") == 0 ? read_stdin(&len) : NULL;
        snprintf(path, sizeof(path), "/v1/kv/%s", enc);
        int err = cli_registry_call(&reg, "PUT", path, value ? value : argv[3], len, &r);
        free(value);
        if (err) return 1;
        rc = report(&r, key);
    } else if (strcmp(cmd, "delete") == 0 && n == 3) {
        snprintf(path, sizeof(path), "/v1/kv/%s%s", enc, recurse ? "?recurse" : "");
        if (cli_registry_call(&reg, "DELETE", path, NULL, 0, &r)) return 1;
        rc = report(&r, key);
    } else if ((strcmp(cmd, "ls") == 0 || strcmp(cmd, "list") == 0) && n <= 3) {
        snprintf(path, sizeof(path), "/v1/kv/%s?keys&separator=/", enc);
        if (cli_registry_call(&reg, "GET", path, NULL, 0, &r)) return 1;
        if (r.status == 404) {
            cli_http_response_free(&r);
            return 0; /* nothing under the prefix */
        }
        rc = report(&r, key);
        json_t *keys = rc ? NULL : json_loads(r.body, 0, NULL);
        size_t i;
        json_t *k;
        json_array_foreach(keys, i, k)
        {
            puts(json_string_value(k));
        }
        json_decref(keys);
    } else {
        usage(stderr);
        return 2;
    }
    cli_http_response_free(&r);
    return rc;
}
