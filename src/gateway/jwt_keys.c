/* A route's JWT settings (jwt.h): the "jwt" object of the routes file, its
 * keys (secrets, PEM public keys, a JWKS file) each with the algorithms it may
 * verify, and base64url. */
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "gateway/jwt_keys.h"

static const struct {
    const char *name;
    unsigned bit;
} algorithms[] = {{"HS256", GW_JWT_HS256}, {"RS256", GW_JWT_RS256}, {"ES256", GW_JWT_ES256}};

unsigned colony__gw_jwt_alg_bit(const char *name)
{
    for (size_t i = 0; name && i < sizeof(algorithms) / sizeof(algorithms[0]); i++)
        if (strcmp(name, algorithms[i].name) == 0) return algorithms[i].bit;
    return 0;
}

/* ---- base64url ------------------------------------------------------ */

static int b64url_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '-') return 62;
    if (ch == '_') return 63;
    return -1;
}

long colony__gw_b64url_decode(const char *in, size_t len, unsigned char *out)
{
    if (len % 4 == 1) return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1)) return -1; /* one encoding per value: unused bits are 0 */
    return (long)n;
}

unsigned char *colony__gw_b64url_dup(const char *in, size_t len, size_t *out_len)
{
    unsigned char *buf = colony__malloc(len * 3 / 4 + 2);
    if (!buf) return NULL;
    long n = colony__gw_b64url_decode(in, len, buf);
    if (n < 0) {
        colony__free(buf);
        return NULL;
    }
    *out_len = (size_t)n;
    return buf;
}
/* ---- keys ----------------------------------------------------------- */

static unsigned pkey_algs(EVP_PKEY *k)
{
    if (EVP_PKEY_is_a(k, "RSA")) return GW_JWT_RS256;
    if (EVP_PKEY_is_a(k, "EC")) {
        char group[32] = "";
        size_t len = 0;
        if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &len) == 1 &&
            strcmp(group, "prime256v1") == 0)
            return GW_JWT_ES256;
    }
    return 0;
}

static EVP_PKEY *pem_public_key(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) return NULL;
    EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return k;
}

static char *read_file(const char *path, size_t max, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    char *buf = colony__malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, fp) : 0;
    fclose(fp);
    if (!buf || n > max) {
        colony__free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static BIGNUM *b64url_bn(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    size_t len = 0;
    unsigned char *raw = s ? colony__gw_b64url_dup(s, strlen(s), &len) : NULL;
    BIGNUM *bn = raw && len ? BN_bin2bn(raw, (int)len, NULL) : NULL;
    colony__free(raw);
    return bn;
}

/* An RSA or EC P-256 public key from a JWK, or NULL. */
static EVP_PKEY *jwk_public_key(const json_t *jwk, const char *kty)
{
    EVP_PKEY *k = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    BIGNUM *n = NULL, *e = NULL;
    unsigned char point[65];
    int ok = bld != NULL;
    if (ok && strcmp(kty, "RSA") == 0) {
        n = b64url_bn(jwk, "n");
        e = b64url_bn(jwk, "e");
        ok = n && e && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
    } else if (ok) {
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        const char *x = json_string_value(json_object_get(jwk, "x"));
        const char *y = json_string_value(json_object_get(jwk, "y"));
        ok = crv && x && y && strcmp(crv, "P-256") == 0 && strlen(x) == 43 && strlen(y) == 43;
        point[0] = 4;
        ok = ok && colony__gw_b64url_decode(x, 43, point + 1) == 32 &&
             colony__gw_b64url_decode(y, 43, point + 33) == 32;
        ok = ok &&
             OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
             OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
    }
    if (ok) params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, kty, NULL) : NULL;
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return k;
}

/* The allow-list of key: its "alg" or "algorithms", else the route's
 * "algorithms"; every entry must suit the key's material. */
