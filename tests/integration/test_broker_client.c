/* The broker client (include/colony/broker_client.h) against a real
 * `colony broker` (and, for the publish contract, a silent fake server):
 * the publish callback fires only once the broker has answered, and fails
 * cleanly when nothing listens; messages arrive in order with their headers
 * and JSON data and are acked in batches; RETRY brings a message back with
 * delivery count 2 after the group's backoff; DEAD_LETTER puts it in the
 * dead-letter list with its error text; the prefetch window is never
 * exceeded; a close lets publishes in flight finish, waits for held messages
 * up to its timeout, and refuses new work. */
#include "test_broker_client_util.h"
#include <fcntl.h>
#include <arpa/inet.h>

/* ---- the publish callback waits for the broker's answer ---- */

static void test_publish_waits_for_the_answer(void **state)
{
    (void)state;
    setup_loop();
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    fcntl(lfd, F_SETFL, O_NONBLOCK);
    broker_proc fake = {.port = ntohs(sa.sin_port)};
    snprintf(fake.url, sizeof(fake.url), "http://127.0.0.1:%d", fake.port);
    colony_broker_client *c = bclient_new(&fake, 0);

    pub_result r = {0};
    const char *headers[] = {"trace", "t1", NULL};
    colony_broker_message m = {.stream = "s",
                               .data = "{\"n\": 1}",
                               .json = 1,
                               .headers = headers,
                               .idempotency_key = "k1"};
    assert_int_equal(colony_broker_publish(c, &m, on_published, &r), 0);
    int fd = -1;
    assert_true(RUN_UNTIL((fd = accept(lfd, NULL, NULL)) >= 0, 5000));
    char req[4096];
    size_t got = 0;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    assert_true(RUN_UNTIL(({
                              ssize_t k = read(fd, req + got, sizeof(req) - 1 - got);
                              if (k > 0) got += (size_t)k;
                              req[got] = 0;
                              strstr(req, "\r\n\r\n") && strstr(req, "}}");
                          }),
                          5000));
    assert_non_null(strstr(req, "POST /streams/s/messages HTTP/1.1"));
    assert_non_null(strstr(req, "Idempotency-Key: k1"));
    assert_non_null(strstr(req, "{\"data\":{\"n\":1},\"headers\":{\"trace\":\"t1\"}}"));
    run_for(300); /* the request is there, no answer yet: no callback */
    assert_int_equal(r.done, 0);
    const char *answer = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                         "Content-Length: 14\r\n\r\n{\"id\":\"5-0\"}\r\n";
    assert_int_equal(write(fd, answer, strlen(answer)), (ssize_t)strlen(answer));
    assert_true(RUN_UNTIL(r.done, 5000));
    assert_int_equal(r.err, 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.id, "5-0");
    close(fd);
    close(lfd);
    bclient_close(c);

    /* nothing listens: a clean error, no id */
    broker_proc none = {.port = free_port()};
    snprintf(none.url, sizeof(none.url), "http://127.0.0.1:%d", none.port);
    c = bclient_new(&none, 0);
    r = publish_wait(c, "s", "x");
    assert_int_equal(r.err, COLONY_ECONNREFUSED);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.id, "");
    /* bad input never calls back */
    colony_broker_message bad = {.stream = "s", .data = "{nope", .json = 1};
    assert_int_equal(colony_broker_publish(c, &bad, on_published, &r), COLONY_EINVAL);
    colony_broker_message both = {.stream = "s", .topic = "t", .data = "x"};
    assert_int_equal(colony_broker_publish(c, &both, on_published, &r), COLONY_EINVAL);
    bclient_close(c);
    teardown_loop();
}

/* ---- a subscription: order, headers, JSON, batched acks ---- */

typedef struct seen {
    char data[32][32];
    unsigned deliveries[32];
    char trace[32];
    int json_n;
    int count;
} seen;

