/* Structured logging: one JSON object per line (ts, level, service, msg,
 * trace_id/span_id/request_id where known, then fields), or a readable line
 * when the output is a terminal. The level is checked before any argument is
 * evaluated. Thread-safe: each line is written with one write(2).
 *
 *   COLONY_LOG_INFO("listening", COLONY_LF_STR("addr", addr), COLONY_LF_INT("port", port));
 */
#ifndef COLONY_LOG_H
#define COLONY_LOG_H

#include <stddef.h>
#include <stdint.h>
#include "export.h"

typedef enum colony_log_level {
    COLONY_LOG_DEBUG = 0,
    COLONY_LOG_INFO = 1,
    COLONY_LOG_WARN = 2,
    COLONY_LOG_ERROR = 3,
    COLONY_LOG_OFF = 4,
} colony_log_level;

typedef enum colony_log_field_type {
    COLONY_LOG_FIELD_STR,
    COLONY_LOG_FIELD_INT,
    COLONY_LOG_FIELD_DOUBLE,
    COLONY_LOG_FIELD_BOOL,
} colony_log_field_type;

typedef struct colony_log_field {
    const char *key;
    colony_log_field_type type;
    union {
        const char *s; /* NULL is written as null */
        long long i;
        double d;
        int b;
    } v;
} colony_log_field;

#define COLONY_LF_STR(k, val)                                                                      \
    ((colony_log_field){.key = (k), .type = COLONY_LOG_FIELD_STR, .v.s = (val)})
#define COLONY_LF_INT(k, val)                                                                      \
    ((colony_log_field){.key = (k), .type = COLONY_LOG_FIELD_INT, .v.i = (long long)(val)})
#define COLONY_LF_DOUBLE(k, val)                                                                   \
    ((colony_log_field){.key = (k), .type = COLONY_LOG_FIELD_DOUBLE, .v.d = (double)(val)})
#define COLONY_LF_BOOL(k, val)                                                                     \
    ((colony_log_field){.key = (k), .type = COLONY_LOG_FIELD_BOOL, .v.b = !!(val)})

/* Per-thread context stamped on every line written by that thread while set:
 * the HTTP server sets it around a handler so log lines carry the request's ids. */
typedef struct colony_log_context {
    const char *trace_id;   /* 32 hex chars or NULL */
    const char *span_id;    /* 16 hex chars or NULL */
    const char *request_id; /* or NULL */
} colony_log_context;

COLONY_API void colony_log_set_level(colony_log_level level);
COLONY_API colony_log_level colony_log_get_level(void);
/* Parses "debug", "info", "warn"/"warning", "error", "off". 0 or COLONY_EINVAL. */
COLONY_API int colony_log_level_parse(const char *name, colony_log_level *out);
COLONY_API const char *colony_log_level_name(colony_log_level level);
/* Name written in the `service` field (copied). NULL clears it. */
COLONY_API void colony_log_set_service(const char *service);
/* Where lines go (default 2 = stderr) and their form: human = 1 readable,
 * 0 JSON, -1 readable only if fd is a terminal (the default). */
COLONY_API void colony_log_set_output(int fd, int human);
/* Sets this thread's context; ctx must stay valid until replaced or cleared
 * (NULL). Returns the previous one so callers can restore it. */
COLONY_API const colony_log_context *colony_log_set_context(const colony_log_context *ctx);

/* Writes a line; prefer the macros, which skip all work below the threshold. */
COLONY_API void colony_log_emit(colony_log_level level, const char *msg,
                                const colony_log_field *fields, size_t nfields);
/* Formats the line into out (without newline) as JSON; for tests and sinks.
 * Returns the length written or would-be written (snprintf semantics). */
COLONY_API size_t colony_log_format_json(char *out, size_t size, colony_log_level level,
                                         const char *msg, const colony_log_field *fields,
                                         size_t nfields);

/* 1 if a line at level would be written (level at or above the threshold).
 * One load and one compare: the macros call it before evaluating arguments. */
COLONY_API int colony_log_enabled(colony_log_level level);

#define COLONY_LOG_ENABLED(level) colony_log_enabled(level)

#define COLONY_LOG_AT(level, msg, ...)                                                             \
    do {                                                                                           \
        if (COLONY_LOG_ENABLED(level)) {                                                           \
            const colony_log_field colony_lf_[] = {{0}, ##__VA_ARGS__};                            \
            colony_log_emit((level), (msg), colony_lf_ + 1,                                        \
                            sizeof(colony_lf_) / sizeof(colony_lf_[0]) - 1);                       \
        }                                                                                          \
    } while (0)

#define COLONY_LOG_DEBUG(msg, ...) COLONY_LOG_AT(COLONY_LOG_DEBUG, msg, ##__VA_ARGS__)
#define COLONY_LOG_INFO(msg, ...)  COLONY_LOG_AT(COLONY_LOG_INFO, msg, ##__VA_ARGS__)
#define COLONY_LOG_WARN(msg, ...)  COLONY_LOG_AT(COLONY_LOG_WARN, msg, ##__VA_ARGS__)
#define COLONY_LOG_ERROR(msg, ...) COLONY_LOG_AT(COLONY_LOG_ERROR, msg, ##__VA_ARGS__)

#endif
