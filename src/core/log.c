/* JSON-lines logger. Each line is formatted into a stack buffer and written
 * with one write(2), so lines from several threads never interleave. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>
#include "colony/error.h"
#include "colony/log.h"
#include "core/json_write.h"

#define LOG_LINE_MAX 8192

/* Written by colony_log_set_level, read on every log call from any thread:
 * relaxed atomics, since a thread may see a new level a little late. */
static atomic_int threshold = COLONY_LOG_INFO;

static char service_name[128];
static int out_fd = 2;
static int out_human = -1;
static _Thread_local const colony_log_context *thread_ctx;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void colony_log_set_level(colony_log_level level)
{
    atomic_store_explicit(&threshold, (int)level, memory_order_relaxed);
}

int colony_log_enabled(colony_log_level level)
{
    return (int)level >= atomic_load_explicit(&threshold, memory_order_relaxed);
}

colony_log_level colony_log_get_level(void)
{
    return (colony_log_level)atomic_load_explicit(&threshold, memory_order_relaxed);
}

const char *colony_log_level_name(colony_log_level level)
{
    return (unsigned)level <= COLONY_LOG_OFF ? level_names[level] : "unknown";
}

int colony_log_level_parse(const char *name, colony_log_level *out)
{
    if (!name) return COLONY_EINVAL;
    for (int i = 0; i <= COLONY_LOG_OFF; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (colony_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = COLONY_LOG_WARN;
        return 0;
    }
    return COLONY_EINVAL;
}

void colony_log_set_service(const char *service)
{
    snprintf(service_name, sizeof(service_name), "%s", service ? service : "");
}

void colony_log_set_output(int fd, int human)
{
    out_fd = fd;
    out_human = human;
}

const colony_log_context *colony_log_set_context(const colony_log_context *ctx)
{
    const colony_log_context *prev = thread_ctx;
    thread_ctx = ctx;
    return prev;
}

/* Bounded writer: tracks the would-be length like snprintf. */
typedef struct line {
    char *p;
    size_t size, len;
} line;

static void put(line *l, const char *s, size_t n)
{
    if (l->len < l->size) {
        size_t room = l->size - l->len;
        memcpy(l->p + l->len, s, n < room ? n : room);
    }
    l->len += n;
}

static void puts_(line *l, const char *s)
{
    put(l, s, strlen(s));
}

static void putf(line *l, const char *fmt, ...) COLONY_PRINTF(2, 3);
static void putf(line *l, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) put(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* JSON string escaping (RFC 8259): quotes, backslash, control characters. */
static void put_json_string(line *l, const char *s)
{
    if (!s) {
        puts_(l, "null");
        return;
    }
    put(l, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(l, run, (size_t)(s - run));
        char esc[6];
        put(l, esc, colony__json_escape(c, esc));
        run = s + 1;
    }
    put(l, run, (size_t)(s - run));
    put(l, "\"", 1);
}

static void put_timestamp(line *l)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(tv.tv_usec / 1000));
    puts_(l, ts);
}

static void put_field_value(line *l, const colony_log_field *f, int json)
{
    switch (f->type) {
    case COLONY_LOG_FIELD_STR:
        if (json)
            put_json_string(l, f->v.s);
        else
            puts_(l, f->v.s ? f->v.s : "null");
        break;
    case COLONY_LOG_FIELD_INT:
        putf(l, "%lld", f->v.i);
        break;
    case COLONY_LOG_FIELD_DOUBLE:
        putf(l, "%.17g", f->v.d);
        break;
    case COLONY_LOG_FIELD_BOOL:
        puts_(l, f->v.b ? "true" : "false");
        break;
    }
}

size_t colony_log_format_json(char *out, size_t size, colony_log_level level, const char *msg,
                              const colony_log_field *fields, size_t nfields)
{
    line l = {out, size, 0};
    puts_(&l, "{\"ts\":\"");
    put_timestamp(&l);
    puts_(&l, "\",\"level\":\"");
    puts_(&l, colony_log_level_name(level));
    puts_(&l, "\"");
    if (service_name[0]) {
        puts_(&l, ",\"service\":");
        put_json_string(&l, service_name);
    }
    puts_(&l, ",\"msg\":");
    put_json_string(&l, msg ? msg : "");
    const colony_log_context *ctx = thread_ctx;
    if (ctx && ctx->trace_id) {
        puts_(&l, ",\"trace_id\":");
        put_json_string(&l, ctx->trace_id);
    }
    if (ctx && ctx->span_id) {
        puts_(&l, ",\"span_id\":");
        put_json_string(&l, ctx->span_id);
    }
    if (ctx && ctx->request_id) {
        puts_(&l, ",\"request_id\":");
        put_json_string(&l, ctx->request_id);
    }
    for (size_t i = 0; i < nfields; i++) {
        put(&l, ",", 1);
        put_json_string(&l, fields[i].key ? fields[i].key : "");
        put(&l, ":", 1);
        put_field_value(&l, &fields[i], 1);
    }
    put(&l, "}", 1);
    if (size) out[l.len < size ? l.len : size - 1] = '\0';
    return l.len;
}

static size_t format_human(char *out, size_t size, colony_log_level level, const char *msg,
                           const colony_log_field *fields, size_t nfields)
{
    line l = {out, size, 0};
    put_timestamp(&l);
    putf(&l, " %-5s ", colony_log_level_name(level));
    if (service_name[0]) {
        puts_(&l, "[");
        puts_(&l, service_name);
        puts_(&l, "] ");
    }
    puts_(&l, msg ? msg : "");
    const colony_log_context *ctx = thread_ctx;
    if (ctx && ctx->trace_id) {
        puts_(&l, " trace_id=");
        puts_(&l, ctx->trace_id);
    }
    for (size_t i = 0; i < nfields; i++) {
        put(&l, " ", 1);
        puts_(&l, fields[i].key ? fields[i].key : "");
        put(&l, "=", 1);
        put_field_value(&l, &fields[i], 0);
    }
    if (size) out[l.len < size ? l.len : size - 1] = '\0';
    return l.len;
}

void colony_log_emit(colony_log_level level, const char *msg, const colony_log_field *fields,
                     size_t nfields)
{
    if (!COLONY_LOG_ENABLED(level) || level >= COLONY_LOG_OFF) return;
    char buf[LOG_LINE_MAX];
    int human = out_human < 0 ? isatty(out_fd) : out_human;
    size_t n = human ? format_human(buf, sizeof(buf) - 1, level, msg, fields, nfields)
                     : colony_log_format_json(buf, sizeof(buf) - 1, level, msg, fields, nfields);
    if (n >= sizeof(buf) - 1) {
        /* Over-long line: keep it valid JSON by dropping the fields. */
        colony_log_field note = COLONY_LF_BOOL("truncated", 1);
        n = human
                ? format_human(buf, sizeof(buf) - 1, level, "(line too long)", &note, 1)
                : colony_log_format_json(buf, sizeof(buf) - 1, level, "(line too long)", &note, 1);
        if (n >= sizeof(buf) - 1) n = sizeof(buf) - 2;
    }
    buf[n++] = '\n';
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(out_fd, buf + off, n - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
}
