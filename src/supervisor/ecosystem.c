/* The ecosystem file (ecosystem.h): the document, apps[] and their
 * dependency order, errors with file, line and key. One app's keys (PM2's
 * with PM2's defaults, Colony's own) are read in ecosystem_app.c. */
#include "supervisor/ecosystem.h"
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "supervisor/deploy.h"
#include "supervisor/ecosystem_parse.h"

/* ---- the whole file ---- */

void colony__sup_ecosystem_free(sup_ecosystem *eco)
{
    if (!eco) return;
    for (size_t i = 0; i < eco->napps; i++)
        colony__sup_eco_app_free(&eco->apps[i]);
    colony__free(eco->apps);
    colony__free(eco->dir);
    memset(eco, 0, sizeof(*eco));
}

sup_app *colony__sup_ecosystem_find(const sup_ecosystem *eco, const char *name)
{
    for (size_t i = 0; i < eco->napps; i++)
        if (strcmp(eco->apps[i].name, name) == 0) return &eco->apps[i];
    return NULL;
}

static size_t index_of(const sup_app *apps, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(apps[i].name, name) == 0) return i;
    return n;
}

/* Orders apps so that each comes after what it depends on (Kahn's algorithm,
 * keeping file order among equals). A cycle is refused, naming it. */
static int order_apps(parse_ctx *c, sup_app *apps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t d = 0; d < apps[i].ndepends_on; d++) {
            char key[40];
            snprintf(key, sizeof(key), "depends_on");
            set_path(c, i, key);
            const char *dep = apps[i].depends_on[d];
            if (index_of(apps, n, dep) == n) return fail(c, "no app is named \"%s\"", dep);
            if (strcmp(dep, apps[i].name) == 0) return fail(c, "an app cannot depend on itself");
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(apps[i].name, apps[j].name) != 0) continue;
            set_path(c, i, "name");
            return fail(c, "two apps are named \"%s\"", apps[i].name);
        }
    }
    size_t *orig = colony__calloc(n, sizeof(size_t)); /* file position of each app */
    sup_app *sorted = colony__calloc(n, sizeof(sup_app));
    unsigned char *placed = colony__calloc(n, 1);
    int rc = 0;
    if (!orig || !sorted || !placed) {
        rc = nomem(c);
        goto out;
    }
    size_t done = 0;
    while (done < n) {
        size_t pick = n;
        for (size_t i = 0; i < n && pick == n; i++) {
            if (placed[i]) continue;
            size_t d = 0;
            while (d < apps[i].ndepends_on && placed[index_of(apps, n, apps[i].depends_on[d])])
                d++;
            if (d == apps[i].ndepends_on) pick = i;
        }
        if (pick == n) break;
        placed[pick] = 1;
        orig[done] = pick;
        sorted[done++] = apps[pick];
    }
    if (done < n) {
        /* Walk unplaced dependencies from the first unplaced app until one repeats. */
        size_t start = 0;
        while (placed[start])
            start++;
        size_t walk[MAX_APPS + 1] = {0}, len = 0, at = start;
        memset(placed, 0, n); /* reused as "seen on the walk" */
        while (!placed[at]) {
            placed[at] = 1;
            walk[len++] = at;
            size_t d = 0, next = n;
            for (; d < apps[at].ndepends_on; d++) {
                size_t k = index_of(apps, n, apps[at].depends_on[d]);
                int k_done = 0;
                for (size_t s = 0; s < done; s++)
                    k_done |= orig[s] == k;
                if (!k_done) {
                    next = k;
                    break;
                }
            }
            at = next;
        }
        char cycle[400] = "";
        size_t from = 0;
        while (walk[from] != at)
            from++;
        for (size_t i = from; i < len; i++) {
            size_t used = strlen(cycle);
            snprintf(cycle + used, sizeof(cycle) - used, "%s -> ", apps[walk[i]].name);
        }
        size_t used = strlen(cycle);
        snprintf(cycle + used, sizeof(cycle) - used, "%s", apps[at].name);
        set_path(c, at, "depends_on");
        rc = fail(c, "dependency cycle: %s", cycle);
        goto out;
    }
    memcpy(apps, sorted, n * sizeof(sup_app));
out:
    colony__free(orig);
    colony__free(sorted);
    colony__free(placed);
    return rc;
}

static int parse_doc(parse_ctx *c, sup_ecosystem *out)
{
    const json_t *root = colony_json_doc_root(c->doc);
    const json_t *apps = root;
    if (json_is_object(root)) {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)root, key, v)
        {
            snprintf(c->path, sizeof(c->path), "%s", key);
            if (strcmp(key, "apps") == 0) continue;
            if (strcmp(key, "deploy") == 0) { /* colony deploy's; checked here so up refuses it */
                int rc = colony__sup_deploy_check(c, v);
                if (rc) return rc;
                continue;
            }
            warn(c, "unknown key, ignored");
        }
        apps = json_object_get(root, "apps");
        snprintf(c->path, sizeof(c->path), "apps");
        if (!apps) return colony_json_doc_error(c->doc, c->err, "", "no \"apps\" array");
    }
    if (!json_is_array(apps)) return fail(c, "expected an array of apps");
    if (json_array_size(apps) == 0) return fail(c, "no apps to run");
    if (json_array_size(apps) > MAX_APPS) return fail(c, "more than %d apps", MAX_APPS);
    size_t n = json_array_size(apps);
    if (!(out->apps = colony__calloc(n, sizeof(sup_app)))) return nomem(c);
    for (size_t i = 0; i < n; i++) {
        int rc = colony__sup_eco_parse_app(c, i, json_array_get(apps, i), &out->apps[i]);
        out->napps = i + 1;
        if (rc) return rc;
    }
    return order_apps(c, out->apps, n);
}

int colony__sup_ecosystem_parse(const char *name, const char *dir, const char *text, size_t len,
                                const sup_parse_options *opts, sup_ecosystem *out,
                                colony_config_error *err)
{
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    colony_json_doc *doc;
    int rc = colony_json_doc_parse(name, text, len, &doc, err);
    if (rc) return rc;
    sup_parse_options none;
    memset(&none, 0, sizeof(none));
    parse_ctx c = {.doc = doc, .opts = opts ? opts : &none, .err = err, .dir = dir};
    if (!(out->dir = colony__strdup(dir))) rc = nomem(&c);
    if (!rc) rc = parse_doc(&c, out);
    if (rc) colony__sup_ecosystem_free(out);
    colony_json_doc_free(doc);
    return rc;
}

int colony__sup_ecosystem_load(const char *path, const sup_parse_options *opts, sup_ecosystem *out,
                               colony_config_error *err)
{
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    colony_json_doc *doc;
    int rc = colony_json_doc_load(path, &doc, err);
    if (rc) return rc;
    /* The file's folder, absolute, so children never depend on our cwd. */
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    char *resolved = NULL;
    if (slash) {
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof(tmp), "%.*s", (int)(slash - path) + (slash == path), path);
        resolved = realpath(tmp, dir);
    } else {
        resolved = getcwd(dir, sizeof(dir));
    }
    sup_parse_options none;
    memset(&none, 0, sizeof(none));
    parse_ctx c = {.doc = doc, .opts = opts ? opts : &none, .err = err, .dir = dir};
    if (!resolved) rc = colony_json_doc_error(doc, err, "", "cannot resolve its folder");
    if (!rc && !(out->dir = colony__strdup(dir))) rc = nomem(&c);
    if (!rc) rc = parse_doc(&c, out);
    if (rc) colony__sup_ecosystem_free(out);
    colony_json_doc_free(doc);
    return rc;
}
