/* `colony broker`: the daemon. A colony_service (HTTP: /health, /ready,
 * /metrics; the streams' HTTP API joins its router) plus the RESP listener
 * (conn.c) on the same loop, one worker: all broker state has one owner.
 * Shutdown: the stopping hook closes the RESP listener and its clients (pub/sub
 * is at most once: nothing is lost that Redis would keep), the shutdown hook
 * waits for their handles, then frees. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "colony/error.h"
#include "colony/log.h"
#include "colony/service.h"
#include "core/alloc.h"
#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/delivery/delivery.h"
#include "broker/http/http.h"
#include "broker/topic/topic.h"
#include "broker/store/store.h"

static const colony_config_setting broker_settings[] = {
    {"resp-listen", COLONY_CONFIG_STRING, "127.0.0.1:6380", 0,
     "Redis protocol (RESP2) address: host:port or [v6]:port", 0, 0},
    {"data-dir", COLONY_CONFIG_STRING, "./data/broker", 0,
     "folder for the broker's streams (created, with its parents)", 0, 0},
    {"fsync", COLONY_CONFIG_STRING, "always", 0,
     "always: a write is acknowledged after its fsync (group commit); batch: at once, fsync "
     "every 100 ms (a crash of the machine loses up to that); never: the OS writes back",
     0, 0},
    {"requirepass", COLONY_CONFIG_STRING, "", 0,
     "password RESP clients must give with AUTH or HELLO AUTH (Redis's requirepass); empty = none",
     0, 0},
    {"resp.max-bulk", COLONY_CONFIG_SIZE, "64mb", 0,
     "longest bulk string a client may send (Redis: proto-max-bulk-len, 512mb)", 1, 1LL << 32},
    {"resp.max-args", COLONY_CONFIG_INT, "1048576", 0, "most arguments in one command", 1,
     1LL << 31},
    {"resp.max-query-buffer", COLONY_CONFIG_SIZE, "128mb", 0,
     "unparsed input held per client; over it the client is closed (Redis: "
     "client-query-buffer-limit); at least resp.max-bulk + 128kb",
     1, 1LL << 34},
    {"resp.output-limit", COLONY_CONFIG_SIZE, "64mb", 0,
     "unsent replies held per client before it is closed", 1, 1LL << 34},
    {"resp.pubsub-output-limit", COLONY_CONFIG_SIZE, "32mb", 0,
     "unsent messages held per subscribed client before it is closed (Redis: "
     "client-output-buffer-limit pubsub 32mb)",
     1, 1LL << 34},
    {"resp.max-clients", COLONY_CONFIG_INT, "10000", 0,
     "RESP connections at once; more get \"-ERR max number of clients reached\"", 1, 1000000},
    {"api.idempotency-window", COLONY_CONFIG_DURATION, "2m", 0,
     "a publish repeated with the same Idempotency-Key within this is dropped (0 = off)", 0,
     86400000},
    {"api.idempotency-keys", COLONY_CONFIG_INT, "100000", 0,
     "Idempotency-Keys remembered at most (the oldest is forgotten first)", 0, 10000000},
    {"api.max-wait", COLONY_CONFIG_DURATION, "5m", 0, "longest ?wait= of a long-poll", 0, 3600000},
    {"api.max-batch", COLONY_CONFIG_INT, "10000", 0,
     "most messages in one NDJSON publish or one consume", 1, 1000000},
};

typedef struct daemon_ctx {
    colony__broker_resp resp;
    colony_service *svc;
    int resp_ready, resp_closing, resp_closed;
    char *requirepass, *data_dir;
    colony__bstore *store;
    colony__bcommit *commit;
    colony__bdelivery *engine; /* NULL while the engine is not built (ENOTSUP) */
    colony__btopics *topics;
    colony__bhttp api;
    int api_ready;
    void (*done)(colony_service *);
} daemon_ctx;

static void free_ctx(daemon_ctx *d)
{
    /* every commit has called back (the RESP side waits for them) */
    if (d->api_ready) colony__bhttp_free(&d->api);
    if (d->topics) colony__btopics_close(d->topics);
    if (d->engine) colony__bdelivery_close(d->engine);
    if (d->commit) colony__bcommit_close(d->commit);
    if (d->store) colony__bstore_close(d->store);
    colony__free(d->requirepass);
    colony__free(d->data_dir);
    colony__free(d);
}

static void resp_closed(void *ud)
{
    daemon_ctx *d = ud;
    d->resp_closed = 1;
    if (d->done) {
        void (*done)(colony_service *) = d->done;
        colony_service *svc = d->svc;
        free_ctx(d);
        done(svc);
    }
}

static void close_resp(daemon_ctx *d)
{
    if (d->resp_closing) return;
    d->resp_closing = 1;
    /* a last attempt for a failing fsync instead of retries for ever: the
     * close below waits for every commit a reply is parked on */
    if (d->commit) colony__bcommit_shutdown(d->commit);
    if (!d->resp_ready) {
        d->resp_closed = 1;
        return;
    }
    colony__broker_resp_close(&d->resp, resp_closed, d);
}