static colony_broker_verdict record(colony_broker_msg *m, void *ud)
{
    seen *s = ud;
    size_t len;
    const char *d = colony_broker_msg_data(m, &len);
    if (s->count < 32) {
        snprintf(s->data[s->count], sizeof(s->data[0]), "%.*s", (int)len, d);
        s->deliveries[s->count] = colony_broker_msg_deliveries(m);
    }
    const json_t *j = colony_broker_msg_json(m);
    if (j) s->json_n = (int)json_integer_value(json_object_get(j, "n"));
    const char *t = colony_broker_msg_header(m, "trace");
    if (t) snprintf(s->trace, sizeof(s->trace), "%s", t);
    s->count++;
    return COLONY_BROKER_ACK;
}

static void test_subscribe_in_order(void **state)
{
    (void)state;
    setup_loop();
    broker_proc b;
    broker_start(&b);
    colony_broker_client *c = bclient_new(&b, 0);
    char text[16];
    for (int i = 0; i < 19; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        pub_result r = publish_wait(c, "orders", text); /* creates the stream */
        assert_int_equal(r.err, 0);
        assert_int_equal(r.status, 201);
        if (i == 0) { /* durable and there when the callback runs */
            http_result h = http(&b, "GET", "/streams/orders/messages", NULL);
            json_t *first = json_array_get(json_object_get(h.json, "messages"), 0);
            assert_string_equal(json_string_value(json_object_get(first, "id")), r.id);
            json_decref(h.json);
        }
    }
    pub_result r = {0};
    const char *headers[] = {"trace", "abc", NULL};
    colony_broker_message m = {
        .stream = "orders", .data = "{\"n\":7}", .json = 1, .headers = headers};
    assert_int_equal(colony_broker_publish(c, &m, on_published, &r), 0);
    assert_true(RUN_UNTIL(r.done, 15000));
    assert_int_equal(r.err, 0);

    seen s = {0};
    colony_broker_sub *sub;
    assert_int_equal(
        colony_broker_subscribe(
            c,
            &(colony_broker_sub_options){
                .stream = "orders", .group = "billing", .handler = record, .ud = &s, .prefetch = 8},
            &sub),
        0);
    assert_true(RUN_UNTIL(s.count == 20, 15000));
    for (int i = 0; i < 19; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        assert_string_equal(s.data[i], text);
        assert_int_equal(s.deliveries[i], 1);
    }
    assert_string_equal(s.data[19], "{\"n\":7}");
    assert_int_equal(s.json_n, 7);
    assert_string_equal(s.trace, "abc");
    assert_true(colony_broker_sub_connected(sub));
    /* every ack reached the broker */
    assert_true(RUN_UNTIL(colony_broker_sub_in_flight(sub) == 0, 5000));
    assert_int_equal(http_field(&b, "/streams/orders/groups/billing", "pending"), 0);
    assert_int_equal(http_field(&b, "/streams/orders/groups/billing", "lag"), 0);
    /* a message published while subscribed arrives too */
    assert_int_equal(publish_wait(c, "orders", "late").err, 0);
    assert_true(RUN_UNTIL(s.count == 21, 15000));
    assert_string_equal(s.data[20], "late");
    closed_count = 0;
    colony_broker_unsubscribe(sub, on_closed, NULL);
    assert_true(RUN_UNTIL(closed_count == 1, 5000));
    bclient_close(c);
    broker_stop(&b);
    teardown_loop();
}

/* ---- RETRY and DEAD_LETTER ---- */

typedef struct verdicts {
    uint64_t first_at, second_at;
    unsigned second_count;
    int poison_seen;
} verdicts;

static colony_broker_verdict judge(colony_broker_msg *m, void *ud)
{
    verdicts *v = ud;
    size_t len;
    const char *d = colony_broker_msg_data(m, &len);
    if (len == 6 && !memcmp(d, "poison", 6)) {
        v->poison_seen++;
        colony_broker_msg_set_error(m, "cannot parse it");
        return COLONY_BROKER_DEAD_LETTER;
    }
    if (colony_broker_msg_deliveries(m) == 1) {
        v->first_at = colony_test_now_ms();
        return COLONY_BROKER_RETRY;
    }
    v->second_at = colony_test_now_ms();
    v->second_count = colony_broker_msg_deliveries(m);
    return COLONY_BROKER_ACK;
}

