/* RESP connections on libuv TCP: the listener, then per client read -> parse
 * -> dispatch -> write, in that order. Replies to pipelined commands are
 * appended to one output buffer in order and sent with uv_try_write, then
 * uv_write for what the kernel did not take (one write in flight; what comes
 * meanwhile waits in `out`). Limits, each closing the client as Redis does:
 * unparsed input over max_query_buffer (no reply: Redis's query buffer
 * limit), unsent output over output_limit, or pubsub_limit once subscribed
 * (Redis's client-output-buffer-limit pubsub: a subscriber that does not
 * read is disconnected, not buffered for). A client whose unsent replies
 * pass PAUSE_AT stops being read until they drain, so a pipelining client
 * that does not read its replies slows down instead of being cut off. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/alloc.h"
#include "broker/commands.h"
#include "broker/conn.h"
#include "http/address.h"

#define READ_CHUNK (64 * 1024)
#define PAUSE_AT   (1024 * 1024)     /* unsent bytes that stop reading */
#define MAX_REPLY  ((size_t)1 << 40) /* out's own cap: the limits are checked in flush */

uint64_t colony__broker_now_ms(void)
{
    return uv_hrtime() / 1000000;
}

void colony__broker_resp_init(colony__broker_resp *srv, uv_loop_t *loop,
                              const colony__broker_settings *settings)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->settings = *settings;
    colony__list_init(&srv->clients);
    colony__list_init(&srv->dirty);
    colony__list_init(&srv->blocked);
    srv->next_id = 1;
    srv->started_ms = colony__broker_now_ms();
}

size_t colony__broker_client_pending(const colony__broker_client *c)
{
    return c->out.len + c->inflight.len - c->inflight_off + c->parked.len;
}

/* Closed once the listener, every client and every commit a reply waits
 * for are done (the commit callbacks reach srv). */
static void maybe_closed(colony__broker_resp *srv)
{
    if (srv->stopped && !srv->listening && srv->nclients == 0 && srv->commits_inflight == 0 &&
        srv->closed) {
        void (*closed)(void *) = srv->closed;
        srv->closed = NULL;
        colony__broker_pubsub_free(&srv->pubsub);
        closed(srv->closed_ud);
    }
}

static void on_client_closed(uv_handle_t *h)
{
    colony__broker_client *c = h->data;
    colony__broker_resp *srv = c->srv;
    colony__broker_subs_drop(c);
    if (c->blocked) colony__xread_cancel(c);
    colony__list *pn;
    while ((pn = colony__list_pop_front(&c->parks))) {
        colony__broker_park *p = COLONY__CONTAINER_OF(pn, colony__broker_park, link);
        p->client = NULL; /* the commit callback frees it */
        if (p->done) colony__free(p);
    }
    colony_buf_free(&c->parked);
    colony__list_remove(&c->link);
    colony__list_remove(&c->dirty_link);
    srv->nclients--;
    colony__resp_parser_free(&c->parser);
    colony_buf_free(&c->in);
    colony_buf_free(&c->out);
    colony_buf_free(&c->inflight);
    colony__free(c->name);
    colony__free(c->lib_name);
    colony__free(c->lib_ver);
    colony__free(c);
    maybe_closed(srv);
}

