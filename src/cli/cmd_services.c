/* colony services: placeholder replaced below. */
#include "cli/commands.h"
int colony_cli_services(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 1;
}
