/* Building and running colony deploy's remote scripts (deploy_steps.h).
 * Every value from the file enters a script through colony__sup_script_add's
 * quoting; the script's own variables are colony_* so that an env key of the
 * file cannot clash with them. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "colony/error.h"
#include "supervisor/deploy_steps.h"

int colony__sup_script_add(colony_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = 0;
    for (const char *p = fmt; !rc && *p; p++) {
        if (p[0] == '%' && p[1] == 's') {
            rc = colony__sup_shell_quote(b, va_arg(ap, const char *));
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            rc = colony_buf_append(b, "%", 1);
            p++;
        } else {
            rc = colony_buf_append(b, p, 1);
        }
    }
    va_end(ap);
    return rc;
}

int colony__sup_script_begin(colony_buf *s, const sup_deploy_env *d, const char *host, int protocol)
{
    char shared[4200];
    snprintf(shared, sizeof(shared), "%s/shared", d->path);
    /* protocol: stdout to stderr, fd 3 (ssh's stdout) for "step" and "data". */
    int rc = colony_buf_append_str(s, protocol ? "exec 3>&1 1>&2\n" : "exec 3>/dev/null\n");
    return rc ? rc
              : colony__sup_script_add(s,
                                       "colony_host=%s; colony_p=%s\n"
                                       "SHARED=%s; export SHARED\n"
                                       "step() { printf 'step %%s\\n' \"$1\" >&3\n"
                                       "  [ -z \"$2\" ] || printf -- '--> %%s: %%s\\n' "
                                       "\"$colony_host\" \"$2\" >&2; }\n",
                                       host, d->path, shared);
}

int colony__sup_script_hook(colony_buf *s, const char *name, const char *hook, const char *dir,
                            const char *alt_dir)
{
    if (!hook) return 0;
    char said[4200];
    snprintf(said, sizeof(said), "%s: %s", name, hook);
    int rc = colony__sup_script_add(s, "step %s %s\n(\n", name, said);
    if (!rc && dir && alt_dir)
        rc = colony__sup_script_add(s, "cd %s 2>/dev/null || cd %s || exit 1\n", dir, alt_dir);
    else if (!rc && dir)
        rc = colony__sup_script_add(s, "cd %s || exit 1\n", dir);
    /* A subshell: the hook's own exit (or exit N) ends only the hook. */
    if (!rc) rc = colony_buf_append_str(s, hook);
    if (!rc) rc = colony_buf_append_str(s, "\n) || exit $?\n");
    return rc;
}

int colony__sup_script_switch(colony_buf *s, const sup_deploy_env *d, const char *action, int drop)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    int rc =
        colony__sup_script_add(s, "step switch \"current -> $colony_target\"\n"
                                  "colony_prev=$(readlink \"$colony_p/current\")\n"
                                  "colony_back() {\n"
                                  "  if [ -n \"$colony_prev\" ]; then\n"
                                  "    ln -s \"$colony_prev\" \"$colony_p/.current.$$\" &&\n"
                                  "      mv -T \"$colony_p/.current.$$\" \"$colony_p/current\"\n"
                                  "  else rm -f \"$colony_p/current\"; fi; }\n"
                                  "ln -s \"$colony_target\" \"$colony_p/.current.$$\" &&\n"
                                  "  mv -T \"$colony_p/.current.$$\" \"$colony_p/current\" ||\n"
                                  "  { rm -f \"$colony_p/.current.$$\"; exit 6; }\n");
    if (!rc && d->post_deploy) {
        char said[4200];
        snprintf(said, sizeof(said), "post-deploy: %s", d->post_deploy);
        rc = colony__sup_script_add(
            s, "step post-deploy %s\n(\ncd \"$colony_p/current\" || exit 1\n", said);
        if (!rc) rc = colony_buf_append_str(s, d->post_deploy);
        if (!rc)
            rc = colony_buf_append_str(
                s, drop ? "\n)\ncolony_s=$?\nif [ $colony_s -ne 0 ]; then\n  colony_back\n"
                          "  rm -rf \"$colony_p/releases/$colony_n\"\n"
                        : "\n)\ncolony_s=$?\nif [ $colony_s -ne 0 ]; then\n  colony_back\n");
        if (!rc)
            rc = colony_buf_append_str(s, "  printf -- '--> %s: current is back at %s\\n' "
                                          "\"$colony_host\" \"${colony_prev:-(none)}\" >&2\n"
                                          "  exit $colony_s\nfi\n");
    }
    if (!rc)
        rc = colony__sup_script_add(
            s,
            "step record\n"
            "printf '%%s %%s %%s %%s %%s\\n' %s %s \"$colony_n\" "
            "\"$colony_sha\" \"${colony_ref:-}\" >> \"$colony_p/.deploys\" || exit 1\n"
            "printf 'data release %%s\\ndata sha %%s\\n' \"$colony_n\" "
            "\"$colony_sha\" >&3\n",
            stamp, action);
    return rc;
}

/* The last non-empty line of a stderr tail that is not our own "--> "
 * progress, for the one-line error. */
static void last_line(const char *tail, char *out, size_t size)
{
    out[0] = '\0';
    const char *end = tail + strlen(tail);
    while (end > tail) {
        const char *start = end;
        while (start > tail && start[-1] != '\n')
            start--;
        size_t n = (size_t)(end - start);
        while (n && (start[n - 1] == '\n' || start[n - 1] == '\r'))
            n--;
        if (n && strncmp(start, "--> ", 4) != 0) {
            snprintf(out, size, "%.*s", (int)n, start);
            return;
        }
        end = start > tail ? start - 1 : tail;
    }
}

/* The NAME of the last "step NAME" line of out, or dflt. */
static void last_step(const char *out, const char *dflt, char *buf, size_t size)
{
    snprintf(buf, size, "%s", dflt);
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, "step ", 5) == 0)
            snprintf(buf, size, "%.*s", (int)strcspn(p + 5, "\n"), p + 5);
}

int colony__sup_session_data(const char *out, const char *key, char *buf, size_t size)
{
    size_t klen = strlen(key);
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, "data ", 5) == 0 && strncmp(p + 5, key, klen) == 0 && p[5 + klen] == ' ') {
            const char *v = p + 6 + klen;
            snprintf(buf, size, "%.*s", (int)strcspn(v, "\n"), v);
            return 0;
        }
    }
    return -1;
}

int colony__sup_session(const sup_deploy_env *d, const char *host, const colony_buf *s, char *out,
                        size_t size)
{
    char none[1] = "";
    sup_run_result res;
    int rc = colony__sup_deploy_remote(d, host, s->data ? s->data : "", out, size, &res);
    if (rc) {
        fprintf(stderr, "colony deploy: %s: cannot run ssh: %s\n", host, colony_strerror(rc));
        return 1;
    }
    if (res.status == 0) return 0;
    char line[300], step[200];
    last_line(res.tail, line, sizeof(line));
    last_step(out ? out : none, "", step, sizeof(step));
    if (res.status == 255 && !*step)
        fprintf(stderr, "colony deploy: %s: ssh failed (exit 255)%s%s\n", host, *line ? ": " : "",
                line);
    else
        fprintf(stderr, "colony deploy: %s: %s failed (exit %d)%s%s\n", host,
                *step ? step : "the remote command", res.status, *line ? ": " : "", line);
    return 1;
}
