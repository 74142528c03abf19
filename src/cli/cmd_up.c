/* colony up: runs the process supervisor in the foreground. */
#include "cli/commands.h"
#include "supervisor/supervisor.h"

int colony_cli_up(int argc, char **argv)
{
    return colony_supervisor_up_main(argc, argv);
}
