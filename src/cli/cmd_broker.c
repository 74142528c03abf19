/* colony broker: runs the message broker (Redis protocol and HTTP). */
#include "cli/commands.h"
#include "broker/broker.h"

int colony_cli_broker(int argc, char **argv)
{
    return colony_broker_main(argc, argv);
}
