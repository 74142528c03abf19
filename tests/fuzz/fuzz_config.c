/* Fuzzes a JSON config layer: any input either loads, or fails with a
 * nonempty reason and a line within the input (0 only when the error has no
 * line). A loaded value's canonical text must parse back to the same value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "colony/colony.h"
#include "core/alloc.h"
#include "core/config_internal.h"

static const colony_config_setting table[] = {
    {"http.port", COLONY_CONFIG_INT, "8080", 0, "port", 1, 65535},
    {"http.host", COLONY_CONFIG_STRING, "127.0.0.1", 0, "host", 0, 0},
    {"http.max_body_bytes", COLONY_CONFIG_SIZE, "1mb", 1, "body limit", 0, 0},
    {"http.timeout", COLONY_CONFIG_DURATION, "5s", 1, "timeout", 0, 0},
    {"http.tls.enabled", COLONY_CONFIG_BOOL, "false", 0, "tls", 0, 0},
    {"ratio", COLONY_CONFIG_DOUBLE, "0.5", 1, "ratio", 0, 1},
    {"name", COLONY_CONFIG_STRING, NULL, 1, "name", 0, 0},
    {"limit", COLONY_CONFIG_INT, "0", 1, "limit", 0, 0},
};
#define TABLE_N (sizeof table / sizeof table[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_lines(const uint8_t *data, size_t size)
{
    int lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static colony_config *cfg;
    if (!cfg) cfg = colony_config_new(table, TABLE_N);
    if (!cfg) abort();
    colony_config_error err;
    memset(&err, 0, sizeof err);
    int rc = colony__config_load_buffer(cfg, "fuzz.json", (const char *)data, size, &err);
    if (rc == 0) {
        for (size_t i = 0; i < TABLE_N; i++) {
            const colony__config_value *v = &cfg->values[i];
            colony__config_value again = {0};
            char reason[256];
            if (v->text == NULL && table[i].type != COLONY_CONFIG_STRING) abort();
            if (colony__config_value_from_text(&table[i], v->text, &again, reason, sizeof reason) !=
                0)
                abort();
            if ((again.text == NULL) != (v->text == NULL)) abort();
            if (v->text && strcmp(again.text, v->text) != 0) abort();
            if (again.i != v->i || again.d != v->d) abort();
            colony__free(again.text);
        }
        return 0;
    }
    if (rc != COLONY_EINVAL || err.reason[0] == '\0') abort();
    if (err.line < 0 || err.line > count_lines(data, size)) abort();
    /* Errors about a value name its key and the line where the key is. */
    if (err.key[0] && err.line == 0) abort();
    return 0;
}
