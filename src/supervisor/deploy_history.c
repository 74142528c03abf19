/* The deploy history (deploy_steps.h): path/.deploys, one line per switch of
 * current ("<UTC time> deploy|revert <release> <commit> <ref>"), read back to
 * go back N deploys (revert) or to show them (list). Lines of another
 * format (PM2's: a short commit alone) are skipped. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "supervisor/deploy_steps.h"

#define HISTORY_LINES 500
#define HISTORY_BYTES (HISTORY_LINES * 400)

typedef struct deploy_line {
    char stamp[32], action[16], release[128], sha[64], ref[200];
} deploy_line;

typedef struct history {
    char current[128]; /* the release current points to, "" when none */
    char current_path[4200];
    deploy_line *lines;
    size_t n;
} history;

/* Reads current and the last lines of .deploys from host. */
static int load(const sup_deploy_env *d, const char *host, history *h)
{
    memset(h, 0, sizeof(*h));
    char *out = colony__malloc(HISTORY_BYTES);
    h->lines = colony__calloc(HISTORY_LINES, sizeof(deploy_line));
    colony_buf s;
    colony_buf_init(&s, 64 * 1024);
    int rc = !out || !h->lines ? COLONY_ENOMEM : 0;
    if (!rc) rc = colony__sup_script_begin(&s, d, host, 1);
    if (!rc)
        rc = colony__sup_script_add(
            &s,
            "step 'reading .deploys'\n"
            "[ -d \"$colony_p\" ] || { echo \"no $colony_p: run setup first\"; exit 2; }\n"
            "printf 'data current %%s\\n' \"$(readlink \"$colony_p/current\")\" >&3\n"
            "tail -n %s \"$colony_p/.deploys\" 2>/dev/null | sed 's/^/line /' >&3\n",
            "500");
    if (rc) {
        fprintf(stderr, "colony deploy: %s\n", colony_strerror(rc));
        rc = 1;
    } else {
        rc = colony__sup_session(d, host, &s, out, HISTORY_BYTES);
    }
    colony_buf_free(&s);
    if (rc) {
        colony__free(out);
        return 1;
    }
    colony__sup_session_data(out, "current", h->current_path, sizeof(h->current_path));
    const char *slash = strrchr(h->current_path, '/');
    snprintf(h->current, sizeof(h->current), "%.127s", slash ? slash + 1 : h->current_path);
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line && h->n < HISTORY_LINES;
         line = strtok_r(NULL, "\n", &save)) {
        deploy_line *l = &h->lines[h->n];
        if (strncmp(line, "line ", 5) == 0 &&
            sscanf(line + 5, "%31s %15s %127s %63s %199s", l->stamp, l->action, l->release, l->sha,
                   l->ref) == 5)
            h->n++;
    }
    colony__free(out);
    return 0;
}

int colony__sup_revert(const sup_deploy_env *d, const char *host, int n)
{
    history h;
    if (load(d, host, &h)) {
        colony__free(h.lines);
        return 1;
    }
    /* The deploys in order; current is the last deploy of its release. */
    long at = -1, count = 0;
    for (size_t i = 0; i < h.n; i++) {
        if (strcmp(h.lines[i].action, "deploy") != 0) continue;
        if (strcmp(h.lines[i].release, h.current) == 0) at = count;
        count++;
    }
    const deploy_line *target = NULL;
    for (size_t i = 0, k = 0; at >= n && i < h.n; i++) {
        if (strcmp(h.lines[i].action, "deploy") != 0) continue;
        if ((long)k++ == at - n) target = &h.lines[i];
    }
    int rc = 1;
    if (!*h.current)
        fprintf(stderr, "colony deploy: %s: nothing is deployed (no current link)\n", host);
    else if (at < 0)
        fprintf(stderr, "colony deploy: %s: current (%s) is not in %s/.deploys\n", host, h.current,
                d->path);
    else if (!target)
        fprintf(stderr, "colony deploy: %s: cannot go back %d: %ld deploy(s) before %s\n", host, n,
                at, h.current);
    else
        rc = 0;
    if (!rc) {
        char path[4500], said[600];
        snprintf(path, sizeof(path), "%s/releases/%s", d->path, target->release);
        snprintf(said, sizeof(said), "reverting %d: releases/%s (%.12s)", n, target->release,
                 target->sha);
        colony_buf s;
        colony_buf_init(&s, 2 * 1024 * 1024);
        rc = colony__sup_script_begin(&s, d, host, 1);
        if (!rc)
            rc = colony__sup_script_add(
                &s,
                "step revert %s\ncolony_target=%s; colony_n=%s; colony_sha=%s; colony_ref=%s\n"
                "[ -d \"$colony_target\" ] || { echo \"$colony_target is gone\"; exit 5; }\n",
                said, path, target->release, target->sha, target->ref);
        if (!rc) rc = colony__sup_script_switch(&s, d, "revert", 0);
        if (rc) fprintf(stderr, "colony deploy: %s\n", colony_strerror(rc));
        char out[1024];
        rc = rc ? 1 : colony__sup_session(d, host, &s, out, sizeof(out));
        colony_buf_free(&s);
    }
    if (!rc) fprintf(stderr, "--> %s: current is releases/%s\n", host, target->release);
    colony__free(h.lines);
    return rc;
}

int colony__sup_list(const sup_deploy_env *d, const char *host)
{
    history h;
    if (load(d, host, &h)) {
        colony__free(h.lines);
        return 1;
    }
    printf("%s:%s\n", host, h.n ? "" : " no deploys yet");
    if (h.n)
        printf("  %-20s  %-6s  %-30s  %-12s  %s\n", "TIME", "ACTION", "RELEASE", "COMMIT", "REF");
    /* Newest first; '*' marks the release current points to (its newest line). */
    int marked = 0;
    for (size_t i = h.n; i-- > 0;) {
        const deploy_line *l = &h.lines[i];
        int is_current = !marked && strcmp(l->release, h.current) == 0;
        marked |= is_current;
        printf("%c %-20s  %-6s  %-30s  %-12.12s  %s\n", is_current ? '*' : ' ', l->stamp, l->action,
               l->release, l->sha, l->ref);
    }
    colony__free(h.lines);
    return 0;
}
