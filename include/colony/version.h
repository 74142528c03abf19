/* The library's version. */
#ifndef COLONY_VERSION_H
#define COLONY_VERSION_H

#include "export.h"

/* The version libcolony was built as, e.g. "0.1.0" (a static string). */
COLONY_API const char *colony_version(void);

#endif
