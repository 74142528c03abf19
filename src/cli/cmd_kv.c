/* colony kv: placeholder replaced below. */
#include "cli/commands.h"
int colony_cli_kv(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 1;
}
