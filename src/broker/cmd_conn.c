/* Connection commands: PING, ECHO, QUIT, HELLO, AUTH, SELECT, RESET and
 * CLIENT ID/GETNAME/SETNAME/SETINFO/INFO/LIST, with redis-server 7's replies
 * and errors. One user exists, "default"; with requirepass set it needs that
 * password (Redis's requirepass), without it any password is accepted for
 * "default" (Redis's nopass default user). */
#include <stdio.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "broker/commands.h"

#define WRONGPASS "WRONGPASS invalid username-password pair or user is disabled."

int colony__cmd_ping(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    if (argc > 2) return colony__broker_reply_arity(c, "ping");
    if (colony__broker_subs_count(&c->subs)) {
        /* RESP2 in subscribed mode: the push-like ["pong", msg] form */
        int rc = colony__resp_array(&c->out, 2);
        if (!rc) rc = colony__resp_bulk(&c->out, "pong", 4);
        if (!rc)
            rc = colony__resp_bulk(&c->out, argc == 2 ? argv[1].ptr : "",
                                   argc == 2 ? argv[1].len : 0);
        return rc;
    }
    if (argc == 2) return colony__resp_bulk(&c->out, argv[1].ptr, argv[1].len);
    return colony__resp_simple(&c->out, "PONG");
}

int colony__cmd_echo(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argc;
    return colony__resp_bulk(&c->out, argv[1].ptr, argv[1].len);
}

int colony__cmd_quit(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argv;
    (void)argc;
    colony__broker_client_close_after_reply(c);
    return colony__resp_simple(&c->out, "OK");
}

static int password_ok(colony__broker_client *c, const colony__resp_arg *user,
                       const colony__resp_arg *pass)
{
    if (user->len != 7 || memcmp(user->ptr, "default", 7) != 0) return 0; /* case counts */
    const char *want = c->srv->settings.requirepass;
    if (!want || !*want) return 1;
    /* the same time for any wrong password of the same length */
    size_t n = strlen(want);
    if (pass->len != n) return 0;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(pass->ptr[i] ^ want[i]);
    return diff == 0;
}

int colony__cmd_auth(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    if (argc > 3) return colony__resp_error(&c->out, "ERR syntax error");
    const char *want = c->srv->settings.requirepass;
    colony__resp_arg user = {"default", 7, 0};
    const colony__resp_arg *pass = &argv[1];
    if (argc == 2) {
        if (!want || !*want)
            return colony__resp_error(&c->out, "ERR AUTH <password> called without any password "
                                               "configured for the default user. Are you sure your "
                                               "configuration is correct?");
    } else {
        user = argv[1];
        pass = &argv[2];
    }
    if (!password_ok(c, &user, pass)) return colony__resp_error(&c->out, WRONGPASS);
    c->authenticated = 1;
    c->parser.unauthenticated = 0;
    return colony__resp_simple(&c->out, "OK");
}

/* Redis's validateClientName: printable ASCII without spaces. */
static int name_ok(const colony__resp_arg *a)
{
    for (size_t i = 0; i < a->len; i++)
        if (a->ptr[i] < '!' || a->ptr[i] > '~') return 0;
    return 1;
}

/* Sets *field to a copy of a (NULL when a is empty). 0 or COLONY_ENOMEM. */
static int set_field(char **field, const colony__resp_arg *a)
{
    char *v = NULL;
    if (a->len) {
        v = colony__strndup(a->ptr, a->len);
        if (!v) return COLONY_ENOMEM;
    }
    colony__free(*field);
    *field = v;
    return 0;
}

#define BAD_NAME "ERR Client names cannot contain spaces, newlines or special characters."

int colony__cmd_hello(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    long long ver = 0;
    if (argc >= 2) {
        if (!colony__resp_parse_ll(argv[1].ptr, argv[1].len, &ver))
            return colony__resp_error(&c->out,
                                      "ERR Protocol version is not an integer or out of range");
        if (ver < 2 || ver > 3)
            return colony__resp_error(&c->out, "NOPROTO unsupported protocol version");
    }
    const colony__resp_arg *user = NULL, *pass = NULL, *name = NULL;
    for (size_t j = 2; j < argc; j++) {
        size_t more = argc - 1 - j;
        if (colony__broker_arg_is(&argv[j], "auth") && more >= 2) {
            user = &argv[j + 1];
            pass = &argv[j + 2];
            j += 2;
        } else if (colony__broker_arg_is(&argv[j], "setname") && more) {
            name = &argv[j + 1];
            if (!name_ok(name)) return colony__resp_error(&c->out, BAD_NAME);
            j++;
        } else {
            char opt[129];
            return colony__resp_errorf(&c->out, "ERR Syntax error in HELLO option '%s'",
                                       colony__broker_arg_str(&argv[j], opt, sizeof(opt)));
        }
    }
    if (user && pass) {
        if (!password_ok(c, user, pass)) return colony__resp_error(&c->out, WRONGPASS);
        c->authenticated = 1;
        c->parser.unauthenticated = 0;
    }
    if (!c->authenticated)
        return colony__resp_error(
            &c->out, "NOAUTH HELLO must be called with the client already authenticated, "
                     "otherwise the HELLO AUTH <user> <pass> option can be used to authenticate "
                     "the client and select the RESP protocol version at the same time");
    /* RESP3 is not spoken: the one version past the checks Redis makes */
    if (ver == 3) return colony__resp_error(&c->out, "NOPROTO unsupported protocol version");
    if (name && set_field(&c->name, name)) return COLONY_ENOMEM;
    /* server "redis" and a Redis version: clients pick features by them; the
     * version is the Redis whose replies the broker gives */
    int rc = colony__resp_array(&c->out, 14);
    if (!rc) rc = colony__resp_bulk_str(&c->out, "server");
    if (!rc) rc = colony__resp_bulk_str(&c->out, "redis");
    if (!rc) rc = colony__resp_bulk_str(&c->out, "version");
    if (!rc) rc = colony__resp_bulk_str(&c->out, COLONY__BROKER_REDIS_VERSION);
    if (!rc) rc = colony__resp_bulk_str(&c->out, "proto");
    if (!rc) rc = colony__resp_int(&c->out, 2);
    if (!rc) rc = colony__resp_bulk_str(&c->out, "id");
    if (!rc) rc = colony__resp_int(&c->out, (long long)c->id);
    if (!rc) rc = colony__resp_bulk_str(&c->out, "mode");
    if (!rc) rc = colony__resp_bulk_str(&c->out, "standalone");
    if (!rc) rc = colony__resp_bulk_str(&c->out, "role");
    if (!rc) rc = colony__resp_bulk_str(&c->out, "master");
    if (!rc) rc = colony__resp_bulk_str(&c->out, "modules");
    if (!rc) rc = colony__resp_array(&c->out, 0);
    return rc;
}

