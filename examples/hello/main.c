/* hello: the smallest Colony service, built only on the public API.
 *   build/bin/hello --listen 127.0.0.1:8080 [--workers 2]
 *   GET /hello   -> {"message":"hello"}
 *   GET /health, /ready, /metrics come with colony_service.
 * With COLONY_REGISTRY_URL (or --registry.url) set it registers itself with
 * a TTL heartbeat and deregisters on shutdown. SIGTERM or SIGINT stop it
 * gracefully: readiness turns false, the server stops accepting, in-flight
 * requests finish, it exits 0. */
#include <colony/colony.h>

static const char hello_body[] = "{\"message\":\"hello\"}";

static void handle_hello(colony_request *req, void *ud)
{
    (void)ud;
    colony_respond(req, 200, "application/json", hello_body, sizeof(hello_body) - 1);
}

int main(int argc, char **argv)
{
    int exit_code;
    colony_service_options opts = {.name = "hello",
                                   .settings = colony_registry_settings,
                                   .nsettings = colony_registry_settings_count,
                                   .argc = argc,
                                   .argv = argv};
    colony_service *svc = colony_service_new(&opts, stderr, &exit_code);
    if (!svc) return exit_code;
    if (colony_router_add(colony_service_router(svc), "GET", "/hello", handle_hello, NULL) != 0 ||
        colony_service_enable_registry(svc) != 0)
        return 1;
    return colony_service_run(svc);
}
