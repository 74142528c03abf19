/* Symbol visibility: libcolony is built with -fvisibility=hidden and only
 * functions marked COLONY_API are exported from the shared library. */
#ifndef COLONY_EXPORT_H
#define COLONY_EXPORT_H

#if defined(COLONY_BUILDING_LIBRARY)
#define COLONY_API __attribute__((visibility("default")))
#else
#define COLONY_API
#endif

#define COLONY_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

#endif
