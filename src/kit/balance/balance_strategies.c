/* Per-pick strategies. Each runs after ejections were refreshed, with at least
 * one endpoint available, and skips ejected and down endpoints. Scans are O(n) per pick:
 * sets are tens to hundreds of endpoints, and a scan keeps every strategy
 * exact under set updates without side structures to keep in sync. */
#include "kit/balance/balance_internal.h"

/* splitmix64: tiny, fast, passes BigCrush; enough for load spreading. */
static uint64_t next_random(colony_balancer *b)
{
    if (b->random_cb) return b->random_cb(b->random_ctx);
    uint64_t z = (b->rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Lemire's multiply-shift: unbiased enough and uses the high bits. */
uint64_t colony__balance_random_below(colony_balancer *b, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)next_random(b) * n) >> 64);
}

/* Plain rotation over the set; the cursor survives set updates (modulo). */
colony_endpoint *colony__balance_round_robin(colony_balancer *b)
{
    for (size_t step = 0; step < b->count; step++) {
        size_t i = b->rr_cursor % b->count;
        b->rr_cursor = i + 1;
        if (!colony__endpoint_out(b->endpoints[i])) return b->endpoints[i];
    }
    return NULL;
}

/* nginx's smooth weighted round robin: every available endpoint gains its
 * weight, the highest current weight wins (first in set order on ties) and
 * pays back the total. Over sum(weights) picks each endpoint is picked exactly
 * weight times, interleaved ({5,1,1}: a a b a c a a). */
colony_endpoint *colony__balance_smooth_wrr(colony_balancer *b)
{
    colony_endpoint *best = NULL;
    int64_t total = 0;
    for (size_t i = 0; i < b->count; i++) {
        colony_endpoint *ep = b->endpoints[i];
        if (colony__endpoint_out(ep)) continue;
        ep->current_weight += ep->weight;
        total += ep->weight;
        if (!best || ep->current_weight > best->current_weight) best = ep;
    }
    if (best) best->current_weight -= total;
    return best;
}

/* a is less loaded than c: (active + 1) / weight, compared without division.
 * The +1 counts the request being placed, so weights matter even when idle. */
static int less_loaded(const colony_endpoint *a, const colony_endpoint *c)
{
    return (a->active + 1) * (uint64_t)c->weight < (c->active + 1) * (uint64_t)a->weight;
}

/* Weighted least connections. The scan starts one further each pick and keeps
 * the first minimum, so ties go round robin. */
colony_endpoint *colony__balance_least_conn(colony_balancer *b)
{
    size_t start = b->rr_cursor % b->count;
    b->rr_cursor = start + 1;
    colony_endpoint *best = NULL;
    for (size_t step = 0; step < b->count; step++) {
        colony_endpoint *ep = b->endpoints[(start + step) % b->count];
        if (colony__endpoint_out(ep)) continue;
        if (!best || less_loaded(ep, best)) best = ep;
    }
    return best;
}

/* Weighted draw among available endpoints other than `exclude`. */
static colony_endpoint *weighted_draw(colony_balancer *b, const colony_endpoint *exclude)
{
    uint64_t total = 0;
    for (size_t i = 0; i < b->count; i++) {
        const colony_endpoint *ep = b->endpoints[i];
        if (!colony__endpoint_out(ep) && ep != exclude) total += ep->weight;
    }
    if (total == 0) return NULL;
    uint64_t r = colony__balance_random_below(b, total);
    for (size_t i = 0; i < b->count; i++) {
        colony_endpoint *ep = b->endpoints[i];
        if (colony__endpoint_out(ep) || ep == exclude) continue;
        if (r < ep->weight) return ep;
        r -= ep->weight;
    }
    return NULL;
}

colony_endpoint *colony__balance_random(colony_balancer *b)
{
    return weighted_draw(b, NULL);
}

/* Power of two choices (Envoy's least request): two distinct endpoints drawn
 * by weight, the less loaded by (active + 1) / weight wins, the first drawn on
 * a tie. With one endpoint available it is the answer. */
colony_endpoint *colony__balance_p2c(colony_balancer *b)
{
    colony_endpoint *first = weighted_draw(b, NULL);
    colony_endpoint *second = first ? weighted_draw(b, first) : NULL;
    if (!second) return first;
    return less_loaded(second, first) ? second : first;
}

/* Maps a hash to an endpoint by weight over the whole set, ejected included,
 * so a key keeps its endpoint while the set and weights stay the same. */
static size_t endpoint_for_hash(const colony_balancer *b, uint64_t hash, uint64_t total_weight)
{
    uint64_t r = (uint64_t)(((unsigned __int128)hash * total_weight) >> 64);
    for (size_t i = 0; i < b->count; i++) {
        if (r < b->endpoints[i]->weight) return i;
        r -= b->endpoints[i]->weight;
    }
    return b->count - 1;
}

/* IP hash in nginx's manner: if the key's endpoint is ejected, rehash up to
 * 20 times, then take the next available one in set order. Only keys of the
 * ejected endpoint move meanwhile. */
colony_endpoint *colony__balance_ip_hash(colony_balancer *b, uint64_t key_hash)
{
    uint64_t total = 0;
    for (size_t i = 0; i < b->count; i++)
        total += b->endpoints[i]->weight;
    uint64_t hash = key_hash;
    size_t i = endpoint_for_hash(b, hash, total);
    for (uint64_t attempt = 1; colony__endpoint_out(b->endpoints[i]) && attempt <= 20; attempt++) {
        hash = colony__hash_mix64(hash + attempt);
        i = endpoint_for_hash(b, hash, total);
    }
    for (size_t step = 0; step < b->count; step++) {
        colony_endpoint *ep = b->endpoints[(i + step) % b->count];
        if (!colony__endpoint_out(ep)) return ep;
    }
    return NULL;
}
