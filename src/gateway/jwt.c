/* JWT verification (jwt.h) with OpenSSL's EVP API. libjwt 1.10 would take
 * the algorithm from the token's header and, given an RSA public key as bytes,
 * can be led to use it as an HMAC secret; verifying here with one EVP call per
 * algorithm keeps the per-key allow-list the only way in. */
#include "gateway/jwt.h"
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "gateway/forward.h"

#define GW_JWT_MAX_TOKEN 8192
#define GW_JWT_MAX_KEYS  100

typedef struct gw_jwt_key {
    char *kid;     /* NULL: none */
    unsigned algs; /* GW_JWT_*: what this key may verify */
    unsigned char *secret;
    size_t secret_len;
    EVP_PKEY *pkey; /* RSA or EC P-256 public key */
} gw_jwt_key;

struct gw_jwt {
    gw_jwt_key *keys;
    size_t nkeys;
    char *issuer, *audience; /* required when set */
    uint64_t leeway_ms;
    char **claims, **headers; /* claims_to_headers */
    size_t nclaims;
    char **roles; /* the "role" claim must be one of these; none: any */
    size_t nroles;
};

static const struct {
    const char *name;
    unsigned bit;
} algorithms[] = {{"HS256", GW_JWT_HS256}, {"RS256", GW_JWT_RS256}, {"ES256", GW_JWT_ES256}};

static unsigned alg_bit(const char *name)
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

/* Decodes len chars of unpadded base64url into out (room for len * 3 / 4 + 1
 * bytes). Returns the decoded length or -1. */
static long b64url_decode(const char *in, size_t len, unsigned char *out)
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

