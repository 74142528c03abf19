/* colony streams: a table of the broker's streams (entries, bytes, groups,
 * pending, lag, dead letters), or --json; and the broker client the stream
 * commands share (cli/broker_client.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/broker_client.h"
#include "cli/commands.h"

int cli_broker_args(cli_broker *b, int *argc, char **argv)
{
    b->url = getenv("COLONY_BROKER_URL");
    if (!b->url || !*b->url) b->url = "http://127.0.0.1:8600";
    b->timeout_ms = CLI_HTTP_TIMEOUT_MS;
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        const char *a = argv[i];
        int is_broker = strncmp(a, "--broker", 8) == 0 && (a[8] == '\0' || a[8] == '=');
        int is_timeout = strncmp(a, "--timeout", 9) == 0 && (a[9] == '\0' || a[9] == '=');
        if (!is_broker && !is_timeout) {
            argv[out++] = argv[i];
            continue;
        }
        const char *v = strchr(a, '=');
        if (v)
            v++;
        else if (i + 1 < *argc)
            v = argv[++i];
        else {
            fprintf(stderr, "colony: %s needs a value\n", a);
            return -1;
        }
        if (is_broker)
            b->url = v;
        else if (cli_http_parse_timeout(v, &b->timeout_ms)) {
            fprintf(stderr, "colony: --timeout: expected a duration like 500ms or 2s, got \"%s\"\n",
                    v);
            return -1;
        }
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

void cli_broker_escape(const char *s, char *out, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = strlen(out);
    for (; *s && o + 4 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~:", c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

json_t *cli_broker_call(const cli_broker *b, const char *what, const char *method, const char *path,
                        const char *const *headers, const void *body, size_t len, int want)
{
    char url[4096];
    size_t base = strlen(b->url);
    while (base && b->url[base - 1] == '/')
        base--;
    snprintf(url, sizeof(url), "%.*s%s", (int)base, b->url, path);
    cli_http_request req = {.method = method,
                            .url = url,
                            .headers = headers,
                            .body = body,
                            .body_len = len,
                            .timeout_ms = b->timeout_ms};
    cli_http_response r;
    if (cli_http(&req, &r)) return NULL;
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    if ((want ? r.status != want : r.status / 100 != 2) || !j) {
        const char *msg = json_string_value(json_object_get(j, "message"));
        if (msg)
            fprintf(stderr, "colony %s: %s (HTTP %d)\n", what, msg, r.status);
        else {
            char prefix[4200];
            snprintf(prefix, sizeof(prefix), "%s: broker %s", what, url);
            cli_http_print_status(prefix, &r);
        }
        json_decref(j);
        j = NULL;
    }
    cli_http_response_free(&r);
    return j;
}

static long long num(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

int colony_cli_streams(int argc, char **argv)
{
    cli_broker b;
    if (cli_broker_args(&b, &argc, argv)) return 2;
    int as_json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: colony streams [--broker URL] [--timeout D] [--json]\n\n"
                   "Lists the broker's streams: entries, bytes, groups, pending (delivered,\n"
                   "not acked), lag (not delivered yet, the largest over its groups) and\n"
                   "dead letters. --broker defaults to $COLONY_BROKER_URL or "
                   "http://127.0.0.1:8600.\n");
            return 0;
        } else {
            fprintf(stderr, "colony streams: unknown argument %s (see --help)\n", argv[i]);
            return 2;
        }
    }
    json_t *j = cli_broker_call(&b, "streams", "GET", "/streams", NULL, NULL, 0, 200);
    if (!j) return 1;
    json_t *list = json_object_get(j, "streams");
    if (as_json) {
        char *text = json_dumps(list, JSON_INDENT(2));
        printf("%s\n", text ? text : "[]");
        free(text);
        json_decref(j);
        return 0;
    }
    printf("%-32s %10s %12s %6s %9s %9s %6s\n", "STREAM", "ENTRIES", "BYTES", "GROUPS", "PENDING",
           "LAG", "DEAD");
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *damaged = json_string_value(json_object_get(s, "damaged"));
        if (damaged) {
            printf("%-32s damaged: %s\n", name, damaged);
            continue;
        }
        printf("%-32s %10lld %12lld %6lld %9lld %9lld %6lld\n", name, num(s, "entries"),
               num(s, "bytes"), num(s, "groups"), num(s, "pending"), num(s, "lag"),
               num(s, "dead_letters"));
    }
    json_decref(j);
    return 0;
}
