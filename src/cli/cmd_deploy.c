/* colony deploy: PM2's `pm2 deploy` from the ecosystem file's deploy
 * section (src/supervisor/deploy_main.c). */
#include "cli/commands.h"
#include "supervisor/supervisor.h"

int colony_cli_deploy(int argc, char **argv)
{
    return colony_supervisor_deploy_main(argc, argv);
}
