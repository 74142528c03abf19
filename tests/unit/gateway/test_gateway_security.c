/* Route security: JWT verification against tokens made here (HS256, RS256
 * and ES256 keys generated with OpenSSL; every failure of issue 8: expired,
 * not yet valid, bad signature, alg none, key confusion, unknown kid, wrong
 * issuer or audience, missing, wrong role), JWKS files, IP lists, and every
 * config mistake refused with its line. */
#include "gateway_config_fixture.h"
#include "test_support.h"
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "colony/colony.h"
#include "core/alloc.h"
#include "gateway/config.h"
#include "gateway/jwt.h"

#define SECRET "0123456789abcdef0123456789abcdef-hs"

static EVP_PKEY *rsa, *ec;
static char rsa_pem[2048], ec_pem[512];

static void b64url(const unsigned char *in, size_t len, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[n++] = abc[(v >> 18) & 63];
        out[n++] = abc[(v >> 12) & 63];
        if (i + 1 < len) out[n++] = abc[(v >> 6) & 63];
        if (i + 2 < len) out[n++] = abc[v & 63];
    }
    out[n] = '\0';
}

static void public_pem(EVP_PKEY *k, char *out, size_t size)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, k), 1);
    int n = BIO_read(bio, out, (int)size - 1);
    assert_true(n > 0);
    out[n] = '\0';
    BIO_free(bio);
}

static int setup(void **state)
{
    (void)state;
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!rsa || !ec) return -1;
    public_pem(rsa, rsa_pem, sizeof(rsa_pem));
    public_pem(ec, ec_pem, sizeof(ec_pem));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    return 0;
}

/* header.payload.signature; alg "HS256" signs with secret, "RS256"/"ES256"
 * with key, "none" leaves the signature empty. */
static char *token(const char *header, const char *payload, const char *alg, EVP_PKEY *key,
                   const char *secret)
{
    static char out[8192];
    char h[1024], p[1024], sig_text[1400];
    b64url((const unsigned char *)header, strlen(header), h);
    b64url((const unsigned char *)payload, strlen(payload), p);
    snprintf(out, sizeof(out), "%s.%s", h, p);
    unsigned char sig[1024];
    size_t sig_len = 0;
    if (strcmp(alg, "HS256") == 0) {
        unsigned len = 0;
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)out, strlen(out), sig,
             &len);
        sig_len = len;
    } else if (strcmp(alg, "none") != 0) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned char der[1024];
        size_t der_len = sizeof(der);
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
        assert_int_equal(EVP_DigestSign(ctx, der, &der_len, (unsigned char *)out, strlen(out)), 1);
        EVP_MD_CTX_free(ctx);
        if (strcmp(alg, "ES256") == 0) { /* DER -> r || s */
            const unsigned char *d = der;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &d, (long)der_len);
            assert_non_null(es);
            BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
            BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
            ECDSA_SIG_free(es);
            sig_len = 64;
        } else {
            memcpy(sig, der, der_len);
            sig_len = der_len;
        }
    }
    b64url(sig, sig_len, sig_text);
    strcat(out, ".");
    strcat(out, sig_text);
    return out;
}

static int build(const char *text, gw_config **out, colony_config_error *err)
{
    return gw_test_build(text, out, err);
}

/* A routes file with one route whose "jwt" is the given JSON object. */
static gw_config *with_jwt(json_t *jwt)
{
    json_t *root =
        json_pack("{s:{s:{s:[s]}},s:[{s:s,s:s,s:o}]}", "upstreams", "up", "targets",
                  "http://127.0.0.1:9", "routes", "prefix", "/", "upstream", "up", "jwt", jwt);
    char *text = json_dumps(root, JSON_INDENT(1));
    json_decref(root);
    gw_config *cfg = NULL;
    colony_config_error err;
    int rc = build(text, &cfg, &err);
    colony__free(text);
    if (rc) fail_msg("%s:%d: %s: %s", err.file, err.line, err.key, err.reason);
    return cfg;
}

static gw_config *three_keys(void)
{
    return with_jwt(json_pack("{s:[{s:s,s:s,s:s},{s:s,s:s,s:s},{s:s,s:s,s:s}],s:s,s:s,s:s,s:[s,s]}",
                              "keys", "kid", "k1", "alg", "HS256", "secret", SECRET, "kid", "r1",
                              "alg", "RS256", "pem", rsa_pem, "kid", "e1", "alg", "ES256", "pem",
                              ec_pem, "issuer", "https://auth.example", "audience", "api", "leeway",
                              "30s", "roles", "admin", "ops"));
}

