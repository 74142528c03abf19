/* colony dlq ls|show|replay|purge: a group's dead letters over the broker's
 * HTTP API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/broker_client.h"
#include "cli/commands.h"

static int usage(FILE *f)
{
    fprintf(f, "usage: colony dlq [--broker URL] [--timeout D] ls STREAM GROUP [--json]\n"
               "       colony dlq show STREAM GROUP ID\n"
               "       colony dlq replay STREAM GROUP (ID | --all | FROM TO)\n"
               "       colony dlq purge STREAM GROUP [--upto ID]\n\n"
               "Lists (the oldest 1000), shows, replays (to the original stream, as new\n"
               "entries; FROM TO inclusive) or purges (all, or up to ID) the dead letters of a\n"
               "stream's group.\n");
    return f == stdout ? 0 : 2;
}

static void base_path(char *path, size_t n, const char *stream, const char *group)
{
    path[0] = '\0';
    strcat(path, "/streams/");
    cli_broker_escape(stream, path, n - 64);
    strcat(path, "/groups/");
    cli_broker_escape(group, path, n - 64);
    strcat(path, "/dlq");
}

static void print_json(json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2));
    printf("%s\n", text ? text : "");
    free(text);
}

static int list(const cli_broker *b, const char *path, int as_json)
{
    char p[2200];
    snprintf(p, sizeof(p), "%s?count=1000", path);
    json_t *j = cli_broker_call(b, "dlq ls", "GET", p, NULL, NULL, 0, 200);
    if (!j) return 1;
    json_t *list = json_object_get(j, "dead_letters");
    if (as_json) {
        print_json(list);
        json_decref(j);
        return 0;
    }
    printf("%-22s %-22s %-15s %5s  %s\n", "ID", "ORIGINAL", "REASON", "COUNT", "ERROR");
    size_t i;
    json_t *d;
    json_array_foreach(list, i, d)
    {
        printf("%-22s %-22s %-15s %5lld  %s\n", json_string_value(json_object_get(d, "id")),
               json_string_value(json_object_get(d, "original_id")),
               json_string_value(json_object_get(d, "reason")),
               (long long)json_integer_value(json_object_get(d, "deliveries")),
               json_string_value(json_object_get(d, "error")));
    }
    json_decref(j);
    return 0;
}

int colony_cli_dlq(int argc, char **argv)
{
    cli_broker b;
    if (cli_broker_args(&b, &argc, argv)) return 2;
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) return usage(stdout);
    if (argc < 4) return usage(stderr);
    const char *sub = argv[1];
    char path[2048];
    base_path(path, sizeof(path), argv[2], argv[3]);
    if (!strcmp(sub, "ls")) return list(&b, path, argc > 4 && !strcmp(argv[4], "--json"));
    if (!strcmp(sub, "show") && argc == 5) {
        strcat(path, "/");
        cli_broker_escape(argv[4], path, sizeof(path));
        json_t *j = cli_broker_call(&b, "dlq show", "GET", path, NULL, NULL, 0, 200);
        if (!j) return 1;
        print_json(j);
        json_decref(j);
        return 0;
    }
    if (!strcmp(sub, "replay") && (argc == 5 || argc == 6)) {
        json_t *body = !strcmp(argv[4], "--all") ? json_object()
                       : argc == 5               ? json_pack("{s:s}", "id", argv[4])
                                   : json_pack("{s:s, s:s}", "start", argv[4], "end", argv[5]);
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        strcat(path, "/replay");
        json_t *j =
            text ? cli_broker_call(&b, "dlq replay", "POST", path, NULL, text, strlen(text), 200)
                 : NULL;
        free(text);
        if (!j) return 1;
        printf("replayed %lld\n", (long long)json_integer_value(json_object_get(j, "replayed")));
        json_decref(j);
        return 0;
    }
    if (!strcmp(sub, "purge") && (argc == 4 || (argc == 6 && !strcmp(argv[4], "--upto")))) {
        if (argc == 6) {
            strcat(path, "?upto=");
            cli_broker_escape(argv[5], path, sizeof(path));
        }
        json_t *j = cli_broker_call(&b, "dlq purge", "DELETE", path, NULL, NULL, 0, 200);
        if (!j) return 1;
        printf("purged %lld\n", (long long)json_integer_value(json_object_get(j, "purged")));
        json_decref(j);
        return 0;
    }
    return usage(stderr);
}
