/* A bare HTTP server on the public API only, for tests that need a separate
 * process (a crash, RSS): it touches no signal disposition itself.
 *   big_server [address]      prints "port N" once it listens
 *   GET /big?mb=N -> N MiB of 'x' (default 8), copied by colony_respond;
 *   GET /big-owned?mb=N -> the same rendered per request into a colony_buf
 *   and handed over with colony_respond_buf; GET /small -> "ok",
 *   GET /hello -> {"message":"hello"} */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <colony/colony.h>

#define BIG_MAX_MB 64

static char *big;

static void handler(colony_request *req, void *ud)
{
    (void)ud;
    const char *path = colony_request_path(req);
    long mb = 8;
    const char *q = colony_request_query(req);
    if (strncmp(q, "mb=", 3) == 0) mb = strtol(q + 3, NULL, 10);
    if (mb < 0 || mb > BIG_MAX_MB) mb = 8;
    if (strcmp(path, "/big") == 0) {
        colony_respond(req, 200, "application/octet-stream", big, (size_t)mb << 20);
    } else if (strcmp(path, "/big-owned") == 0) {
        colony_buf body;
        colony_buf_init(&body, (size_t)BIG_MAX_MB << 20);
        if (colony_buf_append(&body, big, (size_t)mb << 20) != 0) {
            colony_respond_error(req, 500, "internal_error", "out of memory");
            return;
        }
        colony_respond_buf(req, 200, "application/octet-stream", &body);
    } else if (strcmp(path, "/small") == 0) {
        colony_respond(req, 200, "text/plain", "ok", 2);
    } else if (strcmp(path, "/hello") == 0) {
        static const char body[] = "{\"message\":\"hello\"}";
        colony_respond(req, 200, "application/json", body, sizeof(body) - 1);
    } else {
        colony_respond_error(req, 404, "not_found", "no such path");
    }
}

int main(int argc, char **argv)
{
    big = malloc((size_t)BIG_MAX_MB << 20);
    if (!big) return 1;
    memset(big, 'x', (size_t)BIG_MAX_MB << 20);
    uv_loop_t *loop = uv_default_loop();
    colony_server *srv = colony_server_new(loop, NULL, handler, NULL);
    if (!srv) return 1;
    if (colony_server_listen(srv, argc > 1 ? argv[1] : "127.0.0.1:0") != 0) return 1;
    printf("port %d\n", colony_server_port(srv));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