void colony__broker_client_close(colony__broker_client *c)
{
    if (c->closing) return;
    c->closing = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

void colony__broker_client_close_after_reply(colony__broker_client *c)
{
    c->close_after_reply = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void process(colony__broker_client *c);

/* Unsent output (parked replies included) that stops reading: well below the
 * output limit, so that a paused client is not cut off. */
static size_t pause_threshold(const colony__broker_resp *srv)
{
    size_t pause_at = PAUSE_AT;
    if (srv->settings.output_limit && srv->settings.output_limit / 2 < pause_at)
        pause_at = srv->settings.output_limit / 2;
    return pause_at;
}

static void resume(colony__broker_client *c)
{
    if (!c->paused || c->closing || c->close_after_reply) return;
    c->paused = 0;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) {
        colony__broker_client_close(c);
        return;
    }
    process(c); /* what was read before the pause */
}

static void on_write(uv_write_t *wr, int status)
{
    colony__broker_client *c = wr->data;
    c->writing = 0;
    if (c->closing) return;
    if (status < 0) {
        colony__broker_client_close(c);
        return;
    }
    c->srv->stats.bytes_out += c->inflight.len - c->inflight_off;
    colony_buf_reset(&c->inflight);
    c->inflight_off = 0;
    if (c->inflight.cap > 4 * READ_CHUNK) colony_buf_free(&c->inflight); /* after a big reply */
    colony__broker_client_flush(c); /* resumes a paused client once all is sent */
}

/* Over its output limit: closes c and returns 1. */
static int over_limit(colony__broker_client *c)
{
    size_t limit = colony__broker_subs_count(&c->subs) ? c->srv->settings.pubsub_limit
                                                       : c->srv->settings.output_limit;
    if (limit && colony__broker_client_pending(c) > limit) {
        c->srv->stats.output_limit_disconnects++;
        COLONY_LOG_WARN("broker: client closed at its output limit",
                        COLONY_LF_INT("client", (long long)c->id), COLONY_LF_STR("addr", c->addr),
                        COLONY_LF_INT("pending", (long long)colony__broker_client_pending(c)),
                        COLONY_LF_INT("limit", (long long)limit));
        colony__broker_client_close(c);
        return 1;
    }
    return 0;
}

void colony__broker_client_queue(colony__broker_client *c)
{
    if (c->closing || over_limit(c)) return;
    if (!colony__list_linked(&c->dirty_link))
        colony__list_push_back(&c->srv->dirty, &c->dirty_link);
}

static void process(colony__broker_client *c);

static void flush_dirty(colony__broker_resp *srv)
{
    colony__list *n;
    while ((n = colony__list_pop_front(&srv->dirty))) {
        colony__broker_client *c = COLONY__CONTAINER_OF(n, colony__broker_client, dirty_link);
        if (c->resume_pending && !c->processing && !c->closing) {
            c->resume_pending = 0;
            process(c); /* its reply, then the commands it read while blocked */
        } else {
            colony__broker_client_flush(c);
        }
    }
}

void colony__broker_resp_flush_dirty(colony__broker_resp *srv)
{
    if (!srv->in_process) flush_dirty(srv);
}

void colony__broker_client_flush(colony__broker_client *c)
{
    if (c->closing || over_limit(c)) return;
    if (c->writing) return;
    size_t sent = 0;
    if (c->out.len) {
        uv_buf_t b =
            uv_buf_init(c->out.data, (unsigned)(c->out.len > UINT32_MAX ? UINT32_MAX : c->out.len));
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
        if (n < 0) {
            colony__broker_client_close(c);
            return;
        }
        c->srv->stats.bytes_out += (uint64_t)n;
        sent = (size_t)n;
        if (sent == c->out.len) {
            colony_buf_reset(&c->out);
            if (c->out.cap > 4 * READ_CHUNK) colony_buf_free(&c->out); /* after a big reply */
        }
    }
    if (c->out.len) {
        /* the rest goes from where the kernel stopped, without moving it */
        colony_buf t = c->inflight; /* empty: no write is in flight */
        c->inflight = c->out;
        c->out = t;
        c->inflight_off = sent;
        uv_buf_t b = uv_buf_init(c->inflight.data + sent, (unsigned)(c->inflight.len - sent));
        c->write_req.data = c;
        if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
            colony__broker_client_close(c);
            return;
        }
        c->writing = 1;
        return;
    }
    if (c->close_after_reply && c->parked.len == 0) { /* QUIT after a parked reply waits */
        colony__broker_client_close(c);
        return;
    }
    /* Everything written is sent; a parked reply still over the threshold
     * (a big XREADGROUP waiting for its fsync) keeps the client paused until
     * its release flushes again: resuming now would pause again at once, and
     * recurse through process() until the stack ran out. */
    if (c->paused && !c->processing && colony__broker_client_pending(c) < pause_threshold(c->srv))
        resume(c);
}

colony__broker_park *colony__broker_park_new(colony__broker_client *c)
{
    colony__broker_park *p = colony__calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->client = c;
    p->srv = c->srv;
    p->start = UINT64_MAX; /* set by process() once the reply is written */
    colony__list_push_back(&c->parks, &p->link);
    c->srv->commits_inflight++;
    return p;
}

/* Moves to `out` the parked replies no unfinished ticket holds back.
 * 0, or <0 when c was closed (a failed commit, or no memory). */
static int release_parked(colony__broker_client *c)
{
    uint64_t upto = c->parked_base + c->parked.len;
    colony__list *n;
    while ((n = colony__list_first(&c->parks))) {
        colony__broker_park *p = COLONY__CONTAINER_OF(n, colony__broker_park, link);
        if (!p->done) {
            if (p->start != UINT64_MAX) upto = p->start;
            break;
        }
        if (p->err) {
            COLONY_LOG_WARN("broker: client closed: a write it made is not durable",
                            COLONY_LF_INT("client", (long long)c->id),
                            COLONY_LF_STR("error", colony_strerror(p->err)));
            colony__broker_client_close(c);
            return p->err;
        }
        colony__list_remove(n);
        colony__free(p);
    }
    size_t len = (size_t)(upto - c->parked_base);
    if (!len) return 0;
    if (colony_buf_append(&c->out, c->parked.data, len)) {
        colony__broker_client_close(c);
        return COLONY_ENOMEM;
    }
    colony_buf_consume(&c->parked, len);
    c->parked_base += len;
    if (c->parked.len == 0 && c->parked.cap > 4 * READ_CHUNK) colony_buf_free(&c->parked);
    return 0;
}

