/* Fuzzes the gateway's routes file and route matcher: any input either builds
 * a config or is refused with a reason and a line within the input; a built
 * config then routes paths taken from the input without crashing, and every
 * match rewrites into a path that starts with '/'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "colony/colony.h"
#include "gateway/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *header(void *ud, const char *name)
{
    (void)name;
    return ud;
}

static void route_some_paths(gw_config *cfg, const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "HEAD", "DELETE"};
    char raw[256], path[256], out[1024];
    /* each run of printable bytes starting with '/' is tried as a path */
    for (size_t i = 0, n = 0; i < size && n < 16; i++) {
        if (data[i] != '/') continue;
        size_t len = 0;
        while (i + len < size && len + 1 < sizeof(raw) && data[i + len] > ' ' &&
               data[i + len] < 0x7f && data[i + len] != '"' && data[i + len] != '?')
            len++;
        memcpy(raw, data + i, len);
        raw[len] = '\0';
        if (colony_http_path_normalize(raw, len, path) < 0) continue;
        gw_match m;
        const char *host = n % 2 ? "api.example.com:8000" : NULL;
        if (colony__gw_match(cfg->table, cfg->nroutes, methods[n % 4], host, path, header,
                             n % 3 ? "yes" : NULL, &m)) {
            int w = colony__gw_rewrite(&m, path, out, sizeof(out));
            if (w >= 0 && out[0] != '/') abort();
        }
        n++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    colony_json_doc *doc = NULL;
    colony_config_error err;
    memset(&err, 0, sizeof(err));
    int rc = colony_json_doc_parse("fuzz.json", (const char *)data, size, &doc, &err);
    gw_config *cfg = NULL;
    if (rc == 0) rc = colony__gw_config_build(doc, &cfg, &err);
    if (rc) {
        int lines = 1;
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        if (!err.reason[0] || err.line < 0 || err.line > lines) abort();
    } else {
        route_some_paths(cfg, data, size);
        colony__gw_config_unref(cfg);
    }
    colony_json_doc_free(doc);
    return 0;
}