static const gw_jwt *jwt_of(gw_config *cfg)
{
    assert_non_null(cfg->routes[0].access);
    return cfg->routes[0].access->jwt;
}

static int verify(const gw_jwt *j, const char *tok, const char **why)
{
    json_t *claims = NULL;
    int rc = colony__gw_jwt_verify(j, tok, 1000000, &claims, why);
    if (rc == 0) {
        assert_non_null(claims);
        assert_string_equal(json_string_value(json_object_get(claims, "sub")), "u-7");
    } else {
        assert_null(claims);
    }
    json_decref(claims);
    return rc;
}

#define GOOD                                                                                       \
    "{\"sub\":\"u-7\",\"role\":\"admin\",\"iss\":\"https://"                                       \
    "auth.example\",\"aud\":\"api\",\"exp\":1000100}"

static void valid_tokens_of_each_algorithm(void **state)
{
    (void)state;
    gw_config *cfg = three_keys();
    const gw_jwt *j = jwt_of(cfg);
    const char *why = "";
    assert_int_equal(
        verify(j, token("{\"alg\":\"HS256\",\"kid\":\"k1\"}", GOOD, "HS256", NULL, SECRET), &why),
        0);
    assert_int_equal(
        verify(j, token("{\"alg\":\"RS256\",\"kid\":\"r1\"}", GOOD, "RS256", rsa, NULL), &why), 0);
    assert_int_equal(
        verify(j, token("{\"alg\":\"ES256\",\"kid\":\"e1\"}", GOOD, "ES256", ec, NULL), &why), 0);
    /* without kid: each key that allows the token's algorithm is tried */
    assert_int_equal(verify(j, token("{\"alg\":\"ES256\"}", GOOD, "ES256", ec, NULL), &why), 0);
    assert_int_equal(
        verify(j, token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", GOOD, "HS256", NULL, SECRET), &why),
        0);
    /* an audience list holding ours, a role list holding an allowed one */
    assert_int_equal(
        verify(j,
               token("{\"alg\":\"HS256\"}",
                     "{\"sub\":\"u-7\",\"role\":[\"x\",\"ops\"],\"iss\":\"https://auth.example\","
                     "\"aud\":[\"other\",\"api\"]}",
                     "HS256", NULL, SECRET),
               &why),
        0);
    colony__gw_config_unref(cfg);
}

static void expect(const gw_jwt *j, const char *tok, int status, const char *reason)
{
    const char *why = "";
    int rc = verify(j, tok, &why);
    if (rc != status || !strstr(why, reason))
        fail_msg("expected %d (%s), got %d (%s)", status, reason, rc, why);
}

static void every_refusal(void **state)
{
    (void)state;
    gw_config *cfg = three_keys();
    const gw_jwt *j = jwt_of(cfg);
    const char *hs = "{\"alg\":\"HS256\",\"kid\":\"k1\"}";
    /* exp and nbf with 30 s of leeway around now = 1000000 */
    expect(j,
           token(hs,
                 "{\"sub\":\"u-7\",\"role\":\"admin\",\"iss\":\"https://"
                 "auth.example\",\"aud\":\"api\",\"exp\":999960}",
                 "HS256", NULL, SECRET),
           401, "expired");
    expect(j,
           token(hs,
                 "{\"sub\":\"u-7\",\"role\":\"admin\",\"iss\":\"https://"
                 "auth.example\",\"aud\":\"api\",\"exp\":999980}",
                 "HS256", NULL, SECRET),
           0, "");
    expect(j,
           token(hs,
                 "{\"sub\":\"u-7\",\"role\":\"admin\",\"iss\":\"https://"
                 "auth.example\",\"aud\":\"api\",\"nbf\":1000040}",
                 "HS256", NULL, SECRET),
           401, "not valid yet");
    expect(j,
           token(hs,
                 "{\"sub\":\"u-7\",\"role\":\"admin\",\"iss\":\"https://"
                 "auth.example\",\"aud\":\"api\",\"nbf\":1000020}",
                 "HS256", NULL, SECRET),
           0, "");
    /* a bad signature: another secret, and a flipped signature byte */
    expect(j, token(hs, GOOD, "HS256", NULL, SECRET "x"), 401, "signature");
    char *t = token("{\"alg\":\"RS256\",\"kid\":\"r1\"}", GOOD, "RS256", rsa, NULL);
    size_t len = strlen(t);
    t[len - 5] = t[len - 5] == 'A' ? 'B' : 'A';
    expect(j, t, 401, "signature");
    /* an HS256 signature is 43 characters whose last 2 bits are unused: they must be 0 */
    t = token(hs, GOOD, "HS256", NULL, SECRET);
    len = strlen(t);
    const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    t[len - 1] = abc[(strchr(abc, t[len - 1]) - abc) ^ 1];
    expect(j, t, 401, "signature");
    /* a payload changed after signing */
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", token(hs, GOOD, "HS256", NULL, SECRET));
    char *other = token(
        hs, "{\"sub\":\"u-7\",\"role\":\"admin\",\"iss\":\"https://auth.example\",\"aud\":\"api\"}",
        "HS256", NULL, "z");
    char forged[4096];
    snprintf(forged, sizeof(forged), "%.*s%s", (int)(strchr(copy, '.') - copy), copy,
             strchr(other, '.'));
    *strrchr(forged, '.') = '\0';
    strcat(forged, strrchr(copy, '.'));
    expect(j, forged, 401, "signature");
    /* alg none, with and without a kid */
    expect(j, token("{\"alg\":\"none\"}", GOOD, "none", NULL, NULL), 401, "algorithm");
    expect(j, token("{\"alg\":\"none\",\"kid\":\"k1\"}", GOOD, "none", NULL, NULL), 401,
           "algorithm");
    expect(j, token("{\"alg\":\"HS512\",\"kid\":\"k1\"}", GOOD, "HS256", NULL, SECRET), 401,
           "algorithm");
    /* key confusion: the RSA public key's PEM text as an HMAC secret */
    expect(j, token("{\"alg\":\"HS256\",\"kid\":\"r1\"}", GOOD, "HS256", NULL, rsa_pem), 401,
           "not allowed");
    expect(j, token("{\"alg\":\"HS256\"}", GOOD, "HS256", NULL, rsa_pem), 401, "signature");
    /* an RS256 token presented with the EC key's kid */
    expect(j, token("{\"alg\":\"RS256\",\"kid\":\"e1\"}", GOOD, "RS256", rsa, NULL), 401,
           "not allowed");
    expect(j, token("{\"alg\":\"HS256\",\"kid\":\"k9\"}", GOOD, "HS256", NULL, SECRET), 401,
           "kid names no key");
    expect(
        j,
        token(
            hs,
            "{\"sub\":\"u-7\",\"role\":\"admin\",\"iss\":\"https://evil.example\",\"aud\":\"api\"}",
            "HS256", NULL, SECRET),
        401, "issuer");
    expect(j,
           token(hs, "{\"sub\":\"u-7\",\"role\":\"admin\",\"aud\":\"api\"}", "HS256", NULL, SECRET),
           401, "issuer");
    expect(
        j,
        token(
            hs,
            "{\"sub\":\"u-7\",\"role\":\"admin\",\"iss\":\"https://auth.example\",\"aud\":\"web\"}",
            "HS256", NULL, SECRET),
        401, "audience");
    expect(j,
           token(hs, "{\"sub\":\"u-7\",\"role\":\"admin\",\"iss\":\"https://auth.example\"}",
                 "HS256", NULL, SECRET),
           401, "audience");
    expect(j, NULL, 401, "required");
    expect(j, "", 401, "required");
    expect(j, "abc.def", 401, "compact");
    expect(j, "a.b.c.d", 401, "compact");
    expect(j, "!!!.e30.AAAA", 401, "header");
    expect(j, token(hs, "[1]", "HS256", NULL, SECRET), 401, "claims");
    expect(j,
           token(hs,
                 "{\"sub\":\"u-7\",\"role\":\"admin\",\"iss\":\"https://"
                 "auth.example\",\"aud\":\"api\",\"exp\":\"later\"}",
                 "HS256", NULL, SECRET),
           401, "exp");
    /* a valid token whose role is not allowed, or that has none: 403 */
    expect(
        j,
        token(
            hs,
            "{\"sub\":\"u-7\",\"role\":\"user\",\"iss\":\"https://auth.example\",\"aud\":\"api\"}",
            "HS256", NULL, SECRET),
        403, "role");
    expect(j,
           token(hs, "{\"sub\":\"u-7\",\"iss\":\"https://auth.example\",\"aud\":\"api\"}", "HS256",
                 NULL, SECRET),
           403, "role");
    colony__gw_config_unref(cfg);
}

/* A JWKS file with an oct, an RSA and an EC key, written from the keys made here. */
static void jwks_file(void **state)
{
    (void)state;
    BIGNUM *n = NULL, *e = NULL, *x = NULL, *y = NULL;
    unsigned char nb[256], eb[8], xb[32], yb[32];
    char ns[400], es[16], xs[50], ys[50], ks[64];
    assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_E, &e), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(ec, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(ec, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    b64url(nb, (size_t)BN_bn2bin(n, nb), ns);
    b64url(eb, (size_t)BN_bn2bin(e, eb), es);
    BN_bn2binpad(x, xb, 32);
    BN_bn2binpad(y, yb, 32);
    b64url(xb, 32, xs);
    b64url(yb, 32, ys);
    b64url((const unsigned char *)SECRET, strlen(SECRET), ks);
    BN_free(n);
    BN_free(e);
    BN_free(x);
    BN_free(y);
    char path[] = "/tmp/colony-jwks-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fprintf(fp,
            "{\"keys\": [{\"kty\":\"oct\",\"kid\":\"k1\",\"k\":\"%s\"},"
            "{\"kty\":\"RSA\",\"kid\":\"r1\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"},"
            "{\"kty\":\"EC\",\"kid\":\"e1\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
            ks, ns, es, xs, ys);
    fclose(fp);
    gw_config *cfg = with_jwt(
        json_pack("{s:s,s:[s,s,s]}", "jwks_file", path, "algorithms", "HS256", "RS256", "ES256"));
    const gw_jwt *j = jwt_of(cfg);
    const char *p = "{\"sub\":\"u-7\"}";
    expect(j, token("{\"alg\":\"HS256\",\"kid\":\"k1\"}", p, "HS256", NULL, SECRET), 0, "");
    expect(j, token("{\"alg\":\"RS256\",\"kid\":\"r1\"}", p, "RS256", rsa, NULL), 0, "");
    expect(j, token("{\"alg\":\"ES256\",\"kid\":\"e1\"}", p, "ES256", ec, NULL), 0, "");
    expect(j, token("{\"alg\":\"HS256\",\"kid\":\"r1\"}", p, "HS256", NULL, rsa_pem), 401,
           "not allowed");
    expect(j, token("{\"alg\":\"ES256\",\"kid\":\"r1\"}", p, "ES256", ec, NULL), 401,
           "not allowed");
    colony__gw_config_unref(cfg);
    /* a JWKS key that none of the route's algorithms suits is refused */
    json_t *root = json_pack("{s:{s:{s:[s]}},s:[{s:s,s:s,s:{s:s,s:[s]}}]}", "upstreams", "up",
                             "targets", "http://127.0.0.1:9", "routes", "prefix", "/", "upstream",
                             "up", "jwt", "jwks_file", path, "algorithms", "ES256");
    char *text = json_dumps(root, JSON_INDENT(1));
    json_decref(root);
    colony_config_error err;
    assert_int_equal(build(text, &cfg, &err), COLONY_EINVAL);
    assert_string_equal(err.key, "routes.0.jwt.jwks_file");
    assert_non_null(strstr(err.reason, "key 0"));
    colony__free(text);
    unlink(path);
}

