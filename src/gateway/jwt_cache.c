/* The cache of verified tokens (jwt_cache.h). */
#include "gateway/jwt_cache.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"

gw_jwt_cache *colony__gw_jwt_cache_new(void)
{
    gw_jwt_cache *c = colony__calloc(1, sizeof(*c));
    if (c) colony__list_init(&c->lru);
    return c;
}

void colony__gw_jwt_verified_free(gw_jwt_verified *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->nvalues; i++)
        colony__free(v->values[i]);
    colony__free(v->sub);
    colony__free(v->token);
    colony__free(v);
}

static void drop(gw_jwt_cache *c, gw_jwt_verified *v)
{
    colony__list_remove(&v->lru_link);
    colony__map_remove(&c->tokens, v->token);
    c->count--;
    colony__gw_jwt_verified_free(v);
}

void colony__gw_jwt_cache_free(gw_jwt_cache *c)
{
    if (!c) return;
    colony__list *n, *tmp;
    COLONY__LIST_FOREACH_SAFE(n, tmp, &c->lru)
    {
        colony__list_remove(n);
        colony__gw_jwt_verified_free(COLONY__CONTAINER_OF(n, gw_jwt_verified, lru_link));
    }
    colony__map_free(&c->tokens);
    colony__free(c);
}

const gw_jwt_verified *colony__gw_jwt_cache_get(gw_jwt_cache *c, const char *token, int64_t now,
                                                int64_t leeway)
{
    gw_jwt_verified *v =
        strlen(token) <= GW_JWT_CACHE_MAX_TOKEN ? colony__map_get(&c->tokens, token) : NULL;
    if (!v) {
        c->misses++;
        return NULL;
    }
    if ((v->has_exp && (double)now > v->exp + (double)leeway) ||
        (v->has_nbf && (double)now + (double)leeway < v->nbf)) {
        drop(c, v); /* expired (or a clock gone back): the full check tells why */
        c->misses++;
        return NULL;
    }
    colony__list_remove(&v->lru_link);
    colony__list_push_back(&c->lru, &v->lru_link);
    c->hits++;
    return v;
}

const char *colony__gw_jwt_claim_text(const json_t *v, char *buf, size_t size)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (const char *p = s; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) return NULL;
        return strlen(s) == json_string_length(v) && strlen(s) <= 1024 ? s : NULL;
    }
    if (json_is_integer(v))
        snprintf(buf, size, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, size, "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false");
    else
        return NULL;
    return buf;
}

/* A copy of the claim's text, or NULL (*failed set on allocation failure). */
static char *claim_copy(const json_t *claims, const char *name, int *failed)
{
    char buf[64];
    const char *text = colony__gw_jwt_claim_text(json_object_get(claims, name), buf, sizeof(buf));
    if (!text) return NULL;
    char *copy = colony__strdup(text);
    if (!copy) *failed = 1;
    return copy;
}

gw_jwt_verified *colony__gw_jwt_verified_new(const json_t *claims, char *const *claim_names,
                                             size_t nclaims)
{
    gw_jwt_verified *v = colony__calloc(1, sizeof(*v) + nclaims * sizeof(char *));
    if (!v) return NULL;
    colony__list_init(&v->lru_link);
    v->nvalues = nclaims;
    json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    v->has_exp = json_is_number(exp);
    v->has_nbf = json_is_number(nbf);
    v->exp = v->has_exp ? json_number_value(exp) : 0;
    v->nbf = v->has_nbf ? json_number_value(nbf) : 0;
    int failed = 0;
    v->sub = claim_copy(claims, "sub", &failed);
    for (size_t i = 0; i < nclaims; i++)
        v->values[i] = claim_copy(claims, claim_names[i], &failed);
    if (failed) {
        colony__gw_jwt_verified_free(v);
        return NULL;
    }
    return v;
}

int colony__gw_jwt_cache_put(gw_jwt_cache *c, const char *token, gw_jwt_verified *v)
{
    if (strlen(token) > GW_JWT_CACHE_MAX_TOKEN) return COLONY_E2BIG;
    gw_jwt_verified *old = colony__map_get(&c->tokens, token);
    if (old) drop(c, old);
    if (c->count >= GW_JWT_CACHE_MAX)
        drop(c, COLONY__CONTAINER_OF(colony__list_first(&c->lru), gw_jwt_verified, lru_link));
    if (!(v->token = colony__strdup(token))) return COLONY_ENOMEM;
    if (colony__map_put(&c->tokens, token, v)) {
        colony__free(v->token);
        v->token = NULL;
        return COLONY_ENOMEM;
    }
    colony__list_push_back(&c->lru, &v->lru_link);
    c->count++;
    return 0;
}
