/* broker-worker: a service that consumes a broker stream and publishes to it,
 * built only on the public API (docs/broker-client.md).
 *   COLONY_BROKER_URL=http://127.0.0.1:8600 build/bin/broker-worker --listen 127.0.0.1:8081
 *   POST /orders  {"any": "json"}  -> 201 {"id": "..."} once the broker has it on disk
 * Every message of stream "orders" reaches on_order through group "billing":
 * logged and acked; one whose data has "fail": true is retried with the
 * group's backoff, and dead-lettered after the group's max deliveries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <colony/colony.h>

static colony_broker_verdict on_order(colony_broker_msg *m, void *ud)
{
    (void)ud;
    const json_t *order = colony_broker_msg_json(m);
    COLONY_LOG_INFO("order", COLONY_LF_STR("id", colony_broker_msg_id(m)),
                    COLONY_LF_INT("deliveries", colony_broker_msg_deliveries(m)),
                    COLONY_LF_STR("data", colony_broker_msg_data(m, NULL)));
    if (json_is_true(json_object_get(order, "fail"))) {
        colony_broker_msg_set_error(m, "payment declined");
        return COLONY_BROKER_RETRY;
    }
    return COLONY_BROKER_ACK;
}

/* ---- POST /orders: answered once the broker has made the message durable ---- */

typedef struct pending {
    colony_request *req; /* NULL once the client is gone */
    int published;       /* the broker answered */
} pending;

static void request_over(colony_request *req, int status, void *ud)
{
    (void)req;
    (void)status;
    pending *p = ud;
    p->req = NULL;
    if (p->published) free(p);
}

static void published(int err, const colony_broker_reply *r, void *ud)
{
    pending *p = ud;
    p->published = 1;
    if (!p->req) {
        free(p);
        return;
    }
    char body[160];
    if (err)
        snprintf(body, sizeof(body), "{\"error\":\"broker\",\"message\":\"%s\"}",
                 r->message ? r->message : colony_strerror(err));
    else
        snprintf(body, sizeof(body), "{\"id\":\"%s\"}", r->id);
    colony_respond(p->req, err ? 502 : 201, "application/json", body, strlen(body));
}

static void post_order(colony_request *req, void *ud)
{
    colony_broker_client *broker = ud;
    size_t len;
    const char *body = colony_request_body(req, &len);
    pending *p = calloc(1, sizeof(*p));
    if (!p || colony_request_on_finish(req, request_over, p)) {
        free(p);
        colony_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    p->req = req;
    colony_broker_message m = {.stream = "orders", .data = body ? body : "", .len = len, .json = 1};
    int rc = len ? colony_broker_publish(broker, &m, published, p) : COLONY_EINVAL;
    if (rc) {
        p->published = 1; /* request_over frees it */
        colony_respond_error(req, 400, "bad_request", "the body is a JSON document");
    }
}

int main(int argc, char **argv)
{
    int exit_code;
    colony_service_options opts = {
        .name = "broker-worker", .argc = argc, .argv = argv, .workers = 1};
    colony_service *svc = colony_service_new(&opts, stderr, &exit_code);
    if (!svc) return exit_code;

    /* a service subscribes in three lines */
    colony_broker_client *broker = colony_service_broker(svc, NULL);
    if (!broker ||
        colony_broker_subscribe(broker,
                                &(colony_broker_sub_options){
                                    .stream = "orders", .group = "billing", .handler = on_order},
                                NULL))
        return colony_service_discard(svc, 1);

    if (colony_router_add(colony_service_router(svc), "POST", "/orders", post_order, broker))
        return colony_service_discard(svc, 1);
    return colony_service_run(svc);
}