static void test_retry_and_dead_letter(void **state)
{
    (void)state;
    setup_loop();
    broker_proc b;
    broker_start(&b);
    assert_int_equal(http_status(&b, "PUT", "/streams/jobs", NULL), 201);
    assert_int_equal(http_status(&b, "PUT", "/streams/jobs/groups/w",
                                 "{\"start\": \"0\", \"backoff\": {\"kind\": \"fixed\", "
                                 "\"delay\": 400, \"jitter\": 0}}"),
                     201);
    colony_broker_client *c = bclient_new(&b, 0);
    assert_int_equal(publish_wait(c, "jobs", "flaky").err, 0);
    assert_int_equal(publish_wait(c, "jobs", "poison").err, 0);
    verdicts v = {0};
    assert_int_equal(
        colony_broker_subscribe(
            c,
            &(colony_broker_sub_options){
                .stream = "jobs", .group = "w", .handler = judge, .ud = &v, .wait_ms = 2000},
            NULL),
        0);
    assert_true(RUN_UNTIL(v.second_count && v.poison_seen, 15000));
    assert_int_equal(v.second_count, 2);
    assert_int_equal(v.poison_seen, 1);
    assert_true(v.second_at - v.first_at >= 350); /* the group's backoff, 400 ms */
    run_for(200);
    http_result h = http(&b, "GET", "/streams/jobs/groups/w/dlq", NULL);
    assert_int_equal(h.status, 200);
    json_t *list = json_object_get(h.json, "dead_letters");
    assert_int_equal(json_array_size(list), 1);
    json_t *d = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(d, "data")), "poison");
    assert_string_equal(json_string_value(json_object_get(d, "error")), "cannot parse it");
    assert_int_equal(json_integer_value(json_object_get(d, "deliveries")), 1);
    json_decref(h.json);
    assert_int_equal(http_field(&b, "/streams/jobs/groups/w", "pending"), 0);
    bclient_close(c);
    broker_stop(&b);
    teardown_loop();
}

/* ---- prefetch ---- */

typedef struct holder {
    colony_broker_msg *held[16];
    int n, total, max_held;
} holder;

static colony_broker_verdict hold(colony_broker_msg *m, void *ud)
{
    holder *h = ud;
    h->held[h->n++] = m;
    h->total++;
    if (h->n > h->max_held) h->max_held = h->n;
    return COLONY_BROKER_LATER;
}

static void test_prefetch_bound(void **state)
{
    (void)state;
    setup_loop();
    broker_proc b;
    broker_start(&b);
    colony_broker_client *c = bclient_new(&b, 0);
    pub_result r[10] = {0};
    assert_int_equal(publish_wait(c, "p", "0").err, 0);
    for (int i = 1; i < 10; i++) {
        colony_broker_message m = {.stream = "p", .data = "x"};
        assert_int_equal(colony_broker_publish(c, &m, on_published, &r[i]), 0);
    }
    assert_true(RUN_UNTIL(({
                              int all = 1;
                              for (int i = 1; i < 10; i++)
                                  all &= r[i].done && r[i].err == 0;
                              all;
                          }),
                          15000));
    holder h = {0};
    colony_broker_sub *sub;
    assert_int_equal(colony_broker_subscribe(c,
                                             &(colony_broker_sub_options){.stream = "p",
                                                                          .group = "g",
                                                                          .handler = hold,
                                                                          .ud = &h,
                                                                          .prefetch = 3,
                                                                          .wait_ms = 500},
                                             &sub),
                     0);
    assert_true(RUN_UNTIL(h.n == 3, 15000));
    run_for(700); /* more polls would have had time to bring more */
    assert_int_equal(h.n, 3);
    assert_int_equal(colony_broker_sub_in_flight(sub), 3);
    assert_int_equal(http_field(&b, "/streams/p/groups/g", "pending"), 3);
    /* settle one at a time: never more than 3 held */
    uint64_t end = colony_test_now_ms() + 15000;
    while (h.total < 10 && colony_test_now_ms() < end) {
        if (h.n) {
            assert_int_equal(colony_broker_msg_ack(h.held[0]), 0);
            memmove(h.held, h.held + 1, (size_t)(h.n - 1) * sizeof(h.held[0]));
            h.n--;
        }
        assert_true(colony_broker_sub_in_flight(sub) <= 3);
        run_for(5);
    }
    assert_int_equal(h.total, 10);
    assert_int_equal(h.max_held, 3);
    while (h.n)
        assert_int_equal(colony_broker_msg_ack(h.held[--h.n]), 0);
    assert_true(RUN_UNTIL(colony_broker_sub_in_flight(sub) == 0, 5000));
    assert_int_equal(http_field(&b, "/streams/p/groups/g", "pending"), 0);
    bclient_close(c);
    broker_stop(&b);
    teardown_loop();
}