int colony__cmd_select(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argc;
    long long db;
    if (!colony__resp_parse_ll(argv[1].ptr, argv[1].len, &db))
        return colony__resp_error(&c->out, "ERR value is not an integer or out of range");
    if (db < -2147483648LL || db > 2147483647LL)
        return colony__resp_error(
            &c->out, "ERR value is out of range, value must between -2147483648 and 2147483647");
    if (db != 0) return colony__resp_error(&c->out, "ERR DB index is out of range");
    return colony__resp_simple(&c->out, "OK");
}

int colony__cmd_reset(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argv;
    (void)argc;
    colony__broker_subs_drop(c);
    colony__broker_subs_init(&c->subs);
    colony__free(c->name);
    c->name = NULL;
    const char *want = c->srv->settings.requirepass;
    c->authenticated = !want || !*want;
    c->parser.unauthenticated = !c->authenticated;
    return colony__resp_simple(&c->out, "RESET");
}

int colony__cmd_client_id(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argv;
    (void)argc;
    return colony__resp_int(&c->out, (long long)c->id);
}

int colony__cmd_client_getname(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argv;
    (void)argc;
    return c->name ? colony__resp_bulk_str(&c->out, c->name) : colony__resp_null_bulk(&c->out);
}

int colony__cmd_client_setname(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argc;
    if (!name_ok(&argv[2])) return colony__resp_error(&c->out, BAD_NAME);
    if (set_field(&c->name, &argv[2])) return COLONY_ENOMEM;
    return colony__resp_simple(&c->out, "OK");
}

int colony__cmd_client_setinfo(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argc;
    char attr[129];
    colony__broker_arg_str(&argv[2], attr, sizeof(attr));
    char **field;
    if (colony__broker_arg_is(&argv[2], "lib-name"))
        field = &c->lib_name;
    else if (colony__broker_arg_is(&argv[2], "lib-ver"))
        field = &c->lib_ver;
    else
        return colony__resp_errorf(&c->out, "ERR Unrecognized option '%s'", attr);
    if (!name_ok(&argv[3]))
        return colony__resp_errorf(
            &c->out, "ERR %s cannot contain spaces, newlines or special characters.", attr);
    if (set_field(field, &argv[3])) return COLONY_ENOMEM;
    return colony__resp_simple(&c->out, "OK");
}

/* One CLIENT LIST line, with the fields Redis gives that the broker knows. */
static int client_line(colony_buf *b, const colony__broker_client *x)
{
    uint64_t now = colony__broker_now_ms();
    return colony_buf_appendf(
        b,
        "id=%llu addr=%s laddr=%s fd=%d name=%s age=%llu idle=%llu flags=%s db=0 sub=%zu "
        "psub=%zu ssub=0 multi=-1 qbuf=%zu obl=%zu omem=%zu cmd=%s user=default "
        "lib-name=%s lib-ver=%s resp=2\n",
        (unsigned long long)x->id, x->addr, x->laddr, -1, x->name ? x->name : "",
        (unsigned long long)((now - x->created_ms) / 1000),
        (unsigned long long)((now - x->last_ms) / 1000),
        colony__broker_subs_count(&x->subs) ? "P" : "N", x->subs.nchannels, x->subs.npatterns,
        x->in.len, x->out.len, colony__broker_client_pending(x), x->last_cmd ? x->last_cmd : "NULL",
        x->lib_name ? x->lib_name : "", x->lib_ver ? x->lib_ver : "");
}

int colony__cmd_client_info(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argv;
    (void)argc;
    colony_buf b;
    colony_buf_init(&b, 4096);
    int rc = client_line(&b, c);
    if (!rc) rc = colony__resp_bulk(&c->out, b.data, b.len);
    colony_buf_free(&b);
    return rc;
}

int colony__cmd_client_list(colony__broker_client *c, const colony__resp_arg *argv, size_t argc)
{
    (void)argv;
    if (argc > 2) return colony__resp_error(&c->out, "ERR syntax error");
    colony_buf b;
    colony_buf_init(&b, c->srv->settings.output_limit);
    int rc = 0;
    colony__list *n, *tmp;
    COLONY__LIST_FOREACH_SAFE(n, tmp, &c->srv->clients)
    {
        const colony__broker_client *x = COLONY__CONTAINER_OF(n, colony__broker_client, link);
        if (!rc && !x->closing) rc = client_line(&b, x);
    }
    if (!rc) rc = colony__resp_bulk(&c->out, b.data ? b.data : "", b.len);
    colony_buf_free(&b);
    return rc;
}
