/* colony publish: one message to a stream or a topic over the broker's HTTP
 * API. DATA that parses as JSON is sent as JSON, anything else as a string. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/broker_client.h"
#include "cli/commands.h"

static int usage(FILE *f)
{
    fprintf(f, "usage: colony publish [--broker URL] [--timeout D] [-H NAME=VALUE]... [--key K]\n"
               "                      [--delay D] (STREAM | --topic TOPIC) DATA\n\n"
               "Publishes DATA (JSON, or else a string) and prints the id once it is durable\n"
               "(a repeat of a --key within the broker's window: the first publish's id).\n"
               "--topic prints the broker's answer: each bound stream with its id, or why it\n"
               "refused. -H adds a header, --key an Idempotency-Key, --delay a delivery delay\n"
               "(\"5s\").\n");
    return f == stdout ? 0 : 2;
}

int colony_cli_publish(int argc, char **argv)
{
    cli_broker b;
    if (cli_broker_args(&b, &argc, argv)) return 2;
    const char *topic = NULL, *key = NULL, *delay = NULL, *target = NULL, *data = NULL;
    json_t *headers = json_object();
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            json_decref(headers);
            return usage(stdout);
        } else if (!strcmp(a, "--topic") && more) {
            topic = argv[++i];
        } else if (!strcmp(a, "--key") && more) {
            key = argv[++i];
        } else if (!strcmp(a, "--delay") && more) {
            delay = argv[++i];
        } else if (!strcmp(a, "-H") && more) {
            const char *h = argv[++i], *eq = strchr(h, '=');
            if (!eq || eq == h) {
                fprintf(stderr, "colony publish: -H takes NAME=VALUE, not %s\n", h);
                goto out;
            }
            json_object_setn_new(headers, h, (size_t)(eq - h), json_string(eq + 1));
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "colony publish: unknown option %s\n", a);
            goto out;
        } else if (!topic && !target) {
            target = a;
        } else if (!data) {
            data = a;
        } else {
            fprintf(stderr, "colony publish: too many arguments\n");
            goto out;
        }
    }
    if ((!topic && !target) || !data) {
        rc = usage(stderr);
        goto out;
    }
    json_t *value = json_loads(data, JSON_DECODE_ANY, NULL);
    if (!value) value = json_string(data);
    json_t *msg = json_pack("{s:o}", "data", value);
    if (json_object_size(headers)) json_object_set(msg, "headers", headers);
    if (delay) json_object_set_new(msg, "delay", json_string(delay));
    char *body = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    char path[2048] = "";
    strcat(path, topic ? "/topics/" : "/streams/");
    cli_broker_escape(topic ? topic : target, path, sizeof(path) - 16);
    strcat(path, "/messages");
    const char *hdrs[] = {"Idempotency-Key", key, NULL};
    json_t *r = body ? cli_broker_call(&b, "publish", "POST", path, key ? hdrs : NULL, body,
                                       strlen(body), 0) /* 201, or 200 for a duplicate */
                     : NULL;
    free(body);
    if (!r) {
        rc = 1;
        goto out;
    }
    json_t *id = json_object_get(r, "id");
    if (id) {
        printf("%s\n", json_string_value(id));
    } else {
        char *text = json_dumps(r, JSON_COMPACT);
        printf("%s\n", text ? text : "");
        free(text);
    }
    json_decref(r);
    rc = 0;
out:
    json_decref(headers);
    return rc;
}