/* A shutdown begins: stop accepting RESP clients and close those connected,
 * so the HTTP drain does not wait on subscribers that never leave. */
static void on_stopping(colony_service *svc, void *ud)
{
    (void)svc;
    daemon_ctx *d = ud;
    if (d->api_ready) colony__bhttp_stopping(&d->api);
    close_resp(d);
}

static void on_shutdown(colony_service *svc, void (*done)(colony_service *), void *ud)
{
    daemon_ctx *d = ud;
    close_resp(d);
    if (d->resp_closed) {
        free_ctx(d);
        done(svc);
        return;
    }
    d->done = done; /* resp_closed finishes */
}

static double clients_gauge(void *ud)
{
    return (double)((colony__broker_resp *)ud)->nclients;
}

static double channels_gauge(void *ud)
{
    return (double)((colony__broker_resp *)ud)->pubsub.channels.count;
}

static double patterns_gauge(void *ud)
{
    return (double)((colony__broker_resp *)ud)->pubsub.patterns.count;
}

static double output_limit_gauge(void *ud)
{
    return (double)((colony__broker_resp *)ud)->stats.output_limit_disconnects;
}

/* A write over RESP (XADD...) is durable: HTTP long-polls on it look again. */
static void wake_polls(void *ud, const char *stream)
{
    colony__bhttp_wake(ud, stream);
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf)) return COLONY_EINVAL;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char ch = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST) return -errno;
        buf[i] = ch;
    }
    return 0;
}

/* The delivery engine and the bindings (delivery/, topic/). Until they are
 * built (ENOTSUP) the broker runs without them: the HTTP calls that need
 * them answer 501. */
static int open_engine(daemon_ctx *d)
{
    char msg[512] = "";
    colony__bdelivery_options o = {
        .store = d->store, .commit = d->commit, .msg = msg, .msg_size = sizeof(msg)};
    int rc = colony__bdelivery_open(&d->engine, &o);
    if (rc == COLONY_ENOTSUP) {
        d->engine = NULL;
        return 0;
    }
    if (rc) {
        d->engine = NULL;
        fprintf(stderr, "broker: cannot load the delivery policies: %s %s\n", colony_strerror(rc),
                msg);
        return rc;
    }
    char path[4200];
    snprintf(path, sizeof(path), "%s/bindings", d->data_dir);
    rc = colony__btopics_open(&d->topics, path, msg, sizeof(msg));
    if (rc == COLONY_ENOTSUP) {
        d->topics = NULL;
        return 0;
    }
    if (rc) {
        d->topics = NULL;
        fprintf(stderr, "broker: cannot load the bindings: %s %s\n", colony_strerror(rc), msg);
    }
    return rc;
}

static int open_store(daemon_ctx *d, colony_config *cfg)
{
    const char *mode = colony_config_get_string(cfg, "fsync");
    colony__bsync_mode sync;
    if (strcmp(mode, "always") == 0)
        sync = COLONY__BSYNC_ALWAYS;
    else if (strcmp(mode, "batch") == 0)
        sync = COLONY__BSYNC_BATCH;
    else if (strcmp(mode, "never") == 0)
        sync = COLONY__BSYNC_NEVER;
    else {
        fprintf(stderr, "broker: fsync must be always, batch or never (not %s)\n", mode);
        return COLONY_EINVAL;
    }
    int rc = make_dirs(d->data_dir);
    if (rc) {
        fprintf(stderr, "broker: cannot create data-dir %s: %s\n", d->data_dir,
                colony_strerror(rc));
        return rc;
    }
    char msg[512] = "";
    /* preallocated segments and journals: a commit's fdatasync overwrites
     * (docs/broker.md, "Storage"); pointless where nothing waits for it */
    colony__bstore_options o = {.dir = d->data_dir,
                                .roll_unsynced = sync == COLONY__BSYNC_NEVER,
                                .prealloc_bytes = sync == COLONY__BSYNC_NEVER ? 0 : 1u << 20};
    rc = colony__bstore_open(&d->store, &o, msg, sizeof(msg));
    if (rc) {
        fprintf(stderr, "broker: cannot open data-dir %s: %s %s\n", d->data_dir,
                colony_strerror(rc), msg);
        COLONY_LOG_ERROR("broker: cannot open the store", COLONY_LF_STR("data-dir", d->data_dir),
                         COLONY_LF_STR("error", colony_strerror(rc)), COLONY_LF_STR("why", msg));
        d->store = NULL;
        return rc;
    }
    rc = colony__bcommit_new(&d->commit, colony_service_loop(d->svc), sync, 0);
    if (rc) {
        d->commit = NULL;
        return rc;
    }
    return open_engine(d);
}