void colony__broker_park_done(colony__broker_park *p, int err)
{
    colony__broker_resp *srv = p->srv;
    colony__broker_client *c = p->client;
    p->done = 1;
    p->err = err;
    srv->commits_inflight--;
    if (!c) {
        colony__free(p);
        maybe_closed(srv);
        return;
    }
    if (c->processing || c->closing) return; /* process() releases at its end */
    if (release_parked(c) == 0) colony__broker_client_flush(c);
    colony__broker_resp_flush_dirty(srv);
}

/* After a command: once a ticket is waiting, its reply and every later one
 * go to `parked` instead of `out`, so they stay behind it in order. */
static int park_replies(colony__broker_client *c, size_t before)
{
    if (colony__list_empty(&c->parks)) return 0;
    uint64_t at = c->parked_base + c->parked.len;
    if (c->out.len > before) {
        if (colony_buf_append(&c->parked, c->out.data + before, c->out.len - before))
            return COLONY_ENOMEM;
        c->out.len = before;
    }
    for (colony__list *n = c->parks.prev; n != &c->parks; n = n->prev) {
        colony__broker_park *p = COLONY__CONTAINER_OF(n, colony__broker_park, link);
        if (p->start != UINT64_MAX) break;
        p->start = at;
    }
    return 0;
}

void colony__broker_client_unblock(colony__broker_client *c, size_t before)
{
    c->blocked = NULL;
    if (park_replies(c, before) < 0) {
        colony__broker_client_close(c);
        return;
    }
    c->resume_pending = 1;
    colony__broker_client_queue(c);
}

/* Runs every complete command in the input, in order. */
static void process(colony__broker_client *c)
{
    colony__broker_resp *srv = c->srv;
    size_t at = 0;
    size_t pause_at = pause_threshold(srv);
    c->processing = 1;
    srv->in_process++;
    while (!c->closing && !c->close_after_reply && !c->blocked) {
        if (colony__broker_client_pending(c) >= pause_at) {
            colony__broker_client_flush(c);
            if (c->closing) break;
            if (colony__broker_client_pending(c) >= pause_at) {
                /* flush() resumes once everything is sent */
                if (!c->paused) uv_read_stop((uv_stream_t *)&c->tcp);
                c->paused = 1;
                break;
            }
        }
        long used = colony__resp_parse(&c->parser, c->in.data + at, c->in.len - at);
        if (used == 0) break;
        if (used == COLONY_EPROTO) {
            srv->stats.protocol_errors++;
            if (colony__resp_errorf(&c->out, "ERR %s", c->parser.error)) {
                colony__broker_client_close(c);
                break;
            }
            colony__broker_client_close_after_reply(c);
            break;
        }
        if (used < 0) {
            colony__broker_client_close(c);
            break;
        }
        if (c->parser.nargs) {
            c->last_ms = colony__broker_now_ms();
            srv->stats.commands_processed++;
            size_t before = c->out.len;
            if (colony__broker_dispatch(c, c->parser.args, c->parser.nargs) < 0 ||
                park_replies(c, before) < 0) {
                colony__broker_client_close(c);
                break;
            }
        }
        at += (size_t)used;
        colony__resp_parser_next(&c->parser);
    }
    colony__xpark_flush(c); /* the XADDs of this read: one commit wait */
    c->processing = 0;
    srv->in_process--;
    if (c->closing) {
        flush_dirty(srv); /* what this client published before it failed */
        return;
    }
    /* a command being parsed keeps offsets from its first byte, which stays first */
    colony_buf_consume(&c->in, at);
    if (release_parked(c) < 0) {
        flush_dirty(srv);
        return;
    }
    colony__broker_client_flush(c);
    flush_dirty(srv);
    if (!c->closing && c->in.len == 0 && c->in.cap > 4 * READ_CHUNK)
        colony_buf_free(&c->in); /* give back what a large command needed */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    colony__broker_client *c = h->data;
    size_t room = READ_CHUNK;
    if (c->in.max - c->in.len < room) room = c->in.max - c->in.len;
    int rc = room ? colony_buf_reserve(&c->in, room) : COLONY_E2BIG;
    if (rc) {
        c->out_of_memory = rc == COLONY_ENOMEM;
        *buf = uv_buf_init(NULL, 0); /* on_read gets UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    colony__broker_client *c = s->data;
    if (nread == UV_ENOBUFS && c->out_of_memory) {
        COLONY_LOG_WARN("broker: client closed: out of memory for its input",
                        COLONY_LF_INT("client", (long long)c->id), COLONY_LF_STR("addr", c->addr));
        colony__broker_client_close(c);
        return;
    }
    if (nread == UV_ENOBUFS) {
        c->srv->stats.query_limit_disconnects++;
        COLONY_LOG_WARN("broker: client closed at its query buffer limit",
                        COLONY_LF_INT("client", (long long)c->id), COLONY_LF_STR("addr", c->addr),
                        COLONY_LF_INT("limit", (long long)c->in.max));
        colony__broker_client_close(c);
        return;
    }
    if (nread < 0) {
        colony__broker_client_close(c);
        return;
    }
    if (nread == 0) return;
    c->in.len += (size_t)nread;
    c->in.data[c->in.len] = '\0';
    c->srv->stats.bytes_in += (uint64_t)nread;
    process(c);
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char ip[64] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
        snprintf(out, n, "[%s]:%d", ip, port);
        return;
    }
    if (ss->ss_family != AF_INET) {
        snprintf(out, n, "?");
        return;
    }
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uv_ip4_name(a, ip, sizeof(ip));
    port = ntohs(a->sin_port);
    snprintf(out, n, "%s:%d", ip, port);
}

/* Close callback of a handle whose data is the allocation to free. */
static void free_data(uv_handle_t *h)
{
    colony__free(h->data);
}

static void reject(uv_tcp_t *tcp)
{
    static const char msg[] = "-ERR max number of clients reached\r\n";
    uv_buf_t b = uv_buf_init((char *)msg, sizeof(msg) - 1);
    (void)uv_try_write((uv_stream_t *)tcp, &b, 1);
    uv_close((uv_handle_t *)tcp, free_data);
}

static void on_connection(uv_stream_t *server, int status)
{
    colony__broker_resp *srv = server->data;
    if (status < 0 || srv->stopped) return;
    colony__broker_client *c = colony__calloc(1, sizeof(*c));
    if (!c) return; /* out of memory: the connection waits in the backlog */
    if (uv_tcp_init(srv->loop, &c->tcp)) {
        colony__free(c);
        return;
    }
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, free_data);
        return;
    }
    srv->stats.connections_received++;
    if (srv->nclients >= srv->settings.max_clients) {
        srv->stats.connections_rejected++;
        reject(&c->tcp);
        return;
    }
    if (colony__broker_client_start(srv, c)) colony__broker_client_close(c);
}

