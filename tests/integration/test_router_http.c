/* The router over a real colony server on 127.0.0.1:0. A client thread sends
 * raw HTTP/1.1 requests on plain blocking sockets while the test thread runs
 * the server's loop. Covers middleware order (before, after via
 * on_response/on_finish, early answer, async continuation from a timer),
 * parameters, query parameters, 404/405/OPTIONS, bad escapes and the JSON
 * helpers (200, 400 with line/column, 413, 415, empty body). */
#include "test_support.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "colony/colony.h"

typedef struct fixture {
    uv_loop_t loop;
    uv_async_t wake;
    colony_router *router;
    colony_server *server;
    int port;
} fixture;

/* What the server side observed, checked by the tests. */
static int handler_private_runs;
static int async_timer_fired;
static int finish_hook_status = -1;
static int finish_hook_calls;

/* ---- client thread ---- */

typedef struct exchange {
    int port;
    const char *request;
    char response[16384];
    size_t len;
    volatile int done;
    uv_async_t *wake;
} exchange;

/* Sends the whole request, reads until the server closes (Connection: close). */
static void client_thread(void *arg)
{
    exchange *ex = arg;
    ex->len = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0) {
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ex->port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            size_t sent = 0, total = strlen(ex->request);
            while (sent < total) {
                ssize_t n = send(fd, ex->request + sent, total - sent, MSG_NOSIGNAL);
                if (n <= 0) break;
                sent += (size_t)n;
            }
            for (;;) {
                ssize_t n = recv(fd, ex->response + ex->len, sizeof(ex->response) - 1 - ex->len, 0);
                if (n <= 0) break;
                ex->len += (size_t)n;
                if (ex->len == sizeof(ex->response) - 1) break;
            }
        }
        close(fd);
    }
    ex->response[ex->len] = '\0';
    ex->done = 1;
    uv_async_send(ex->wake);
}

static void on_wake(uv_async_t *a)
{
    (void)a;
}

/* Runs one exchange while the loop serves it. */
static void roundtrip(fixture *f, const char *request, exchange *ex)
{
    memset(ex, 0, sizeof(*ex));
    ex->port = f->port;
    ex->request = request;
    ex->wake = &f->wake;
    uv_thread_t tid;
    assert_int_equal(uv_thread_create(&tid, client_thread, ex), 0);
    assert_true(colony_test_run_until(&f->loop, &ex->done, 15000));
    uv_thread_join(&tid);
    /* Let on_finish hooks of this request run before the test looks. */
    for (int i = 0; i < 10; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
}

static int status_of(const exchange *ex)
{
    int status = 0;
    if (sscanf(ex->response, "HTTP/1.%*d %d", &status) != 1) return -1;
    return status;
}

/* Value of a response header (case-insensitive name), copied into out; NULL if absent. */
static const char *header_of(const exchange *ex, const char *name, char *out, size_t size)
{
    const char *end = strstr(ex->response, "\r\n\r\n");
    const char *line = strstr(ex->response, "\r\n");
    size_t nlen = strlen(name);
    while (line && end && line < end) {
        line += 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            size_t vlen = strcspn(v, "\r");
            snprintf(out, size, "%.*s", (int)vlen, v);
            return out;
        }
        line = strstr(line, "\r\n");
    }
    return NULL;
}

static const char *body_of(const exchange *ex)
{
    const char *end = strstr(ex->response, "\r\n\r\n");
    return end ? end + 4 : "";
}

/* ---- server side: middleware and handlers ---- */

static void record_status_hook(colony_request *req, int status, void *ud)
{
    (void)ud;
    char value[16];
    snprintf(value, sizeof(value), "%d", status);
    colony_response_header(req, "X-Seen-Status", value);
}

static void record_finish_hook(colony_request *req, int status, void *ud)
{
    (void)status;
    (void)ud;
    finish_hook_status = colony_response_status(req);
    finish_hook_calls++;
}

