/* Hashing and consistent hashing for the balancer.
 *
 * Consistent hashing uses a ring with virtual nodes (Karger; Envoy's ring_hash,
 * nginx's `hash ... consistent`) rather than Maglev: when an endpoint leaves,
 * exactly the keys that were on it move and no other key does, and a new
 * endpoint takes keys only for itself. Maglev gives O(1) lookups and a more
 * even spread but moves a few unrelated keys on every change; with lookups
 * here being a binary search over at most a few hundred thousand points, the
 * ring's stronger stability is the better trade for session affinity. */
#include "kit/balance/balance_internal.h"
#include <stdlib.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "core/hash.h"

/* Ring size cap (16 bytes a point: 4 MiB). Above it points are scaled down
 * uniformly and keys may move a little more than 1/n on a change. */
#define RING_MAX_POINTS (1u << 18)

/* FNV-1a 64 is simple but mixes its last bytes poorly; the murmur3 finalizer
 * after it spreads every input bit over the whole word. */
uint64_t colony__hash64(const void *data, size_t len)
{
    return colony__hash_mix64(colony__fnv1a(COLONY_FNV1A_OFFSET, data, len) ^ len);
}

/* murmur3's fmix64: a bijection with full avalanche. */
uint64_t colony__hash_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    x ^= x >> 33;
    return x;
}

/* Ties (a 64-bit collision) are ordered by id so the ring does not depend on
 * the order endpoints were given in. */
static int compare_points(const void *a, const void *b)
{
    const colony__ring_point *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return strcmp(x->ep->id, y->ep->id);
}

/* Point positions depend only on the endpoint id and its point index, so an
 * endpoint's points stay put whatever else joins or leaves the set. */
int colony__ring_build(colony__ring *out, colony_endpoint *const *endpoints, size_t n,
                       uint32_t per_weight)
{
    uint64_t wanted = 0;
    for (size_t i = 0; i < n; i++)
        wanted += (uint64_t)endpoints[i]->weight * per_weight;
    uint64_t len = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t points = (uint64_t)endpoints[i]->weight * per_weight;
        if (wanted > RING_MAX_POINTS) points = points * RING_MAX_POINTS / wanted;
        len += points ? points : 1;
    }
    colony__ring_point *ring = len ? colony__malloc((size_t)len * sizeof *ring) : NULL;
    if (len && !ring) return COLONY_ENOMEM;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        colony_endpoint *ep = endpoints[i];
        uint64_t points = (uint64_t)ep->weight * per_weight;
        if (wanted > RING_MAX_POINTS) points = points * RING_MAX_POINTS / wanted;
        if (!points) points = 1;
        uint64_t base = colony__hash64(ep->id, strlen(ep->id));
        for (uint64_t k = 0; k < points; k++) {
            ring[at].hash = colony__hash_mix64(base + (k + 1) * 0x9E3779B97F4A7C15ull);
            ring[at].ep = ep;
            at++;
        }
    }
    if (len) qsort(ring, (size_t)len, sizeof *ring, compare_points);
    out->points = ring;
    out->len = (size_t)len;
    return 0;
}

void colony__ring_free(colony__ring *ring)
{
    colony__free(ring->points);
    ring->points = NULL;
    ring->len = 0;
}

/* Binary search for the first point at or after key_hash (wrapping), then
 * walk clockwise past ejected endpoints: their keys spread over the next
 * points, everyone else's stay. */
colony_endpoint *colony__ring_lookup(const colony__ring *ring, uint64_t key_hash)
{
    if (ring->len == 0) return NULL;
    size_t lo = 0, hi = ring->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ring->points[mid].hash < key_hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t step = 0; step < ring->len; step++) {
        colony_endpoint *ep = ring->points[(lo + step) % ring->len].ep;
        if (!colony__endpoint_out(ep)) return ep;
    }
    return NULL;
}
