/* Balancer: the endpoint set and its atomic replacement, request accounting,
 * and passive health (outlier ejection). Strategies live in
 * balance_strategies.c, hashing and the ring in balance_hash.c. */
#include "kit/balance/balance_internal.h"
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "colony/error.h"
#include "core/alloc.h"

/* Envoy's outlier detection defaults. */
#define DEFAULT_EJECT_AFTER          5
#define DEFAULT_BASE_EJECTION_MS     30000
#define DEFAULT_MAX_EJECTION_MS      300000
#define DEFAULT_MAX_EJECTION_PERCENT 10
#define DEFAULT_DECAY_INTERVAL_MS    10000
#define DEFAULT_RING_POINTS          160
#define MAX_RING_POINTS              1000

int colony_balancer_new(colony_balance_strategy strategy, colony_balancer **out)
{
    if (!out) return COLONY_EINVAL;
    *out = NULL;
    if ((unsigned)strategy > (unsigned)COLONY_BALANCE_RING_HASH) return COLONY_EINVAL;
    colony_balancer *b = colony__calloc(1, sizeof *b);
    if (!b) return COLONY_ENOMEM;
    b->strategy = strategy;
    b->eject_after = DEFAULT_EJECT_AFTER;
    b->base_ejection_ms = DEFAULT_BASE_EJECTION_MS;
    b->max_ejection_ms = DEFAULT_MAX_EJECTION_MS;
    b->max_ejection_percent = DEFAULT_MAX_EJECTION_PERCENT;
    b->decay_interval_ms = DEFAULT_DECAY_INTERVAL_MS;
    b->ring_points_per_weight = DEFAULT_RING_POINTS;
    /* Different processes should not pick in lockstep: seed from time and address. */
    b->rng_state = colony__hash_mix64(uv_hrtime() ^ (uint64_t)(uintptr_t)b);
    *out = b;
    return 0;
}

static void endpoint_unref(colony_endpoint *ep)
{
    if (--ep->refs == 0) colony__free(ep);
}

/* Takes ep out of its balancer's set: never picked again, freed once the
 * requests in flight on it are released. */
static void endpoint_detach(colony_endpoint *ep)
{
    ep->owner = NULL;
    ep->ejected = 0;
    ep->down = 0;
    endpoint_unref(ep);
}

void colony_balancer_free(colony_balancer *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->count; i++)
        endpoint_detach(b->endpoints[i]);
    colony__free(b->endpoints);
    colony__ring_free(&b->ring);
    colony__free(b);
}

static uint32_t spec_weight(const colony_endpoint_spec *spec)
{
    return spec->weight ? spec->weight : 1;
}

/* One allocation holds the endpoint and copies of its id and address. The
 * endpoint is not in a set yet (owner NULL) and holds the set's reference. */
static colony_endpoint *endpoint_new(const colony_endpoint_spec *spec)
{
    size_t id_len = strlen(spec->id), addr_len = strlen(spec->address);
    colony_endpoint *ep = colony__calloc(1, sizeof *ep + id_len + 1 + addr_len + 1);
    if (!ep) return NULL;
    char *id = (char *)(ep + 1);
    char *address = id + id_len + 1;
    memcpy(id, spec->id, id_len + 1);
    memcpy(address, spec->address, addr_len + 1);
    ep->id = id;
    ep->address = address;
    ep->refs = 1;
    ep->weight = spec_weight(spec);
    ep->user = spec->user;
    return ep;
}

