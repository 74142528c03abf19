/* JWT verification (jwt.h) with OpenSSL's EVP API. libjwt 1.10 would take
 * the algorithm from the token's header and, given an RSA public key as bytes,
 * can be led to use it as an HMAC secret; verifying here with one EVP call per
 * algorithm keeps the per-key allow-list the only way in. */
#include "gateway/jwt.h"
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "gateway/forward.h"
#include "gateway/jwt_keys.h"

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
    unsigned char *raw = colony__gw_b64url_dup(in, len, &n);
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
    unsigned alg = colony__gw_jwt_alg_bit(alg_name);
    int rc = 0;
    unsigned char sig[1024]; /* RSA keys up to 8192 bits */
    size_t sig_chars = strlen(dot2 + 1);
    long sig_len = sig_chars <= 1364 ? colony__gw_b64url_decode(dot2 + 1, sig_chars, sig) : -1;
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

static int respond_unauthorized(colony_request *req, const char *why)
{
    colony_response_header(req, "WWW-Authenticate", "Bearer");
    colony_respond_error(req, 401, "unauthorized", why);
    return 401;
}

/* The verified token of the request: from the cache, or checked in full and
 * then cached. *fresh is set when the caller must free the result (not
 * cacheable). Returns 0, or the status it answered with. */
static int verified_token(const gw_jwt *j, colony_request *req, const char *token,
                          const gw_jwt_verified **out, gw_jwt_verified **fresh)
{
    int64_t now = (int64_t)time(NULL);
    *fresh = NULL;
    /* This worker's cache (only this thread touches it); NULL when it could
     * not be made: every token is then verified in full. */
    gw_jwt_cache **slot = (gw_jwt_cache **)&j->caches[colony__gw_worker % GW_MAX_WORKERS];
    if (!*slot) *slot = colony__gw_jwt_cache_new();
    gw_jwt_cache *cache = *slot;
    if (cache &&
        (*out = colony__gw_jwt_cache_get(cache, token, now, (int64_t)(j->leeway_ms / 1000))))
        return 0;
    json_t *claims = NULL;
    const char *why = "";
    int rc = colony__gw_jwt_verify(j, token, now, &claims, &why);
    if (rc == 401) return respond_unauthorized(req, why);
    if (rc) {
        colony_respond_error(req, rc, "forbidden", why);
        return rc;
    }
    gw_jwt_verified *v = colony__gw_jwt_verified_new(claims, j->claims, j->nclaims);
    json_decref(claims);
    if (!v) {
        colony_respond_error(req, 503, "overloaded", "out of memory");
        return 503;
    }
    if (!cache || colony__gw_jwt_cache_put(cache, token, v) != 0) *fresh = v;
    *out = v;
    return 0;
}

int colony__gw_jwt_check(const gw_jwt *j, colony_request *req, gw_forward *f)
{
    const char *auth = colony_request_header(req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return respond_unauthorized(req, "a bearer token is required");
    const char *token = auth + 7;
    while (*token == ' ')
        token++;
    const gw_jwt_verified *v;
    gw_jwt_verified *fresh;
    int rc = verified_token(j, req, token, &v, &fresh);
    if (rc) return rc;
    /* Copies in the request's arena: a cached entry may be dropped before
     * the request (and its retries) is over. */
    colony_arena *a = colony_request_arena(req);
    const char *added[2 * 32];
    size_t n = 0;
    int nomem = 0;
    for (size_t i = 0; i < v->nvalues; i++) {
        if (!v->values[i]) continue;
        const char *copy = colony_arena_strndup(a, v->values[i], strlen(v->values[i]));
        if (!copy) nomem = 1;
        added[n++] = j->headers[i];
        added[n++] = copy;
    }
    /* For rate limits keyed by "jwt:sub": the verified subject, never the
     * client's unverified headers. */
    const char *sub = v->sub ? colony_arena_strndup(a, v->sub, strlen(v->sub)) : NULL;
    if (v->sub && !sub) nomem = 1;
    if (sub) colony_request_set_data(req, GW_REQ_JWT_SUB, (void *)sub);
    colony__gw_jwt_verified_free(fresh);
    if (nomem || colony__gw_forward_add_headers(f, added, n / 2)) {
        colony_respond_error(req, 503, "overloaded", "out of memory");
        return 503;
    }
    return 0;
}