static int setup(daemon_ctx *d, colony_config *cfg)
{
    colony__broker_settings s = {0};
    s.limits.max_bulk = (size_t)colony_config_get_int(cfg, "resp.max-bulk");
    s.limits.max_args = (size_t)colony_config_get_int(cfg, "resp.max-args");
    s.max_query_buffer = (size_t)colony_config_get_int(cfg, "resp.max-query-buffer");
    s.output_limit = (size_t)colony_config_get_int(cfg, "resp.output-limit");
    s.pubsub_limit = (size_t)colony_config_get_int(cfg, "resp.pubsub-output-limit");
    s.max_clients = (size_t)colony_config_get_int(cfg, "resp.max-clients");
    if (s.max_query_buffer < s.limits.max_bulk + 128 * 1024) {
        fprintf(stderr,
                "broker: resp.max-query-buffer (%zu) must be at least resp.max-bulk + "
                "128kb (%zu): a command of the largest bulk must fit\n",
                s.max_query_buffer, s.limits.max_bulk + 128 * 1024);
        return COLONY_EINVAL;
    }
    d->requirepass = colony__strdup(colony_config_get_string(cfg, "requirepass"));
    d->data_dir = colony__strdup(colony_config_get_string(cfg, "data-dir"));
    if (!d->requirepass || !d->data_dir) return COLONY_ENOMEM;
    int rc = open_store(d, cfg);
    if (rc) return rc;
    s.requirepass = d->requirepass;
    colony__broker_resp_init(&d->resp, colony_service_loop(d->svc), &s);
    d->resp.data_dir = d->data_dir;
    d->resp.store = d->store;
    d->resp.commit = d->commit;
    d->resp_ready = 1;
    const char *addr = colony_config_get_string(cfg, "resp-listen");
    rc = colony__broker_resp_listen(&d->resp, addr);
    if (rc) {
        fprintf(stderr, "broker: cannot listen on resp-listen %s: %s\n", addr, colony_strerror(rc));
        COLONY_LOG_ERROR("cannot listen", COLONY_LF_STR("resp-listen", addr),
                         COLONY_LF_STR("error", colony_strerror(rc)));
        return rc;
    }
    COLONY_LOG_INFO("broker: resp listening", COLONY_LF_STR("addr", addr),
                    COLONY_LF_INT("resp_port", d->resp.port));
    colony_metrics *m = colony_service_metrics(d->svc);
    if (m && (colony_metrics_gauge_fn(m, "colony_broker_resp_clients", "open RESP connections",
                                      clients_gauge, &d->resp) ||
              colony_metrics_gauge_fn(m, "colony_broker_pubsub_channels",
                                      "channels with at least one subscriber", channels_gauge,
                                      &d->resp) ||
              colony_metrics_gauge_fn(m, "colony_broker_pubsub_patterns",
                                      "distinct subscribed patterns", patterns_gauge, &d->resp) ||
              colony_metrics_gauge_fn(m, "colony_broker_resp_output_limit_disconnects",
                                      "RESP clients closed at their output limit since start",
                                      output_limit_gauge, &d->resp)))
        return COLONY_ENOMEM;
    colony__bhttp_settings hs = {
        .idem_window_ms = (uint64_t)colony_config_get_int(cfg, "api.idempotency-window"),
        .idem_max_keys = (size_t)colony_config_get_int(cfg, "api.idempotency-keys"),
        .max_wait_ms = (uint64_t)colony_config_get_int(cfg, "api.max-wait"),
        .max_batch = (size_t)colony_config_get_int(cfg, "api.max-batch"),
    };
    colony__bhttp_init(&d->api, colony_service_loop(d->svc), d->store, d->commit, &d->resp, &hs);
    d->api.engine = d->engine;
    d->api.topics = d->topics;
    d->resp.topics = d->topics; /* RESP PUBLISH reaches the bound streams */
    d->resp.delivery = d->engine;
    d->resp.on_durable = wake_polls;
    d->resp.on_durable_ud = &d->api;
    d->api_ready = 1;
    rc = colony__bhttp_routes(&d->api, colony_service_router(d->svc));
    if (!rc && m) rc = colony__bhttp_metrics(&d->api, m, colony_service_router(d->svc));
    if (rc) return rc;
    return colony_service_on_stopping(d->svc, on_stopping, d);
}

int colony_broker_main(int argc, char **argv)
{
    int code = 1;
    colony_service_options opts = {.name = "broker",
                                   .settings = broker_settings,
                                   .nsettings =
                                       sizeof(broker_settings) / sizeof(broker_settings[0]),
                                   .argc = argc,
                                   .argv = argv,
                                   .listen = "127.0.0.1:8600",
                                   /* one worker: the broker's state has one owner */
                                   .workers = 1,
                                   .usage = "colony broker"};
    colony_service *svc = colony_service_new(&opts, stderr, &code);
    if (!svc) return code;
    daemon_ctx *d = colony__calloc(1, sizeof(*d));
    if (!d) return colony_service_discard(svc, 1);
    d->svc = svc;
    /* the shutdown hook first: it releases what setup built, also half way */
    int rc = colony_service_on_shutdown(svc, on_shutdown, d);
    if (rc) {
        colony__free(d);
        return colony_service_discard(svc, 1);
    }
    rc = setup(d, colony_service_config(svc));
    if (rc) {
        COLONY_LOG_ERROR("broker: cannot start", COLONY_LF_STR("error", colony_strerror(rc)));
        return colony_service_discard(svc, rc == COLONY_EINVAL ? 2 : 1);
    }
    return colony_service_run(svc);
}
