/* A test service that registers itself with the registry (registry.url or
 * COLONY_REGISTRY_URL) and deregisters during graceful shutdown.
 *   GET /hello -> {"message":"hello"} */
#include <colony/colony.h>
#include <colony/discovery.h>

static void handle_hello(colony_request *req, void *ud)
{
    (void)ud;
    static const char body[] = "{\"message\":\"hello\"}";
    colony_respond(req, 200, "application/json", body, sizeof(body) - 1);
}

int main(int argc, char **argv)
{
    int exit_code;
    colony_service_options opts = {.name = "registered",
                                   .argc = argc,
                                   .argv = argv,
                                   .settings = colony_registry_settings,
                                   .nsettings = colony_registry_settings_count,
                                   .listen = "127.0.0.1:0"};
    colony_service *svc = colony_service_new(&opts, stderr, &exit_code);
    if (!svc) return exit_code;
    if (colony_router_add(colony_service_router(svc), "GET", "/hello", handle_hello, NULL) != 0)
        return 1;
    if (colony_service_enable_registry(svc) != 0) return 2;
    return colony_service_run(svc);
}