/* Decodes a base64url string into a new buffer (colony__free it). */
static unsigned char *b64url_dup(const char *in, size_t len, size_t *out_len)
{
    unsigned char *buf = colony__malloc(len * 3 / 4 + 2);
    if (!buf) return NULL;
    long n = b64url_decode(in, len, buf);
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
    unsigned char *raw = s ? b64url_dup(s, strlen(s), &len) : NULL;
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
        ok = ok && b64url_decode(x, 43, point + 1) == 32 && b64url_decode(y, 43, point + 33) == 32;
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
        if (!(algs = alg_bit(json_string_value(alg))))
            return colony__gw_parse_fail(p, "alg", "\"alg\" must be HS256, RS256 or ES256");
    } else if (list) {
        algs = 0;
        for (size_t i = 0; i < json_array_size(list); i++) {
            unsigned bit = alg_bit(json_string_value(json_array_get(list, i)));
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
            k->secret = s ? b64url_dup(s, strlen(s), &k->secret_len) : NULL;
            material = k->secret && k->secret_len >= 32 ? GW_JWT_HS256 : 0;
        } else if (kty && (strcmp(kty, "RSA") == 0 || strcmp(kty, "EC") == 0)) {
            k->pkey = jwk_public_key(jwk, kty);
            material = k->pkey ? pkey_algs(k->pkey) : 0;
        }
        k->algs = (alg ? alg_bit(alg) : route_algs) & material;
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
    j->leeway_ms = 0;
    unsigned route_algs = 0;
    json_t *algs = json_object_get(obj, "algorithms");
    if (algs) {
        if (!json_is_array(algs) || json_array_size(algs) == 0)
            return colony__gw_parse_fail(p, "algorithms",
                                         "\"algorithms\" must be a non-empty array");
        for (size_t i = 0; i < json_array_size(algs); i++) {
            unsigned bit = alg_bit(json_string_value(json_array_get(algs, i)));
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
    colony__free(j);
}

/* ---- verification --------------------------------------------------- */

static int verify_hs256(const gw_jwt_key *k, const char *input, size_t len,
                        const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    if (!HMAC(EVP_sha256(), k->secret, (int)k->secret_len, (const unsigned char *)input, len, mac,
              &mac_len))
        return 0;
    return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
}

/* RS256 signatures are PKCS#1 v1.5; ES256 ones are r || s (32 bytes each,
 * RFC 7518 §3.4) and OpenSSL wants DER. */
static int verify_pkey(const gw_jwt_key *k, unsigned alg, const char *input, size_t len,
                       const unsigned char *sig, size_t sig_len)
{
    unsigned char der[80];
    unsigned char *der_end = der;
    if (alg == GW_JWT_ES256) {
        if (sig_len != 64) return 0;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
        if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            return 0;
        }
        int n = i2d_ECDSA_SIG(es, NULL);
        if (n > 0 && (size_t)n <= sizeof(der)) n = i2d_ECDSA_SIG(es, &der_end);
        ECDSA_SIG_free(es);
        if (n <= 0 || (size_t)n > sizeof(der)) return 0;
        sig = der;
        sig_len = (size_t)n;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)input, len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

static int verify_with(const gw_jwt_key *k, unsigned alg, const char *input, size_t len,
                       const unsigned char *sig, size_t sig_len)
{
    if (!(k->algs & alg)) return 0; /* the allow-list, before any crypto */
    if (alg == GW_JWT_HS256) return k->secret && verify_hs256(k, input, len, sig, sig_len);
    return k->pkey && verify_pkey(k, alg, input, len, sig, sig_len);
}

static json_t *decode_json(const char *in, size_t len)
{
    size_t n = 0;
    unsigned char *raw = b64url_dup(in, len, &n);
    json_t *v = raw ? json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL) : NULL;
    colony__free(raw);
    if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

static int audience_has(const json_t *aud, const char *want)
{
    if (json_is_string(aud)) return strcmp(json_string_value(aud), want) == 0;
    for (size_t i = 0; i < json_array_size(aud); i++)
        if (json_is_string(json_array_get(aud, i)) &&
            strcmp(json_string_value(json_array_get(aud, i)), want) == 0)
            return 1;
    return 0;
}

/* The registered claims: exp and nbf with leeway, iss and aud when required. */
static int check_claims(const gw_jwt *j, const json_t *claims, int64_t now, const char **why)
{
    int64_t leeway = (int64_t)(j->leeway_ms / 1000);
    json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    if (exp && !json_is_number(exp)) return *why = "exp is not a number", 401;
    if (nbf && !json_is_number(nbf)) return *why = "nbf is not a number", 401;
    if (exp && (double)now > json_number_value(exp) + (double)leeway)
        return *why = "the token has expired", 401;
    if (nbf && (double)now + (double)leeway < json_number_value(nbf))
        return *why = "the token is not valid yet", 401;
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (j->issuer && (!iss || strcmp(iss, j->issuer) != 0))
        return *why = "the token's issuer is not accepted", 401;
    if (j->audience && !audience_has(json_object_get(claims, "aud"), j->audience))
        return *why = "the token is not for this audience", 401;
    if (j->nroles) {
        json_t *role = json_object_get(claims, "role");
        for (size_t i = 0; i < j->nroles; i++)
            if (json_is_string(role) ? strcmp(json_string_value(role), j->roles[i]) == 0
                                     : audience_has(role, j->roles[i]))
                return 0;
        return *why = "the token's role may not use this route", 403;
    }
    return 0;
}

int colony__gw_jwt_verify(const gw_jwt *j, const char *token, int64_t now, json_t **claims,
                          const char **why)
{
    *claims = NULL;
    size_t len = token ? strlen(token) : 0;
    if (!len) return *why = "a bearer token is required", 401;
    if (len > GW_JWT_MAX_TOKEN) return *why = "the token is too long", 401;
    const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot1 || !dot2 || strchr(dot2 + 1, '.'))
        return *why = "the token is not a JWS compact serialization", 401;
    json_t *header = decode_json(token, (size_t)(dot1 - token));
    if (!header) return *why = "the token's header is not valid", 401;
    const char *alg_name = json_string_value(json_object_get(header, "alg"));
    const char *kid = json_string_value(json_object_get(header, "kid"));
    unsigned alg = alg_bit(alg_name);
    int rc = 0;
    unsigned char sig[1024]; /* RSA keys up to 8192 bits */
    size_t sig_chars = strlen(dot2 + 1);
    long sig_len = sig_chars <= 1364 ? b64url_decode(dot2 + 1, sig_chars, sig) : -1;
    if (!alg)
        rc = 401, *why = "the token's algorithm is not accepted";
    else if (json_object_get(header, "kid") && !kid)
        rc = 401, *why = "the token's kid is not a string";
    else if (json_object_get(header, "crit"))
        rc = 401, *why = "the token has critical header parameters";
    else if (sig_len <= 0)
        rc = 401, *why = "the token's signature is not valid";
    int verified = 0, tried = 0, refused = 0;
    for (size_t i = 0; !rc && !verified && i < j->nkeys; i++) {
        const gw_jwt_key *k = &j->keys[i];
        if (kid ? !k->kid || strcmp(k->kid, kid) != 0 : j->nkeys > 1 && !(k->algs & alg)) continue;
        tried = 1;
        if (!(k->algs & alg)) { /* the key does not allow this algorithm: before any crypto */
            refused = 1;
            break;
        }
        verified = verify_with(k, alg, token, (size_t)(dot2 - token), sig, (size_t)sig_len);
    }
    json_decref(header);
    if (!rc && !verified) {
        *why = !tried && kid       ? "the token's kid names no key"
               : refused || !tried ? "the token's algorithm is not allowed for its key"
                                   : "the token's signature is not valid";
        return 401;
    }
    if (rc) return rc;
    json_t *body = decode_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!body) return *why = "the token's claims are not valid", 401;
    if ((rc = check_claims(j, body, now, why)) != 0) {
        json_decref(body);
        return rc;
    }
    *claims = body;
    return 0;
}

