/* colony registry: runs the Consul-compatible service registry and KV store. */
#include "cli/commands.h"
#include "registry/registry.h"

int colony_cli_registry(int argc, char **argv)
{
    return colony_registry_main(argc, argv);
}