/* Adds a header before the handler and, through hooks, records the final status. */
static void mw_observe(colony_request *req, colony_chain *next, void *ud)
{
    (void)ud;
    colony_response_header(req, "X-Before", "1");
    colony_request_on_response(req, record_status_hook, NULL);
    colony_request_on_finish(req, record_finish_hook, NULL);
    colony_next(next);
}

/* Answers 401 for /private without Authorization; the chain stops. */
static void mw_auth(colony_request *req, colony_chain *next, void *ud)
{
    (void)ud;
    if (strcmp(colony_request_path(req), "/private") == 0 &&
        !colony_request_header(req, "Authorization")) {
        colony_respond_error(req, 401, "unauthorized", "missing credentials");
        return;
    }
    colony_next(next);
    colony_next(next); /* a second call is ignored */
}

typedef struct async_wait {
    uv_timer_t timer;
    colony_chain *next;
} async_wait;

static void async_wait_closed(uv_handle_t *h)
{
    free(h->data);
}

static void async_wait_fired(uv_timer_t *t)
{
    async_wait *w = t->data;
    async_timer_fired++;
    colony_next(w->next);
    uv_close((uv_handle_t *)&w->timer, async_wait_closed);
}

/* With X-Async: continues the chain 20 ms later from a loop timer. */
static void mw_async(colony_request *req, colony_chain *next, void *ud)
{
    (void)ud;
    if (!colony_request_header(req, "X-Async")) {
        colony_next(next);
        return;
    }
    async_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    w->next = next;
    uv_timer_init(colony_request_loop(req), &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, async_wait_fired, 20, 0);
}

static void get_user(colony_request *req, void *ud)
{
    (void)ud;
    const char *q = colony_request_query_param(req, "q");
    const char *tag = colony_request_query_param(req, "tag");
    json_t *body = json_pack("{s:s, s:s, s:s?, s:s?}", "id", colony_request_param(req, "id"),
                             "route", colony_request_route(req), "q", q, "tag", tag);
    colony_respond_json(req, 200, body);
    json_decref(body);
}

static void delete_user(colony_request *req, void *ud)
{
    (void)ud;
    colony_respond(req, 204, NULL, NULL, 0);
}

static void get_static(colony_request *req, void *ud)
{
    (void)ud;
    const char *rest = colony_request_param(req, "*");
    colony_respond(req, 200, "text/plain", rest, strlen(rest));
}

static void get_private(colony_request *req, void *ud)
{
    (void)ud;
    handler_private_runs++;
    colony_respond(req, 200, "text/plain", "secret", 6);
}

static void post_echo(colony_request *req, void *ud)
{
    (void)ud;
    json_t *value;
    if (colony_request_json(req, 64, &value) != 0) return;
    colony_respond_json(req, 200, value);
    json_decref(value);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_async_init(&f->loop, &f->wake, on_wake), 0);
    f->router = colony_router_new();
    assert_non_null(f->router);
    assert_int_equal(colony_router_use(f->router, mw_observe, NULL), 0);
    assert_int_equal(colony_router_use(f->router, mw_auth, NULL), 0);
    assert_int_equal(colony_router_use(f->router, mw_async, NULL), 0);
    assert_int_equal(colony_router_add(f->router, "GET", "/users/:id", get_user, NULL), 0);
    assert_int_equal(colony_router_add(f->router, "DELETE", "/users/:id", delete_user, NULL), 0);
    assert_int_equal(colony_router_add(f->router, "GET", "/static/*", get_static, NULL), 0);
    assert_int_equal(colony_router_add(f->router, "GET", "/private", get_private, NULL), 0);
    assert_int_equal(colony_router_add(f->router, "POST", "/echo", post_echo, NULL), 0);
    f->server = colony_server_new(&f->loop, NULL, colony_router_handle, f->router);
    assert_non_null(f->server);
    assert_int_equal(colony_server_listen(f->server, "127.0.0.1:0"), 0);
    f->port = colony_server_port(f->server);
    assert_true(f->port > 0);
    handler_private_runs = 0;
    async_timer_fired = 0;
    finish_hook_status = -1;
    finish_hook_calls = 0;
    *state = f;
    return 0;
}