/* A claim as a header value: strings without control characters, numbers
 * and booleans; anything else is not sent. */
static const char *claim_value(colony_arena *a, const json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (const char *c = s; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) return NULL;
        return strlen(s) == json_string_length(v) && strlen(s) <= 1024 ? s : NULL;
    }
    if (json_is_integer(v))
        return colony_arena_sprintf(a, "%lld", (long long)json_integer_value(v));
    if (json_is_real(v)) return colony_arena_sprintf(a, "%.17g", json_real_value(v));
    if (json_is_boolean(v)) return json_is_true(v) ? "true" : "false";
    return NULL;
}

static int respond_unauthorized(colony_request *req, const char *why)
{
    colony_response_header(req, "WWW-Authenticate", "Bearer");
    colony_respond_error(req, 401, "unauthorized", why);
    return 401;
}

int colony__gw_jwt_check(const gw_jwt *j, colony_request *req, gw_forward *f)
{
    const char *auth = colony_request_header(req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return respond_unauthorized(req, "a bearer token is required");
    const char *token = auth + 7;
    while (*token == ' ')
        token++;
    json_t *claims = NULL;
    const char *why = "";
    int rc = colony__gw_jwt_verify(j, token, (int64_t)time(NULL), &claims, &why);
    if (rc == 401) return respond_unauthorized(req, why);
    if (rc) {
        colony_respond_error(req, rc, "forbidden", why);
        return rc;
    }
    colony_arena *a = colony_request_arena(req);
    const char *added[2 * 32];
    size_t n = 0;
    for (size_t i = 0; i < j->nclaims; i++) {
        const char *v = claim_value(a, json_object_get(claims, j->claims[i]));
        if (!v || !(v = colony_arena_strndup(a, v, strlen(v)))) continue;
        added[n++] = j->headers[i];
        added[n++] = v;
    }
    /* For rate limits keyed by "jwt:sub": the verified subject, never the
     * client's unverified headers. */
    const char *sub = claim_value(a, json_object_get(claims, "sub"));
    if (sub && (sub = colony_arena_strndup(a, sub, strlen(sub))))
        colony_request_set_data(req, GW_REQ_JWT_SUB, (void *)sub);
    json_decref(claims);
    if (colony__gw_forward_add_headers(f, added, n / 2)) {
        colony_respond_error(req, 503, "overloaded", "out of memory");
        return 503;
    }
    return 0;
}