/* A 4096-bit RSA key's signatures (683 characters) fit. */
static void large_rsa_key(void **state)
{
    (void)state;
    EVP_PKEY *big = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
    assert_non_null(big);
    char pem[4096];
    public_pem(big, pem, sizeof(pem));
    gw_config *cfg = with_jwt(json_pack("{s:[{s:s,s:s}]}", "keys", "alg", "RS256", "pem", pem));
    expect(jwt_of(cfg), token("{\"alg\":\"RS256\"}", "{\"sub\":\"u-7\"}", "RS256", big, NULL), 0,
           "");
    colony__gw_config_unref(cfg);
    EVP_PKEY_free(big);
}

static void ip_lists(void **state)
{
    (void)state;
    const char *text =
        "{\"upstreams\": {\"up\": {\"targets\": [\"http://127.0.0.1:9\"]}},\n"
        " \"routes\": [{\"prefix\": \"/\", \"upstream\": \"up\",\n"
        "  \"allow\": [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\", \"fd00::/8\"],\n"
        "  \"deny\": [\"10.9.0.0/16\", \"fd00:9::/32\"]},\n"
        "  {\"prefix\": \"/open\", \"upstream\": \"up\", \"deny\": [\"0.0.0.0/0\"]}]}\n";
    gw_config *cfg;
    colony_config_error err;
    if (build(text, &cfg, &err)) fail_msg("%d %s: %s", err.line, err.key, err.reason);
    const gw_access *a = cfg->routes[0].access;
    assert_true(colony__gw_access_ip_allowed(a, "127.0.0.1"));
    assert_true(colony__gw_access_ip_allowed(a, "10.200.3.4"));
    assert_true(colony__gw_access_ip_allowed(a, "::1"));
    assert_true(colony__gw_access_ip_allowed(a, "fd12::7"));
    assert_true(colony__gw_access_ip_allowed(a, "::ffff:10.1.2.3"));
    assert_false(colony__gw_access_ip_allowed(a, "127.0.0.2"));
    assert_false(colony__gw_access_ip_allowed(a, "11.0.0.1"));
    assert_false(colony__gw_access_ip_allowed(a, "10.9.4.4")); /* deny wins */
    assert_false(colony__gw_access_ip_allowed(a, "::ffff:10.9.4.4"));
    assert_false(colony__gw_access_ip_allowed(a, "fd00:9::1"));
    assert_false(colony__gw_access_ip_allowed(a, "::2"));
    assert_false(colony__gw_access_ip_allowed(a, "unix"));
    const gw_access *b = cfg->routes[1].access;
    assert_false(colony__gw_access_ip_allowed(b, "192.168.1.1"));
    assert_true(colony__gw_access_ip_allowed(b, "::1")); /* an IPv4 block says nothing of v6 */
    assert_null(NULL);
    colony__gw_config_unref(cfg);
}

