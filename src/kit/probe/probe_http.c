/* One run of an HTTP probe: a request with the probe's method, headers and
 * body through the prober's client, the response streamed. The status code
 * decides (2xx passing, 429 warning, else critical), as in Consul; the first
 * max_output bytes of the body become the output and reading stops there, so a
 * body that never ends costs max_output bytes and is still judged by its
 * status, with the output saying it was cut. */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "kit/probe/probe_internal.h"

static colony_probe_status judge(int code)
{
    if (code >= 200 && code < 300) return COLONY_PROBE_PASSING;
    if (code == 429) return COLONY_PROBE_WARNING;
    return COLONY_PROBE_CRITICAL;
}

static int on_head(colony_client_call *call, const colony_client_response *res, void *ud)
{
    (void)call;
    probe_run *run = ud;
    run->head_seen = 1;
    run->http_status = res->status;
    return 0;
}

/* Keeps the first max_output bytes; one more byte means the body is longer,
 * and the call is cut there. */
static void on_data(colony_client_call *call, const char *data, size_t len, void *ud)
{
    probe_run *run = ud;
    size_t cap = run->probe->pr->opts.max_output;
    size_t room = cap - run->body_len;
    size_t n = len < room ? len : room;
    memcpy(run->body + run->body_len, data, n);
    run->body_len += n;
    if (n < len && !run->truncated) {
        run->truncated = 1;
        colony_client_call_cancel(call);
    }
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80             ? 1
                 : (s[0] & 0xe0) == 0xc0 ? 2
                 : (s[0] & 0xf0) == 0xe0 ? 3
                 : (s[0] & 0xf8) == 0xf0 ? 4
                                         : 0;
    if (!len || len > n || (len == 2 && s[0] < 0xc2) || (len == 4 && s[0] > 0xf4)) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (len == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0;
    if (len == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))) return 0;
    return len;
}

/* Appends up to room bytes of body as text: valid UTF-8 is copied, a NUL or
 * an invalid byte becomes '?', and a character is never split. Returns the
 * bytes written. */
static size_t append_text(char *out, size_t room, const char *body, size_t n)
{
    const unsigned char *s = (const unsigned char *)body;
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t len = s[i] ? utf8_len(s + i, n - i) : 0;
        if (w + (len ? len : 1) > room) break;
        if (len) {
            memcpy(out + w, s + i, len);
            w += len;
            i += len;
        } else {
            out[w++] = '?';
            i++;
        }
    }
    return w;
}

static void on_done(colony_client_call *call, int err, const colony_client_response *res, void *ud)
{
    (void)res;
    probe_run *run = ud;
    colony_probe *p = run->probe;
    run->call = NULL;
    if (p->closing) {
        colony__probe_run_done(run, NULL);
        return;
    }
    size_t cap = p->pr->opts.max_output;
    char *out = colony__malloc(cap + 1);
    const char *method = p->method ? p->method : "GET";
    if (!run->head_seen) {
        /* no response: refused, timed out, reset, bad answer */
        run->err = err ? err : COLONY_EPROTO;
        const char *tls = colony_client_call_tls_error(call);
        if (out && tls)
            snprintf(out, cap + 1, "HTTP %s %s: TLS failed: %s", method, p->url, tls);
        else if (out)
            snprintf(out, cap + 1, "HTTP %s %s: %s", method, p->url, colony_strerror(run->err));
        colony__probe_run_done(run, out);
        colony__free(out);
        return;
    }
    /* The head decides, even when the body was cut (by us or by an error). */
    run->run_status = judge(run->http_status);
    if (!out) {
        colony__probe_run_done(run, NULL);
        return;
    }
    char note[160] = "";
    if (run->truncated)
        snprintf(note, sizeof(note), " (response body larger than %zu bytes, cut)", cap);
    else if (err)
        snprintf(note, sizeof(note), " (body read failed: %s)", colony_strerror(err));
    int n = snprintf(out, cap + 1, "HTTP %s %s: %d Output: ", method, p->url, run->http_status);
    size_t used = n < 0 ? 0 : (size_t)n > cap ? cap : (size_t)n;
    size_t note_len = strlen(note);
    size_t room = cap > used + note_len ? cap - used - note_len : 0;
    used += append_text(out + used, room, run->body, run->body_len);
    if (note_len && used + note_len <= cap) {
        memcpy(out + used, note, note_len);
        used += note_len;
    }
    out[used] = '\0';
    colony__probe_run_done(run, out);
    colony__free(out);
}

int colony__probe_http_start(probe_run *run)
{
    colony_probe *p = run->probe;
    colony_client_request r = {.method = p->method ? p->method : "GET",
                               .url = p->url,
                               .headers = (const char *const *)p->headers,
                               .body = p->body,
                               .body_len = p->body ? strlen(p->body) : 0,
                               .head_cb = on_head,
                               .data_cb = on_data,
                               .timeout_ms = p->timeout_ms,
                               .tls_ca_file = p->tls[0],
                               .tls_server_name = p->tls[1],
                               .tls_cert_file = p->tls[2],
                               .tls_key_file = p->tls[3]};
    colony_client_call *call = NULL;
    int rc = colony_client_request_send(p->pr->client, &r, on_done, run, &call);
    if (rc) return rc;
    run->call = call;
    return 0;
}

void colony__probe_http_cancel(probe_run *run)
{
    if (run->call) colony_client_call_cancel(run->call);
}
