/* The "tls" object of an upstream (config.h, docs/gateway.md "https
 * upstreams"): how the gateway verifies the upstream (ca_file, server_name),
 * the client certificate it presents (cert, key: mTLS, nginx's
 * proxy_ssl_certificate / proxy_ssl_certificate_key), and for a service
 * upstream which instances speak TLS (instances: "all" or "marked"). Files
 * are read now, so a missing file, a certificate that is not PEM or a key
 * that does not match is refused with file, line and reason instead of
 * failing every request later. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "gateway/config_upstream.h"

/* OpenSSL's reason for the last failure, or what. */
static const char *ssl_reason(const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    return why ? why : what;
}

/* Opens path for reading, or fails at key with the system's reason. */
static int open_file(gw_parse *p, const char *key, const char *what, const char *path, FILE **f)
{
    *f = fopen(path, "r");
    if (*f) return 0;
    return colony__gw_parse_fail(p, key, "%s '%s': %s", what, path, strerror(errno));
}

/* The client certificate (first of the PEM chain) and its key: both
 * readable, parsed, and the key the certificate's. */
static int check_client_cert(gw_parse *p, const char *cert_file, const char *key_file)
{
    FILE *f = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    ERR_clear_error();
    int rc = open_file(p, "cert", "client certificate", cert_file, &f);
    if (!rc) {
        cert = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        if (!cert)
            rc = colony__gw_parse_fail(p, "cert",
                                       "client certificate '%s' is not a PEM certificate (%s)",
                                       cert_file, ssl_reason("unreadable"));
    }
    if (!rc) rc = open_file(p, "key", "client key", key_file, &f);
    if (!rc) {
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        if (!key)
            rc = colony__gw_parse_fail(p, "key", "client key '%s' is not a PEM private key (%s)",
                                       key_file, ssl_reason("unreadable"));
    }
    if (!rc && X509_check_private_key(cert, key) != 1)
        rc = colony__gw_parse_fail(p, "key", "client key '%s' does not match the certificate '%s'",
                                   key_file, cert_file);
    ERR_clear_error();
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

int colony__gw_parse_upstream_tls(gw_parse *p, const json_t *tls, gw_upstream *u)
{
    static const char *const keys[] = {"ca_file", "server_name", "cert", "key", "instances", NULL};
    size_t at = colony__gw_parse_push(p, "tls");
    char *instances = NULL;
    int rc = 0;
    if (!json_is_object(tls)) rc = colony__gw_parse_fail(p, NULL, "\"tls\" must be an object");
    if (!rc) rc = colony__gw_parse_only(p, tls, keys);
    if (!rc) rc = colony__gw_parse_string(p, tls, "ca_file", 0, &u->tls_ca_file);
    if (!rc) rc = colony__gw_parse_string(p, tls, "server_name", 0, &u->tls_server_name);
    if (!rc) rc = colony__gw_parse_string(p, tls, "cert", 0, &u->tls_cert_file);
    if (!rc) rc = colony__gw_parse_string(p, tls, "key", 0, &u->tls_key_file);
    if (!rc) rc = colony__gw_parse_string(p, tls, "instances", 0, &instances);
    if (!rc && u->tls_ca_file) {
        FILE *f = NULL;
        rc = open_file(p, "ca_file", "CA file", u->tls_ca_file, &f);
        if (f) fclose(f);
    }
    if (!rc && !u->tls_cert_file != !u->tls_key_file)
        rc = colony__gw_parse_fail(p, u->tls_cert_file ? "cert" : "key",
                                   "a client certificate needs both \"cert\" and \"key\"");
    if (!rc && u->tls_cert_file) rc = check_client_cert(p, u->tls_cert_file, u->tls_key_file);
    if (!rc && instances) {
        if (strcmp(instances, "marked") == 0)
            u->https_marked = 1;
        else if (strcmp(instances, "all") != 0)
            rc = colony__gw_parse_fail(p, "instances",
                                       "\"instances\" is \"all\" (every instance is https) or "
                                       "\"marked\" (those the registry marks), not \"%s\"",
                                       instances);
        if (!rc && !u->service)
            rc = colony__gw_parse_fail(p, "instances",
                                       "\"instances\" is for a \"service\" upstream");
    }
    if (!rc && u->targets && !u->https)
        rc = colony__gw_parse_fail(p, NULL, "\"tls\" needs https:// targets");
    if (!rc && !u->https_marked) u->https = 1;
    colony__free(instances);
    colony__gw_parse_pop(p, at);
    return rc;
}