static int key_algs(gw_parse *p, const json_t *obj, unsigned route_algs, unsigned material,
                    gw_jwt_key *k)
{
    json_t *alg = json_object_get(obj, "alg"), *list = json_object_get(obj, "algorithms");
    unsigned algs = route_algs;
    if (alg && list) return colony__gw_parse_fail(p, "alg", "give \"alg\" or \"algorithms\"");
    if (alg) {
        if (!(algs = colony__gw_jwt_alg_bit(json_string_value(alg))))
            return colony__gw_parse_fail(p, "alg", "\"alg\" must be HS256, RS256 or ES256");
    } else if (list) {
        algs = 0;
        for (size_t i = 0; i < json_array_size(list); i++) {
            unsigned bit = colony__gw_jwt_alg_bit(json_string_value(json_array_get(list, i)));
            if (!bit)
                return colony__gw_parse_fail(p, "algorithms", "must be HS256, RS256 or ES256");
            algs |= bit;
        }
        if (!json_is_array(list) || !algs)
            return colony__gw_parse_fail(p, "algorithms",
                                         "\"algorithms\" must be a non-empty array");
    }
    if (!algs)
        return colony__gw_parse_fail(p, NULL,
                                     "a key needs \"alg\" (or the route's \"algorithms\")");
    if ((alg || list) && (algs & ~material))
        return colony__gw_parse_fail(p, alg ? "alg" : "algorithms",
                                     material == GW_JWT_HS256
                                         ? "a \"secret\" key verifies only HS256"
                                         : "a public key verifies only the algorithm of its type "
                                           "(RS256 for RSA, ES256 for P-256), never HS256");
    k->algs = algs & material;
    if (!k->algs)
        return colony__gw_parse_fail(p, NULL, "none of the route's \"algorithms\" suits this key");
    return 0;
}

static int parse_key(gw_parse *p, const json_t *obj, unsigned route_algs, gw_jwt_key *k)
{
    static const char *const keys[] = {"kid", "alg",      "algorithms", "secret",
                                       "pem", "pem_file", NULL};
    if (!json_is_object(obj)) return colony__gw_parse_fail(p, NULL, "a key must be an object");
    int rc = colony__gw_parse_only(p, obj, keys);
    if (!rc) rc = colony__gw_parse_string(p, obj, "kid", 0, &k->kid);
    if (rc) return rc;
    const char *secret = json_string_value(json_object_get(obj, "secret"));
    const char *pem = json_string_value(json_object_get(obj, "pem"));
    const char *pem_file = json_string_value(json_object_get(obj, "pem_file"));
    if (!!json_object_get(obj, "secret") + !!json_object_get(obj, "pem") +
            !!json_object_get(obj, "pem_file") !=
        1)
        return colony__gw_parse_fail(p, NULL, "a key has one of \"secret\", \"pem\", \"pem_file\"");
    unsigned material;
    if (json_object_get(obj, "secret")) {
        if (!secret || strlen(secret) < 32)
            return colony__gw_parse_fail(p, "secret",
                                         "an HS256 secret is a string of 32 bytes or more");
        k->secret_len = strlen(secret);
        if (!(k->secret = (unsigned char *)colony__strdup(secret)))
            return colony__gw_parse_fail(p, NULL, "out of memory");
        material = GW_JWT_HS256;
    } else {
        const char *which = pem ? "pem" : "pem_file";
        size_t len = 0;
        char *text = NULL;
        if (pem)
            len = strlen(pem);
        else if (!pem_file || !(text = read_file(pem_file, 1 << 20, &len)))
            return colony__gw_parse_fail(p, which, "cannot read the PEM file \"%s\"",
                                         pem_file ? pem_file : "");
        k->pkey = pem_public_key(pem ? pem : text, len);
        colony__free(text);
        if (!k->pkey)
            return colony__gw_parse_fail(p, which, "not a PEM public key (BEGIN PUBLIC KEY)");
        if (!(material = pkey_algs(k->pkey)))
            return colony__gw_parse_fail(p, which,
                                         "only RSA and EC P-256 public keys are supported");
    }
    return key_algs(p, obj, route_algs, material, k);
}

