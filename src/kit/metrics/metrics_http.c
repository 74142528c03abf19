/* GET /metrics: the registry in the text exposition format. */
#include "colony/http_server.h"
#include "colony/metrics.h"

void colony_metrics_handle(colony_request *req, void *metrics)
{
    colony_buf out;
    colony_buf_init(&out, 64u << 20);
    if (colony_metrics_write(metrics, &out) != 0) {
        colony_buf_free(&out);
        colony_respond_error(req, 500, "internal", "cannot render metrics");
        return;
    }
    colony_respond(req, 200, COLONY_METRICS_CONTENT_TYPE, out.data, out.len);
    colony_buf_free(&out);
}
