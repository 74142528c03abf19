/* Entry point of the `colony registry` daemon, called by the CLI. */
#ifndef COLONY_REGISTRY_REGISTRY_H
#define COLONY_REGISTRY_REGISTRY_H

/* Runs the registry with argv (argv[0] = "registry"); returns the exit code. */
int colony_registry_main(int argc, char **argv);

#endif