int colony__broker_client_start(colony__broker_resp *srv, colony__broker_client *c)
{
    c->tcp.data = c;
    c->srv = srv;
    colony__list_init(&c->dirty_link);
    colony__list_init(&c->parks);
    colony_buf_init(&c->parked, MAX_REPLY);
    c->id = srv->next_id++;
    colony__resp_parser_init(&c->parser, &srv->settings.limits);
    const char *pass = srv->settings.requirepass;
    c->authenticated = !pass || !*pass;
    c->parser.unauthenticated = !c->authenticated;
    colony_buf_init(&c->in, srv->settings.max_query_buffer);
    colony_buf_init(&c->out, MAX_REPLY);
    colony_buf_init(&c->inflight, MAX_REPLY);
    colony__broker_subs_init(&c->subs);
    c->created_ms = c->last_ms = colony__broker_now_ms();
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, c->addr, sizeof(c->addr));
    len = sizeof(ss);
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, c->laddr, sizeof(c->laddr));
    uv_tcp_nodelay(&c->tcp, 1);
    colony__list_push_back(&srv->clients, &c->link);
    srv->nclients++;
    return uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int colony__broker_resp_listen(colony__broker_resp *srv, const char *address)
{
    struct sockaddr_storage ss;
    socklen_t ss_len;
    int rc = colony__address_parse_tcp(address, &ss, &ss_len);
    if (rc) return rc;
    rc = uv_tcp_init(srv->loop, &srv->listener);
    if (rc) return rc;
    srv->listener.data = srv;
    srv->listening = 1;
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
    if (!rc) rc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
    if (rc) return rc; /* the handle is closed by colony__broker_resp_close */
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) == 0)
        srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    colony__broker_resp *srv = h->data;
    srv->listening = 0;
    maybe_closed(srv);
}

void colony__broker_resp_close(colony__broker_resp *srv, void (*closed)(void *), void *ud)
{
    srv->stopped = 1;
    srv->closed = closed;
    srv->closed_ud = ud;
    if (srv->listening && !uv_is_closing((uv_handle_t *)&srv->listener))
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    colony__list *n, *tmp;
    COLONY__LIST_FOREACH_SAFE(n, tmp, &srv->clients)
    {
        colony__broker_client *c = COLONY__CONTAINER_OF(n, colony__broker_client, link);
        colony__broker_client_flush(c); /* a last try for replies already made */
        colony__broker_client_close(c);
    }
    maybe_closed(srv);
}