static int compare_spec_ids(const void *a, const void *b)
{
    const colony_endpoint_spec *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

static int compare_endpoint_ids(const void *a, const void *b)
{
    const colony_endpoint *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

static int compare_id_to_endpoint(const void *key, const void *elem)
{
    const colony_endpoint *const *ep = elem;
    return strcmp(key, (*ep)->id);
}

/* Rejects NULL or empty strings, weights over the cap and duplicate ids,
 * before anything in the balancer changes. */
static int validate_specs(const colony_endpoint_spec *specs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const colony_endpoint_spec *s = &specs[i];
        if (!s->id || !s->id[0] || !s->address || !s->address[0]) return COLONY_EINVAL;
        if (s->weight > COLONY_BALANCE_MAX_WEIGHT) return COLONY_EINVAL;
    }
    if (n < 2) return 0;
    const colony_endpoint_spec **by_id = colony__malloc(n * sizeof *by_id);
    if (!by_id) return COLONY_ENOMEM;
    for (size_t i = 0; i < n; i++)
        by_id[i] = &specs[i];
    qsort(by_id, n, sizeof *by_id, compare_spec_ids);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (strcmp(by_id[i - 1]->id, by_id[i]->id) == 0) rc = COLONY_EINVAL;
    colony__free(by_id);
    return rc;
}

/* Recounts ejections after the set changed (removed endpoints drop out). */
static void recount_ejections(colony_balancer *b)
{
    b->ejected_count = 0;
    b->down_count = 0;
    b->next_return_ms = UINT64_MAX;
    for (size_t i = 0; i < b->count; i++) {
        const colony_endpoint *ep = b->endpoints[i];
        b->down_count += ep->down != 0;
        if (!ep->ejected) continue;
        b->ejected_count++;
        if (ep->ejected_until_ms < b->next_return_ms) b->next_return_ms = ep->ejected_until_ms;
    }
}

/* Builds the whole next state (endpoint array, new endpoints, ring) before
 * touching the current one, so a failure leaves the balancer as it was. */
int colony_balancer_set_endpoints(colony_balancer *b, const colony_endpoint_spec *specs, size_t n)
{
    if (!b || (n && !specs)) return COLONY_EINVAL;
    if (n > SIZE_MAX / sizeof(colony_endpoint *) / 2) return COLONY_E2BIG;
    int rc = validate_specs(specs, n);
    if (rc) return rc;

    colony_endpoint **old_by_id = NULL;
    if (b->count) {
        old_by_id = colony__malloc(b->count * sizeof *old_by_id);
        if (!old_by_id) return COLONY_ENOMEM;
        memcpy(old_by_id, b->endpoints, b->count * sizeof *old_by_id);
        qsort(old_by_id, b->count, sizeof *old_by_id, compare_endpoint_ids);
    }
    colony_endpoint **next = n ? colony__calloc(n, sizeof *next) : NULL;
    colony__ring ring = {0};
    if (n && !next) goto nomem;
    for (size_t i = 0; i < n; i++) {
        colony_endpoint **found = old_by_id ? bsearch(specs[i].id, old_by_id, b->count,
                                                      sizeof *old_by_id, compare_id_to_endpoint)
                                            : NULL;
        if (found && strcmp((*found)->address, specs[i].address) == 0) {
            next[i] = *found;
        } else if (!(next[i] = endpoint_new(&specs[i]))) {
            goto nomem;
        }
    }
    if (b->strategy == COLONY_BALANCE_RING_HASH && n) {
        /* The ring reads endpoint weights: stage the new ones and put the
         * current ones back right after, so a failure changes nothing. */
        uint32_t *old_weights = colony__malloc(n * sizeof *old_weights);
        if (!old_weights) goto nomem;
        for (size_t i = 0; i < n; i++) {
            old_weights[i] = next[i]->weight;
            next[i]->weight = spec_weight(&specs[i]);
        }
        rc = colony__ring_build(&ring, next, n, b->ring_points_per_weight);
        for (size_t i = 0; i < n; i++)
            next[i]->weight = old_weights[i];
        colony__free(old_weights);
        if (rc) goto nomem;
    }

    /* Commit: nothing below can fail. */
    for (size_t i = 0; i < b->count; i++)
        b->endpoints[i]->owner = NULL; /* provisional: survivors are re-marked below */
    for (size_t i = 0; i < n; i++) {
        next[i]->owner = b;
        next[i]->weight = spec_weight(&specs[i]);
        next[i]->user = specs[i].user;
    }
    for (size_t i = 0; i < b->count; i++)
        if (!b->endpoints[i]->owner) endpoint_detach(b->endpoints[i]);
    colony__free(b->endpoints);
    colony__ring_free(&b->ring);
    b->endpoints = next;
    b->count = n;
    b->ring = ring;
    b->rr_cursor = n ? b->rr_cursor % n : 0;
    recount_ejections(b);
    colony__free(old_by_id);
    return 0;

nomem:
    for (size_t i = 0; next && i < n; i++)
        if (next[i] && !next[i]->owner) colony__free(next[i]); /* new, never in a set */
    colony__free(next);
    colony__free(old_by_id);
    return COLONY_ENOMEM;
}

/* Ejections end lazily: the first call after next_return_ms puts back every
 * endpoint whose time has come. O(1) when nothing is due. */
static void return_ejected(colony_balancer *b, uint64_t now_ms)
{
    if (b->ejected_count == 0 || now_ms < b->next_return_ms) return;
    b->ejected_count = 0;
    b->next_return_ms = UINT64_MAX;
    for (size_t i = 0; i < b->count; i++) {
        colony_endpoint *ep = b->endpoints[i];
        if (!ep->ejected) continue;
        if (now_ms >= ep->ejected_until_ms) {
            ep->ejected = 0;
            continue;
        }
        b->ejected_count++;
        if (ep->ejected_until_ms < b->next_return_ms) b->next_return_ms = ep->ejected_until_ms;
    }
}

/* 1 if some endpoint is neither ejected nor down. O(1) unless some are down. */
static int any_up(const colony_balancer *b)
{
    if (b->down_count == 0) return 1;
    for (size_t i = 0; i < b->count; i++)
        if (!colony__endpoint_out(b->endpoints[i])) return 1;
    return 0;
}

int colony_balancer_pick(colony_balancer *b, const char *key, size_t len, uint64_t now_ms,
                         colony_endpoint **out)
{
    if (!out) return COLONY_EINVAL;
    *out = NULL;
    if (!b) return COLONY_EINVAL;
    return_ejected(b, now_ms);
    if (b->count == b->ejected_count || !any_up(b)) return COLONY_ENOENT;

    colony_endpoint *ep = NULL;
    switch (b->strategy) {
    case COLONY_BALANCE_ROUND_ROBIN:
        ep = colony__balance_round_robin(b);
        break;
    case COLONY_BALANCE_WEIGHTED_RR:
        ep = colony__balance_smooth_wrr(b);
        break;
    case COLONY_BALANCE_LEAST_CONN:
        ep = colony__balance_least_conn(b);
        break;
    case COLONY_BALANCE_P2C:
        ep = colony__balance_p2c(b);
        break;
    case COLONY_BALANCE_RANDOM:
        ep = colony__balance_random(b);
        break;
    case COLONY_BALANCE_IP_HASH:
        ep = key ? colony__balance_ip_hash(b, colony__hash64(key, len)) : colony__balance_random(b);
        break;
    case COLONY_BALANCE_RING_HASH:
        ep = key ? colony__ring_lookup(&b->ring, colony__hash64(key, len))
                 : colony__balance_random(b);
        break;
    }
    if (!ep) return COLONY_ENOENT;
    ep->active++;
    ep->refs++;
    *out = ep;
    return 0;
}

/* Envoy's rule: refuse an ejection that would put more than the allowed share
 * of the set out, except that one endpoint may always be out. */
static int ejection_allowed(const colony_balancer *b)
{
    if (b->ejected_count == 0) return 1;
    return (uint64_t)(b->ejected_count + 1) * 100 <= (uint64_t)b->max_ejection_percent * b->count;
}

static void eject(colony_balancer *b, colony_endpoint *ep, uint64_t now_ms)
{
    /* Forgive one past ejection per full decay interval spent back in service. */
    if (b->decay_interval_ms && ep->times_ejected && now_ms > ep->ejected_until_ms) {
        uint64_t steps = (now_ms - ep->ejected_until_ms) / b->decay_interval_ms;
        ep->times_ejected = steps >= ep->times_ejected ? 0 : ep->times_ejected - (uint32_t)steps;
    }
    if (ep->times_ejected < UINT32_MAX) ep->times_ejected++;
    uint64_t cap =
        b->max_ejection_ms > b->base_ejection_ms ? b->max_ejection_ms : b->base_ejection_ms;
    uint64_t duration = b->base_ejection_ms && ep->times_ejected > cap / b->base_ejection_ms
                            ? cap
                            : b->base_ejection_ms * ep->times_ejected;
    ep->ejected = 1;
    ep->ejected_until_ms = duration > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + duration;
    ep->consecutive_failures = 0;
    b->ejected_count++;
    if (ep->ejected_until_ms < b->next_return_ms) b->next_return_ms = ep->ejected_until_ms;
}

/* Passive health from one finished request. Failures of requests that were
 * in flight when their endpoint got ejected do not count again. A refused
 * ejection keeps the streak, so the next failure tries again. */
static void feed_health(colony_balancer *b, colony_endpoint *ep, int ok, uint64_t now_ms)
{
    if (ok) {
        ep->consecutive_failures = 0;
        return;
    }
    if (b->eject_after == 0) return;
    return_ejected(b, now_ms);
    if (ep->ejected) return;
    if (ep->consecutive_failures < UINT32_MAX) ep->consecutive_failures++;
    if (ep->consecutive_failures < b->eject_after || !ejection_allowed(b)) return;
    eject(b, ep, now_ms);
}

int colony_balancer_release(colony_balancer *b, colony_endpoint *ep, int ok, uint64_t latency_ms,
                            uint64_t now_ms)
{
    if (!ep || ep->active == 0) return COLONY_EINVAL;
    if (b && ep->owner && ep->owner != b) return COLONY_EINVAL;
    ep->active--;
    if (ep->latency_ms == 0) {
        ep->latency_ms = latency_ms;
    } else {
        int64_t delta = (int64_t)latency_ms - (int64_t)ep->latency_ms;
        ep->latency_ms = (uint64_t)((int64_t)ep->latency_ms + delta / 8);
    }
    if (b && ep->owner == b) feed_health(b, ep, ok, now_ms);
    endpoint_unref(ep);
    return 0;
}

int colony_balancer_set_outlier(colony_balancer *b, uint32_t consecutive_failures,
                                uint64_t base_ejection_ms, uint64_t max_ejection_ms,
                                uint32_t max_ejection_percent)
{
    if (!b || max_ejection_percent > 100) return COLONY_EINVAL;
    b->eject_after = consecutive_failures;
    b->base_ejection_ms = base_ejection_ms;
    b->max_ejection_ms = max_ejection_ms;
    b->max_ejection_percent = max_ejection_percent;
    return 0;
}

void colony_balancer_set_outlier_decay(colony_balancer *b, uint64_t interval_ms)
{
    if (b) b->decay_interval_ms = interval_ms;
}

int colony_balancer_set_ring_points(colony_balancer *b, uint32_t per_weight_unit)
{
    if (!b || per_weight_unit == 0 || per_weight_unit > MAX_RING_POINTS) return COLONY_EINVAL;
    b->ring_points_per_weight = per_weight_unit;
    return 0;
}

void colony_balancer_set_seed(colony_balancer *b, uint64_t seed)
{
    if (!b) return;
    b->rng_state = seed;
    b->random_cb = NULL;
    b->random_ctx = NULL;
}

void colony_balancer_set_random(colony_balancer *b, colony_balance_random_cb cb, void *ctx)
{
    if (!b) return;
    b->random_cb = cb;
    b->random_ctx = cb ? ctx : NULL;
}

size_t colony_balancer_count(const colony_balancer *b)
{
    return b ? b->count : 0;
}

size_t colony_balancer_available(const colony_balancer *b, uint64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; b && i < b->count; i++)
        n += !colony_endpoint_ejected(b->endpoints[i], now_ms) && !b->endpoints[i]->down;
    return n;
}

