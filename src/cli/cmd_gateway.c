/* colony gateway: runs the API gateway and load balancer. */
#include "cli/commands.h"
#include "gateway/gateway.h"

int colony_cli_gateway(int argc, char **argv)
{
    return colony_gateway_main(argc, argv);
}
