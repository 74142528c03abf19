#include "colony/version.h"

const char *colony_version(void)
{
    return COLONY_VERSION_STRING;
}