colony_endpoint *colony_balancer_find(const colony_balancer *b, const char *id)
{
    for (size_t i = 0; b && id && i < b->count; i++)
        if (strcmp(b->endpoints[i]->id, id) == 0) return b->endpoints[i];
    return NULL;
}

colony_endpoint *colony_balancer_at(const colony_balancer *b, size_t i)
{
    return b && i < b->count ? b->endpoints[i] : NULL;
}

const char *colony_endpoint_id(const colony_endpoint *ep)
{
    return ep->id;
}

const char *colony_endpoint_address(const colony_endpoint *ep)
{
    return ep->address;
}

void *colony_endpoint_user(const colony_endpoint *ep)
{
    return ep->user;
}

uint32_t colony_endpoint_weight(const colony_endpoint *ep)
{
    return ep->weight;
}

uint64_t colony_endpoint_active(const colony_endpoint *ep)
{
    return ep->active;
}

int colony_endpoint_ejected(const colony_endpoint *ep, uint64_t now_ms)
{
    return ep->ejected && now_ms < ep->ejected_until_ms;
}

int colony_endpoint_set_down(colony_endpoint *ep, int down)
{
    if (!ep || !ep->owner) return COLONY_EINVAL;
    down = down != 0;
    if (ep->down == down) return 0;
    ep->down = down;
    if (down)
        ep->owner->down_count++;
    else
        ep->owner->down_count--;
    return 0;
}

int colony_endpoint_down(const colony_endpoint *ep)
{
    return ep->down;
}

uint32_t colony_endpoint_times_ejected(const colony_endpoint *ep)
{
    return ep->times_ejected;
}

uint32_t colony_endpoint_consecutive_failures(const colony_endpoint *ep)
{
    return ep->consecutive_failures;
}

uint64_t colony_endpoint_latency_ms(const colony_endpoint *ep)
{
    return ep->latency_ms;
}

int colony_endpoint_in_set(const colony_endpoint *ep)
{
    return ep->owner != NULL;
}
