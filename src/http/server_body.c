/* Flow control of a request body: a handler (or head hook) pauses reading
 * the body while it cannot take more, and resumes it later; 100 Continue for
 * a body paused from the head hook waits for the first resume. The reading
 * itself and the timers follow in server_conn.c (update_reading,
 * colony__conn_update_timer). */
#include "colony/error.h"
#include "http/server_internal.h"

/* The connection still reading req's body, or NULL. */
static colony__conn *body_conn(const colony_request *req)
{
    colony__conn *c = req->conn;
    if (!c || c->closing || c->req != req || req->ended) return NULL;
    return c;
}

int colony_request_pause_body(colony_request *req)
{
    colony__conn *c = req ? body_conn(req) : NULL;
    if (!c || !c->body_pending) return COLONY_EINVAL;
    req->held = 1;
    if (c->body_paused) return 0;
    c->body_paused = 1;
    colony__conn_body_flow(c);
    return 0;
}

int colony_request_resume_body(colony_request *req)
{
    colony__conn *c = req ? body_conn(req) : NULL;
    if (!c) return COLONY_EINVAL;
    if (!c->body_paused) return 0;
    c->body_paused = 0;
    if (c->continue_pending) {
        c->continue_pending = 0;
        /* Not once a response has started: it is the answer, not "go on". */
        if (!req->started && colony__conn_send_continue(c)) {
            colony__conn_close(c, COLONY_ENOMEM);
            return COLONY_ENOMEM;
        }
    }
    colony__conn_body_flow(c);
    return 0;
}

int colony_request_body_paused(const colony_request *req)
{
    const colony__conn *c = req ? body_conn(req) : NULL;
    return c && c->body_paused;
}