static void on_closed(colony_server *srv, void *ud)
{
    (void)srv;
    *(int *)ud = 1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    volatile int closed = 0;
    colony_server_shutdown(f->server, 1000, on_closed, (void *)&closed);
    assert_true(colony_test_run_until(&f->loop, &closed, 5000));
    colony_server_free(f->server);
    colony_router_free(f->router);
    uv_close((uv_handle_t *)&f->wake, NULL);
    colony_test_loop_close(&f->loop);
    free(f);
    return 0;
}

#define REQ(method, target, extra)                                                                 \
    method " " target " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" extra "\r\n"

static void params_query_and_middleware_hooks(void **state)
{
    fixture *f = *state;
    exchange ex;
    char h[128];
    roundtrip(f, REQ("GET", "/users/a%20b?q=x+y&q=second&tag=%41", ""), &ex);
    assert_int_equal(status_of(&ex), 200);
    assert_string_equal(header_of(&ex, "Content-Type", h, sizeof(h)), "application/json");
    assert_string_equal(header_of(&ex, "X-Before", h, sizeof(h)), "1");
    assert_string_equal(header_of(&ex, "X-Seen-Status", h, sizeof(h)), "200");
    assert_string_equal(body_of(&ex), "{\"id\":\"a b\",\"route\":\"/users/:id\",\"q\":\"x y\","
                                      "\"tag\":\"A\"}");
    assert_int_equal(finish_hook_calls, 1);
    assert_int_equal(finish_hook_status, 200);

    roundtrip(f, REQ("GET", "/static/css/site.css", ""), &ex);
    assert_int_equal(status_of(&ex), 200);
    assert_string_equal(body_of(&ex), "css/site.css");

    roundtrip(f, REQ("HEAD", "/users/5", ""), &ex);
    assert_int_equal(status_of(&ex), 200);
    assert_string_equal(body_of(&ex), "");
}

static void not_found_method_not_allowed_options(void **state)
{
    fixture *f = *state;
    exchange ex;
    char h[128];
    roundtrip(f, REQ("GET", "/nope", ""), &ex);
    assert_int_equal(status_of(&ex), 404);
    assert_non_null(strstr(body_of(&ex), "\"not_found\""));
    assert_non_null(strstr(body_of(&ex), "no route for GET /nope"));
    /* Middleware ran for the 404 too. */
    assert_string_equal(header_of(&ex, "X-Seen-Status", h, sizeof(h)), "404");

    roundtrip(f, REQ("POST", "/users/1", "Content-Length: 0\r\n"), &ex);
    assert_int_equal(status_of(&ex), 405);
    assert_string_equal(header_of(&ex, "Allow", h, sizeof(h)), "DELETE, GET, HEAD");
    assert_non_null(strstr(body_of(&ex), "\"method_not_allowed\""));

    roundtrip(f, REQ("OPTIONS", "/users/1", ""), &ex);
    assert_int_equal(status_of(&ex), 204);
    assert_string_equal(header_of(&ex, "Allow", h, sizeof(h)), "DELETE, GET, HEAD");

    roundtrip(f, REQ("DELETE", "/users/1", ""), &ex);
    assert_int_equal(status_of(&ex), 204);

    roundtrip(f, REQ("GET", "/users/%zz", ""), &ex);
    assert_int_equal(status_of(&ex), 400);
    roundtrip(f, REQ("GET", "/users/a%00b", ""), &ex);
    assert_int_equal(status_of(&ex), 400);
}