static const char *good =
    "{\n"
    "  \"upstreams\": {\"up\": {\"targets\": [\"http://127.0.0.1:9\"]}},\n"
    "  \"routes\": [\n"
    "    {\"prefix\": \"/\", \"upstream\": \"up\",\n"
    "     \"jwt\": {\"keys\": [{\"kid\": \"k1\", \"alg\": \"HS256\",\n"
    "                        \"secret\": \"" SECRET "\"}],\n"
    "             \"issuer\": \"i\", \"audience\": \"a\", \"leeway\": \"30s\",\n"
    "             \"roles\": [\"admin\"], \"claims_to_headers\": {\"sub\": \"X-User-ID\"}},\n"
    "     \"api_keys\": {\"header\": \"X-Key\", \"keys\": {\"0123456789abcdef\": \"mobile\"}},\n"
    "     \"cors\": {\"origins\": [\"https://a.example\"], \"methods\": [\"GET\"],\n"
    "              \"headers\": [\"X-Key\"], \"credentials\": true, \"max_age\": \"10m\",\n"
    "              \"expose_headers\": [\"X-Request-ID\"]},\n"
    "     \"allow\": [\"127.0.0.1\"], \"deny\": [\"10.0.0.0/8\"], \"max_body\": \"1mb\"}\n"
    "  ]\n"
    "}\n";