/* A JWKS file: {"keys": [JWK, ...]}, oct (HS256), RSA and EC P-256 keys. */
static int parse_jwks(gw_parse *p, const char *path, unsigned route_algs, gw_jwt *j)
{
    size_t len = 0;
    char *text = read_file(path, 1 << 20, &len);
    if (!text) return colony__gw_parse_fail(p, "jwks_file", "cannot read \"%s\"", path);
    json_t *root = json_loadb(text, len, 0, NULL);
    colony__free(text);
    json_t *list = json_object_get(root, "keys");
    int rc = 0;
    size_t n = json_array_size(list);
    if (!json_is_array(list) || n == 0 || n > GW_JWT_MAX_KEYS)
        rc =
            colony__gw_parse_fail(p, "jwks_file", "\"%s\" is not a JWKS ({\"keys\": [...]})", path);
    else if (!(j->keys = colony__calloc(n, sizeof(*j->keys))))
        rc = colony__gw_parse_fail(p, NULL, "out of memory");
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *jwk = json_array_get(list, i);
        gw_jwt_key *k = &j->keys[j->nkeys++];
        const char *kty = json_string_value(json_object_get(jwk, "kty"));
        const char *kid = json_string_value(json_object_get(jwk, "kid"));
        const char *alg = json_string_value(json_object_get(jwk, "alg"));
        unsigned material = 0;
        if (kid && !(k->kid = colony__strdup(kid))) {
            rc = colony__gw_parse_fail(p, NULL, "out of memory");
            break;
        }
        if (kty && strcmp(kty, "oct") == 0) {
            const char *s = json_string_value(json_object_get(jwk, "k"));
            k->secret = s ? colony__gw_b64url_dup(s, strlen(s), &k->secret_len) : NULL;
            material = k->secret && k->secret_len >= 32 ? GW_JWT_HS256 : 0;
        } else if (kty && (strcmp(kty, "RSA") == 0 || strcmp(kty, "EC") == 0)) {
            k->pkey = jwk_public_key(jwk, kty);
            material = k->pkey ? pkey_algs(k->pkey) : 0;
        }
        k->algs = (alg ? colony__gw_jwt_alg_bit(alg) : route_algs) & material;
        if (!material || !k->algs)
            rc = colony__gw_parse_fail(p, "jwks_file",
                                       "%s: key %zu is not a usable oct (32+ bytes), RSA or EC "
                                       "P-256 key for the allowed algorithms",
                                       path, i);
    }
    json_decref(root);
    return rc;
}