static void early_answer_and_async_middleware(void **state)
{
    fixture *f = *state;
    exchange ex;
    char h[128];
    roundtrip(f, REQ("GET", "/private", ""), &ex);
    assert_int_equal(status_of(&ex), 401);
    assert_string_equal(header_of(&ex, "X-Seen-Status", h, sizeof(h)), "401");
    assert_int_equal(handler_private_runs, 0);

    roundtrip(f, REQ("GET", "/private", "Authorization: Bearer x\r\n"), &ex);
    assert_int_equal(status_of(&ex), 200);
    assert_string_equal(body_of(&ex), "secret");
    assert_int_equal(handler_private_runs, 1); /* once, despite the second colony_next */

    roundtrip(f, REQ("GET", "/users/7", "X-Async: 1\r\n"), &ex);
    assert_int_equal(status_of(&ex), 200);
    assert_int_equal(async_timer_fired, 1);
    assert_non_null(strstr(body_of(&ex), "\"id\":\"7\""));
    assert_string_equal(header_of(&ex, "X-Before", h, sizeof(h)), "1");
}

static void post_json(fixture *f, const char *ctype_line, const char *body, exchange *ex)
{
    static char request[1024];
    snprintf(
        request, sizeof(request),
        "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n%s",
        ctype_line, strlen(body), body);
    roundtrip(f, request, ex);
}

static void json_helpers(void **state)
{
    fixture *f = *state;
    exchange ex;
    char h[128];
    post_json(f, "Content-Type: application/json\r\n", "{ \"a\" : [1, 2] }", &ex);
    assert_int_equal(status_of(&ex), 200);
    assert_string_equal(header_of(&ex, "Content-Type", h, sizeof(h)), "application/json");
    assert_string_equal(body_of(&ex), "{\"a\":[1,2]}");

    post_json(f, "Content-Type: application/vnd.api+json; charset=utf-8\r\n", "[true]", &ex);
    assert_int_equal(status_of(&ex), 200);
    assert_string_equal(body_of(&ex), "[true]");
    post_json(f, "", "[null]", &ex); /* no Content-Type: accepted */
    assert_int_equal(status_of(&ex), 200);

    post_json(f, "Content-Type: application/json\r\n", "{\"a\": 1,}", &ex);
    assert_int_equal(status_of(&ex), 400);
    json_error_t jerr;
    json_t *err = json_loads(body_of(&ex), 0, &jerr);
    assert_non_null(err);
    assert_string_equal(json_string_value(json_object_get(err, "error")), "invalid_json");
    assert_int_equal(json_integer_value(json_object_get(err, "line")), 1);
    assert_int_equal(json_integer_value(json_object_get(err, "column")), 9);
    assert_int_equal(json_integer_value(json_object_get(err, "position")), 8);
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")),
                           "invalid JSON at line 1, column 9 (position 8): "));
    json_decref(err);

    post_json(f, "Content-Type: application/json\r\n", "{\"a\":1,\"a\":2}", &ex);
    assert_int_equal(status_of(&ex), 400); /* duplicate keys */
    post_json(f, "Content-Type: application/json\r\n", "\"scalar\"", &ex);
    assert_int_equal(status_of(&ex), 400);

    post_json(f, "Content-Type: application/json\r\n", "", &ex);
    assert_int_equal(status_of(&ex), 400);
    assert_non_null(strstr(body_of(&ex), "request body is empty"));

    post_json(f, "Content-Type: application/json\r\n",
              "{\"pad\":\"0123456789012345678901234567890123456789012345678901234567890123\"}",
              &ex);
    assert_int_equal(status_of(&ex), 413);
    assert_non_null(strstr(body_of(&ex), "payload_too_large"));

    post_json(f, "Content-Type: text/plain\r\n", "{}", &ex);
    assert_int_equal(status_of(&ex), 415);
    assert_non_null(strstr(body_of(&ex), "unsupported_media_type"));
    post_json(f, "Content-Type: application/jsonx\r\n", "{}", &ex);
    assert_int_equal(status_of(&ex), 415);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(params_query_and_middleware_hooks, setup, teardown),
        cmocka_unit_test_setup_teardown(not_found_method_not_allowed_options, setup, teardown),
        cmocka_unit_test_setup_teardown(early_answer_and_async_middleware, setup, teardown),
        cmocka_unit_test_setup_teardown(json_helpers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