static void refused(const char *from, const char *to, int line, const char *key, const char *reason)
{
    gw_test_refused_in(good, from, to, line, key, reason);
}

static void mistakes_name_their_line(void **state)
{
    (void)state;
    gw_config *cfg;
    colony_config_error err;
    if (build(good, &cfg, &err)) fail_msg("%d %s: %s", err.line, err.key, err.reason);
    const gw_access *a = cfg->routes[0].access;
    assert_int_equal(a->max_body, 1 << 20);
    assert_int_equal(a->napi_keys, 1);
    assert_string_equal(a->api_key_header, "X-Key");
    colony__gw_config_unref(cfg);

    refused("\"leeway\"", "\"leway\"", 7, "routes.0.jwt.leway", "unknown key");
    refused("\"alg\": \"HS256\"", "\"alg\": \"none\"", 5, "routes.0.jwt.keys.0.alg", "HS256");
    refused("\"alg\": \"HS256\"", "\"alg\": \"RS256\"", 5, "routes.0.jwt.keys.0.alg",
            "verifies only HS256");
    refused("\"secret\": \"" SECRET "\"", "\"secret\": \"short\"", 6, "routes.0.jwt.keys.0.secret",
            "32 bytes");
    refused("\"secret\": \"" SECRET "\"", "\"pem\": \"-----BEGIN PUBLIC KEY-----\\nxx\"", 6,
            "routes.0.jwt.keys.0.pem", "not a PEM");
    refused("\"secret\": \"" SECRET "\"", "\"pem_file\": \"/nonexistent.pem\"", 6,
            "routes.0.jwt.keys.0.pem_file", "cannot read");
    refused("\"keys\": [{", "\"algorithms\": [\"none\"], \"keys\": [{", 5,
            "routes.0.jwt.algorithms", "never none");
    refused("\"kid\": \"k1\", \"alg\": \"HS256\",\n",
            "\"kid\": \"k1\", \"alg\": \"HS256\", \"secret\": \"" SECRET
            "\"},{\"kid\": \"k1\", \"alg\": \"HS256\",\n",
            5, "routes.0.jwt.keys", "two keys have kid \"k1\"");
    refused("\"kid\": \"k1\", \"alg\": \"HS256\",", "\"kid\": \"k1\",", 5, "routes.0.jwt.keys.0",
            "needs \"alg\"");
    refused("\"leeway\": \"30s\"", "\"leeway\": \"soon\"", 7, "routes.0.jwt.leeway", "duration");
    refused("\"roles\": [\"admin\"]", "\"roles\": []", 8, "routes.0.jwt.roles", "array");
    refused("\"sub\": \"X-User-ID\"", "\"sub\": \"X User\"", 8,
            "routes.0.jwt.claims_to_headers.sub", "header name");
    refused("\"0123456789abcdef\": \"mobile\"", "\"0123\": \"mobile\"", 9,
            "routes.0.api_keys.keys.0123", "16 characters");
    refused("\"0123456789abcdef\": \"mobile\"", "\"0123456789abcdef\": 3", 9,
            "routes.0.api_keys.keys.0123456789abcdef", "consumer");
    refused("\"header\": \"X-Key\"", "\"heder\": \"X-Key\"", 9, "routes.0.api_keys.heder",
            "unknown key");
    refused("\"origins\": [\"https://a.example\"]", "\"origins\": [\"*\"]", 11,
            "routes.0.cors.credentials", "list the origins");
    refused("\"https://a.example\"", "\"https://a.example/app\"", 10, "routes.0.cors.origins",
            "without a path");
    refused("\"max_age\": \"10m\"", "\"max_age\": \"2d\"", 11, "routes.0.cors.max_age", "duration");
    refused("\"methods\": [\"GET\"]", "\"methods\": [\"G T\"]", 10, "routes.0.cors.methods",
            "not a method");
    refused("\"expose_headers\"", "\"expose\"", 12, "routes.0.cors.expose", "unknown key");
    refused("\"allow\": [\"127.0.0.1\"]", "\"allow\": [\"127.0.0.300\"]", 13, "routes.0.allow.0",
            "not an IP");
    refused("\"deny\": [\"10.0.0.0/8\"]", "\"deny\": [\"10.0.0.1/8\"]", 13, "routes.0.deny.0",
            "bits set below");
    refused("\"deny\": [\"10.0.0.0/8\"]", "\"deny\": [\"::/129\"]", 13, "routes.0.deny.0",
            "not an IP");
    refused("\"max_body\": \"1mb\"", "\"max_body\": \"lots\"", 13, "routes.0.max_body", "size");
    refused("\"max_body\": \"1mb\"", "\"max_body\": 0", 13, "routes.0.max_body", "size");
}

/* Every allocation failure while building the security keys is refused
 * cleanly (LeakSanitizer checks nothing is left behind). */
static void allocation_failures(void **state)
{
    (void)state;
    assert_true(gw_test_allocation_failures(good) > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_tokens_of_each_algorithm),
        cmocka_unit_test(every_refusal),
        cmocka_unit_test(jwks_file),
        cmocka_unit_test(large_rsa_key),
        cmocka_unit_test(ip_lists),
        cmocka_unit_test(mistakes_name_their_line),
        cmocka_unit_test(allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