int colony__gw_jwt_parse(gw_parse *p, const json_t *obj, gw_jwt **out)
{
    static const char *const keys[] = {"keys",     "jwks_file", "algorithms",        "issuer",
                                       "audience", "leeway",    "claims_to_headers", "roles",
                                       NULL};
    *out = NULL;
    if (!json_is_object(obj)) return colony__gw_parse_fail(p, NULL, "\"jwt\" must be an object");
    int rc = colony__gw_parse_only(p, obj, keys);
    if (rc) return rc;
    gw_jwt *j = colony__calloc(1, sizeof(*j));
    if (!j) return colony__gw_parse_fail(p, NULL, "out of memory");
    *out = j;
    if (!(j->caches[0] = colony__gw_jwt_cache_new()))
        return colony__gw_parse_fail(p, NULL, "out of memory");
    j->leeway_ms = 0;
    unsigned route_algs = 0;
    json_t *algs = json_object_get(obj, "algorithms");
    if (algs) {
        if (!json_is_array(algs) || json_array_size(algs) == 0)
            return colony__gw_parse_fail(p, "algorithms",
                                         "\"algorithms\" must be a non-empty array");
        for (size_t i = 0; i < json_array_size(algs); i++) {
            unsigned bit = colony__gw_jwt_alg_bit(json_string_value(json_array_get(algs, i)));
            if (!bit)
                return colony__gw_parse_fail(p, "algorithms",
                                             "algorithms are HS256, RS256 and ES256 (never none)");
            route_algs |= bit;
        }
    }
    json_t *list = json_object_get(obj, "keys");
    json_t *jwks = json_object_get(obj, "jwks_file");
    if (!list == !jwks)
        return colony__gw_parse_fail(p, NULL, "\"jwt\" needs \"keys\" or \"jwks_file\"");
    if (jwks) {
        if (!json_is_string(jwks))
            return colony__gw_parse_fail(p, "jwks_file", "\"jwks_file\" must be a path");
        rc = parse_jwks(p, json_string_value(jwks), route_algs, j);
    } else {
        size_t at = colony__gw_parse_push(p, "keys");
        size_t n = json_array_size(list);
        if (!json_is_array(list) || n == 0 || n > GW_JWT_MAX_KEYS)
            rc = colony__gw_parse_fail(p, NULL, "\"keys\" must be an array of 1 to %d keys",
                                       GW_JWT_MAX_KEYS);
        else if (!(j->keys = colony__calloc(n, sizeof(*j->keys))))
            rc = colony__gw_parse_fail(p, NULL, "out of memory");
        for (size_t i = 0; !rc && i < n; i++) {
            char idx[24];
            snprintf(idx, sizeof(idx), "%zu", i);
            size_t at_i = colony__gw_parse_push(p, idx);
            rc = parse_key(p, json_array_get(list, i), route_algs, &j->keys[j->nkeys++]);
            colony__gw_parse_pop(p, at_i);
        }
        colony__gw_parse_pop(p, at);
    }
    for (size_t i = 0; !rc && i < j->nkeys; i++)
        for (size_t k = 0; k < i; k++)
            if (j->keys[i].kid && j->keys[k].kid && strcmp(j->keys[i].kid, j->keys[k].kid) == 0) {
                rc = colony__gw_parse_fail(p, jwks ? "jwks_file" : "keys",
                                           "two keys have kid \"%s\"", j->keys[i].kid);
                break;
            }
    if (!rc) rc = colony__gw_parse_string(p, obj, "issuer", 0, &j->issuer);
    if (!rc) rc = colony__gw_parse_string(p, obj, "audience", 0, &j->audience);
    if (!rc) rc = colony__gw_parse_duration(p, obj, "leeway", 600000, &j->leeway_ms);
    if (!rc) rc = colony__gw_parse_strings(p, obj, "roles", 100, &j->roles, &j->nroles);
    json_t *map = json_object_get(obj, "claims_to_headers");
    if (!rc && map) {
        if (!json_is_object(map) || json_object_size(map) > 32)
            return colony__gw_parse_fail(p, "claims_to_headers",
                                         "\"claims_to_headers\" is an object of up to 32 "
                                         "claim: header");
        size_t n = json_object_size(map);
        j->claims = colony__calloc(n + 1, sizeof(char *));
        j->headers = colony__calloc(n + 1, sizeof(char *));
        if (!j->claims || !j->headers) return colony__gw_parse_fail(p, NULL, "out of memory");
        const char *claim;
        json_t *v;
        json_object_foreach(map, claim, v)
        {
            const char *h = json_string_value(v);
            size_t at = colony__gw_parse_push(p, "claims_to_headers");
            if (!h || !*h ||
                strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789-_") != strlen(h))
                rc = colony__gw_parse_fail(p, claim, "a header name (letters, digits, - and _)");
            colony__gw_parse_pop(p, at);
            if (rc) return rc;
            if (!(j->claims[j->nclaims] = colony__strdup(claim)) ||
                !(j->headers[j->nclaims++] = colony__strdup(h)))
                return colony__gw_parse_fail(p, NULL, "out of memory");
        }
    } else if (!rc) {
        /* The seed's Node.js gateway: sub and role as X-User-ID and X-User-Role. */
        j->claims = colony__calloc(3, sizeof(char *)); /* free() reads nclaims + 1 */
        j->headers = colony__calloc(3, sizeof(char *));
        if (!j->claims || !j->headers || !(j->claims[0] = colony__strdup("sub")) ||
            !(j->headers[0] = colony__strdup("X-User-ID")) ||
            !(j->claims[1] = colony__strdup("role")) ||
            !(j->headers[1] = colony__strdup("X-User-Role")))
            return colony__gw_parse_fail(p, NULL, "out of memory");
        j->nclaims = 2;
    }
    return rc;
}

void colony__gw_jwt_free(gw_jwt *j)
{
    if (!j) return;
    for (size_t i = 0; i < j->nkeys; i++) {
        colony__free(j->keys[i].kid);
        if (j->keys[i].secret) OPENSSL_cleanse(j->keys[i].secret, j->keys[i].secret_len);
        colony__free(j->keys[i].secret);
        EVP_PKEY_free(j->keys[i].pkey);
    }
    colony__free(j->keys);
    colony__free(j->issuer);
    colony__free(j->audience);
    for (size_t i = 0; j->claims && i < j->nclaims + 1; i++) {
        colony__free(j->claims[i]);
        colony__free(j->headers ? j->headers[i] : NULL);
    }
    colony__free(j->claims);
    colony__free(j->headers);
    colony__gw_strings_free(j->roles, j->nroles);
    for (size_t i = 0; i < GW_MAX_WORKERS; i++)
        colony__gw_jwt_cache_free(j->caches[i]);
    colony__free(j);
}
