/* INFO [section ...]: the broker's figures in Redis's format ("# Section",
 * key:value lines, CRLF, a blank line between sections), with the field names
 * Redis uses where the broker has the same figure, so tools that read INFO
 * (ioredis' ready check reads loading:, redis_version:) understand it. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "colony/error.h"
#include "colony/version.h"
#include "broker/commands.h"
#include "broker/store/store.h"

enum {
    S_SERVER = 1,
    S_CLIENTS = 2,
    S_MEMORY = 4,
    S_PERSISTENCE = 8,
    S_STATS = 16,
    S_REPLICATION = 32,
    S_CPU = 64,
    S_KEYSPACE = 128,
    S_BROKER = 256
};

static const struct {
    const char *name;
    unsigned bit;
} sections[] = {
    {"server", S_SERVER}, {"clients", S_CLIENTS},
    {"memory", S_MEMORY}, {"persistence", S_PERSISTENCE},
    {"stats", S_STATS},   {"replication", S_REPLICATION},
    {"cpu", S_CPU},       {"keyspace", S_KEYSPACE},
    {"broker", S_BROKER},
};

static long rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

static int section(colony_buf *b, unsigned *first, const char *title)
{
    int rc = *first ? 0 : colony_buf_append(b, "\r\n", 2);
    *first = 0;
    return rc ? rc : colony_buf_appendf(b, "# %s\r\n", title);
}

static int render(colony_buf *b, colony__broker_resp *srv, unsigned want)
{
    unsigned first = 1;
    int rc = 0;
    uint64_t up = (colony__broker_now_ms() - srv->started_ms) / 1000;
    colony__broker_stats *st = &srv->stats;
    if (want & S_SERVER) {
        struct utsname u;
        if (uname(&u)) memset(&u, 0, sizeof(u));
        rc = section(b, &first, "Server");
        if (!rc)
            rc = colony_buf_appendf(
                b,
                "redis_version:%s\r\ncolony_version:%s\r\nredis_mode:standalone\r\n"
                "os:%s %s %s\r\narch_bits:%d\r\nmultiplexing_api:libuv\r\nprocess_id:%ld\r\n"
                "tcp_port:%d\r\nuptime_in_seconds:%llu\r\nuptime_in_days:%llu\r\n",
                COLONY__BROKER_REDIS_VERSION, colony_version(), u.sysname, u.release, u.machine,
                (int)(sizeof(void *) * 8), (long)getpid(), srv->port, (unsigned long long)up,
                (unsigned long long)(up / 86400));
    }
    if (!rc && (want & S_CLIENTS)) {
        size_t pubsub_clients = 0;
        colony__list *n, *tmp;
        COLONY__LIST_FOREACH_SAFE(n, tmp, &srv->clients)
        {
            colony__broker_client *x = COLONY__CONTAINER_OF(n, colony__broker_client, link);
            if (colony__broker_subs_count(&x->subs)) pubsub_clients++;
        }
        rc = section(b, &first, "Clients");
        if (!rc)
            rc = colony_buf_appendf(b,
                                    "connected_clients:%zu\r\nmaxclients:%zu\r\n"
                                    "blocked_clients:0\r\npubsub_clients:%zu\r\n",
                                    srv->nclients, srv->settings.max_clients, pubsub_clients);
    }
    if (!rc && (want & S_MEMORY)) {
        rc = section(b, &first, "Memory");
        if (!rc)
            rc = colony_buf_appendf(b,
                                    "used_memory_rss:%ld\r\n"
                                    "client_output_limit:%zu\r\nclient_pubsub_output_limit:%zu\r\n",
                                    rss_bytes(), srv->settings.output_limit,
                                    srv->settings.pubsub_limit);
    }
    if (!rc && (want & S_PERSISTENCE)) {
        rc = section(b, &first, "Persistence");
        if (!rc) rc = colony_buf_appendf(b, "loading:0\r\n");
    }
    if (!rc && (want & S_STATS)) {
        rc = section(b, &first, "Stats");
        if (!rc)
            rc = colony_buf_appendf(
                b,
                "total_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
                "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\n"
                "rejected_connections:%llu\r\nclient_output_buffer_limit_disconnections:%llu\r\n"
                "client_query_buffer_limit_disconnections:%llu\r\n"
                "total_error_replies_protocol:%llu\r\npubsub_channels:%zu\r\npubsub_patterns:%"
                "zu\r\n"
                "total_published_messages:%llu\r\n",
                (unsigned long long)st->connections_received,
                (unsigned long long)st->commands_processed, (unsigned long long)st->bytes_in,
                (unsigned long long)st->bytes_out, (unsigned long long)st->connections_rejected,
                (unsigned long long)st->output_limit_disconnects,
                (unsigned long long)st->query_limit_disconnects,
                (unsigned long long)st->protocol_errors, srv->pubsub.channels.count,
                srv->pubsub.patterns.count, (unsigned long long)st->pubsub_messages);
    }
    if (!rc && (want & S_REPLICATION)) {
        rc = section(b, &first, "Replication");
        if (!rc) rc = colony_buf_appendf(b, "role:master\r\nconnected_slaves:0\r\n");
    }
    if (!rc && (want & S_CPU)) {
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru)) memset(&ru, 0, sizeof(ru));
        rc = section(b, &first, "CPU");
        if (!rc)
            rc = colony_buf_appendf(b, "used_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n",
                                    (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec,
                                    (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
    }
    size_t streams = 0;
    for (size_t pos = 0; srv->store && colony__bstore_next(srv->store, &pos);)
        streams++;
    if (!rc && (want & S_KEYSPACE)) {
        rc = section(b, &first, "Keyspace");
        if (!rc && streams) /* Redis lists db0 once it has keys */
            rc = colony_buf_appendf(b, "db0:keys=%zu,expires=0,avg_ttl=0\r\n", streams);
    }
    if (!rc && (want & S_BROKER)) {
        rc = section(b, &first, "Broker");
        if (!rc)
            rc = colony_buf_appendf(b,
                                    "data_dir:%s\r\nresp_max_bulk:%zu\r\nresp_max_args:%zu\r\n"
                                    "resp_max_query_buffer:%zu\r\nstreams:%zu\r\n",
                                    srv->data_dir ? srv->data_dir : "",
                                    srv->settings.limits.max_bulk, srv->settings.limits.max_args,
                                    srv->settings.max_query_buffer, streams);
    }
    return rc;
}

int colony__cmd_info(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    unsigned want = 0;
    const unsigned all = S_SERVER | S_CLIENTS | S_MEMORY | S_PERSISTENCE | S_STATS | S_REPLICATION |
                         S_CPU | S_KEYSPACE | S_BROKER;
    if (argc == 1) want = all;
    for (size_t i = 1; i < argc; i++) {
        if (colony__broker_arg_is(&argv[i], "default") || colony__broker_arg_is(&argv[i], "all") ||
            colony__broker_arg_is(&argv[i], "everything"))
            want |= all;
        for (size_t k = 0; k < sizeof(sections) / sizeof(sections[0]); k++)
            if (colony__broker_arg_is(&argv[i], sections[k].name)) want |= sections[k].bit;
    }
    colony_buf b;
    colony_buf_init(&b, 64 * 1024);
    int rc = render(&b, c->srv, want);
    if (!rc) rc = colony__resp_bulk(&c->out, b.data ? b.data : "", b.len);
    colony_buf_free(&b);
    return rc;
}