/* ---- close ---- */

typedef struct at_close {
    int done, ok, before_close;
} at_close;

static void on_published_count(int err, const colony_broker_reply *r, void *ud)
{
    (void)r;
    at_close *a = ud;
    a->done++;
    a->ok += err == 0;
    a->before_close += closed_count == 0;
}

static void test_close(void **state)
{
    (void)state;
    setup_loop();
    broker_proc b;
    broker_start(&b);
    colony_broker_client *c = bclient_new(&b, 0);
    assert_int_equal(publish_wait(c, "q", "first").err, 0);
    at_close a = {0};
    for (int i = 0; i < 20; i++) {
        colony_broker_message m = {.stream = "q", .data = "x"};
        assert_int_equal(colony_broker_publish(c, &m, on_published_count, &a), 0);
    }
    closed_count = 0;
    colony_broker_client_close(c, on_closed, NULL);
    colony_broker_message m = {.stream = "q", .data = "late"};
    assert_int_equal(colony_broker_publish(c, &m, on_published_count, &a), COLONY_ESHUTDOWN);
    assert_true(RUN_UNTIL(closed_count == 1, 15000));
    assert_int_equal(a.done, 20);
    assert_int_equal(a.ok, 20);
    assert_int_equal(a.before_close, 20);
    assert_int_equal(http_field(&b, "/streams/q", "entries"), 21);

    /* a held message: the close waits for it up to close_timeout_ms */
    c = bclient_new(&b, 400);
    holder h = {0};
    assert_int_equal(colony_broker_subscribe(
                         c,
                         &(colony_broker_sub_options){
                             .stream = "q", .group = "g", .handler = hold, .ud = &h, .prefetch = 1},
                         NULL),
                     0);
    assert_true(RUN_UNTIL(h.n == 1, 15000));
    closed_count = 0;
    uint64_t t0 = colony_test_now_ms();
    colony_broker_client_close(c, on_closed, NULL);
    assert_int_equal(
        colony_broker_subscribe(
            c, &(colony_broker_sub_options){.stream = "q", .group = "g", .handler = hold}, NULL),
        COLONY_ESHUTDOWN);
    assert_true(RUN_UNTIL(closed_count == 1, 15000));
    assert_true(colony_test_now_ms() - t0 >= 350);
    assert_int_equal(colony_broker_msg_ack(h.held[0]), COLONY_ESHUTDOWN); /* only freed */

    /* ... and finishes at once when it is settled before that */
    c = bclient_new(&b, 10000);
    h = (holder){0};
    assert_int_equal(
        colony_broker_subscribe(
            c,
            &(colony_broker_sub_options){
                .stream = "q", .group = "g2", .handler = hold, .ud = &h, .prefetch = 1},
            NULL),
        0);
    assert_true(RUN_UNTIL(h.n == 1, 15000));
    closed_count = 0;
    colony_broker_client_close(c, on_closed, NULL);
    run_for(100);
    assert_int_equal(closed_count, 0);
    assert_int_equal(colony_broker_msg_ack(h.held[0]), 0);
    assert_true(RUN_UNTIL(closed_count == 1, 5000));
    assert_int_equal(http_field(&b, "/streams/q/groups/g2", "pending"), 0);
    broker_stop(&b);
    teardown_loop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_waits_for_the_answer),
        cmocka_unit_test(test_subscribe_in_order),
        cmocka_unit_test(test_retry_and_dead_letter),
        cmocka_unit_test(test_prefetch_bound),
        cmocka_unit_test(test_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
