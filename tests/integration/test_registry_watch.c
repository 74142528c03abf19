/* Blocking queries on colony registry: a watcher wakes soon after a relevant
 * change, is not woken by changes to other services or keys, and returns at
 * wait with the same index. Also ACLs (allow, deny, read-only, filtering). */
#include <jansson.h>
#include "registry_test_util.h"

typedef struct watcher {
    char path[256];
    rt_resp resp;
    uint64_t elapsed_ms;
    volatile int done;
} watcher;

static void *watch(void *arg)
{
    watcher *w = arg;
    uint64_t start = colony_test_now_ms();
    rt_get(reg.port, w->path, &w->resp);
    w->elapsed_ms = colony_test_now_ms() - start;
    w->done = 1;
    return NULL;
}

static void register_web(const char *id)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"Name\":\"%s\",\"ID\":\"%s\",\"Port\":1}", "web", id);
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register", body, &r), 0);
    assert_int_equal(r.status, 200);
}

static void test_service_watch(void **state)
{
    (void)state;
    rt_resp r;
    register_web("web-1");
    assert_int_equal(rt_get(reg.port, "/v1/health/service/web", &r), 0);
    unsigned long long idx = r.index;

    /* unrelated churn does not wake it: returns at wait with the same index */
    watcher *w = calloc(1, sizeof(*w));
    snprintf(w->path, sizeof(w->path), "/v1/health/service/web?index=%llu&wait=1s", idx);
    pthread_t th;
    pthread_create(&th, NULL, watch, w);
    usleep(100000);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(
            rt_put(reg.port, "/v1/agent/service/register", "{\"Name\":\"db\",\"Port\":5432}", &r),
            0);
        assert_int_equal(rt_put(reg.port, "/v1/kv/noise", "x", &r), 0);
    }
    pthread_join(th, NULL);
    assert_int_equal(w->resp.status, 200);
    assert_int_equal(w->resp.index, idx);
    assert_true(w->elapsed_ms >= 900);
    assert_true(w->elapsed_ms < 5000); /* 1s + at most 1/16 jitter, generous margin */

    /* a relevant change wakes it quickly */
    memset(w, 0, sizeof(*w));
    snprintf(w->path, sizeof(w->path), "/v1/health/service/web?index=%llu&wait=30s", idx);
    pthread_create(&th, NULL, watch, w);
    usleep(200000);
    assert_false(w->done);
    uint64_t changed_at = colony_test_now_ms();
    register_web("web-2");
    pthread_join(th, NULL);
    uint64_t woke_after = colony_test_now_ms() - changed_at;
    assert_int_equal(w->resp.status, 200);
    assert_true(w->resp.index > idx);
    assert_non_null(strstr(w->resp.body, "web-2"));
    assert_true(woke_after < 2000);

    /* deregistration wakes catalog watchers too */
    idx = w->resp.index;
    memset(w, 0, sizeof(*w));
    snprintf(w->path, sizeof(w->path), "/v1/catalog/service/web?index=%llu&wait=30s", idx);
    pthread_create(&th, NULL, watch, w);
    usleep(100000);
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/deregister/web-1", NULL, &r), 0);
    pthread_join(th, NULL);
    assert_true(w->resp.index > idx);
    assert_null(strstr(w->resp.body, "web-1"));
    free(w);
}

static void test_kv_watch(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/kv/cfg/a", "1", &r), 0);
    unsigned long long idx = r.index;
    watcher *w = calloc(1, sizeof(*w));
    snprintf(w->path, sizeof(w->path), "/v1/kv/cfg/a?index=%llu&wait=1s", idx);
    pthread_t th;
    pthread_create(&th, NULL, watch, w);
    usleep(100000);
    assert_int_equal(rt_put(reg.port, "/v1/kv/cfg/b", "other key", &r), 0);
    assert_int_equal(rt_put(reg.port, "/v1/kv/cfg/a2", "prefix sibling", &r), 0);
    pthread_join(th, NULL);
    assert_int_equal(w->resp.index, idx);
    assert_true(w->elapsed_ms >= 900);

    /* a prefix watcher sees sibling changes; a key watcher its key */
    assert_int_equal(rt_get(reg.port, "/v1/kv/cfg/?recurse", &r), 0);
    unsigned long long pidx = r.index;
    memset(w, 0, sizeof(*w));
    snprintf(w->path, sizeof(w->path), "/v1/kv/cfg/?recurse&index=%llu&wait=30s", pidx);
    pthread_create(&th, NULL, watch, w);
    usleep(100000);
    assert_int_equal(rt_http(reg.port, "DELETE", "/v1/kv/cfg/b", NULL, 0, NULL, &r), 0);
    pthread_join(th, NULL);
    assert_true(w->resp.index > pidx);
    assert_true(w->elapsed_ms < 3000);
    assert_null(strstr(w->resp.body, "cfg/b"));

    memset(w, 0, sizeof(*w));
    snprintf(w->path, sizeof(w->path), "/v1/kv/cfg/a?index=%llu&wait=30s", idx);
    pthread_create(&th, NULL, watch, w);
    usleep(100000);
    assert_int_equal(rt_put(reg.port, "/v1/kv/cfg/a", "2", &r), 0);
    pthread_join(th, NULL);
    assert_int_equal(w->resp.index, r.index);
    assert_non_null(strstr(w->resp.body, "\"Mg==\""));

    /* a missing key's watcher wakes when it is created */
    assert_int_equal(rt_get(reg.port, "/v1/kv/cfg/new", &r), 0);
    assert_int_equal(r.status, 404);
    memset(w, 0, sizeof(*w));
    snprintf(w->path, sizeof(w->path), "/v1/kv/cfg/new?index=%llu&wait=30s", r.index);
    pthread_create(&th, NULL, watch, w);
    usleep(100000);
    assert_int_equal(rt_put(reg.port, "/v1/kv/cfg/new", "here", &r), 0);
    pthread_join(th, NULL);
    assert_int_equal(w->resp.status, 200);
    free(w);
}

static void test_many_watchers_and_shutdown(void **state)
{
    (void)state;
    rt_resp r;
    assert_int_equal(rt_put(reg.port, "/v1/kv/w", "0", &r), 0);
    enum { N = 20 };
    watcher *ws = calloc(N, sizeof(*ws));
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        snprintf(ws[i].path, sizeof(ws[i].path), "/v1/kv/w?index=%llu&wait=5m", r.index);
        pthread_create(&th[i], NULL, watch, &ws[i]);
    }
    usleep(200000);
    /* a graceful stop answers parked queries at once instead of holding the drain */
    uint64_t start = colony_test_now_ms();
    int st = rt_stop(&reg, SIGTERM);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ws[i].resp.status, 200);
    }
    assert_true(colony_test_now_ms() - start < 3000);
    free(ws);
}

static void test_acl(void **state)
{
    (void)state;
    rt_cleanup(&reg);
    memset(&reg, 0, sizeof(reg));
    snprintf(reg.dir, sizeof(reg.dir), "/tmp/colony-registry-acl-XXXXXX");
    assert_non_null(mkdtemp(reg.dir));
    char acl_path[300];
    snprintf(acl_path, sizeof(acl_path), "%s/acl.json", reg.dir);
    FILE *f = fopen(acl_path, "w");
    fputs("{\"anonymous\":\"read\",\"tokens\":["
          "{\"token\":\"root\",\"management\":true},"
          "{\"token\":\"web-team\",\"service_prefix\":{\"web\":\"write\",\"\":\"read\"},"
          "\"key_prefix\":{\"config/web/\":\"write\",\"config/secret\":\"deny\",\"\":\"read\"}}]}",
          f);
    fclose(f);
    char flag[320];
    snprintf(flag, sizeof(flag), "--acl-file=%s", acl_path);
    const char *extra[] = {flag, NULL};
    rt_start(&reg, extra);

    rt_resp r;
    const char *web = "{\"Name\":\"web\",\"Port\":1}";
    const char *db = "{\"Name\":\"db\",\"Port\":2}";
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register", web, &r), 0);
    assert_int_equal(r.status, 403); /* anonymous is read-only */
    assert_non_null(strstr(r.body, "Permission denied"));
    assert_int_equal(rt_http(reg.port, "PUT", "/v1/agent/service/register", web, 0,
                             "X-Consul-Token: web-team\r\n", &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_int_equal(rt_http(reg.port, "PUT", "/v1/agent/service/register", db, 0,
                             "Authorization: Bearer web-team\r\n", &r),
                     0);
    assert_int_equal(r.status, 403);
    assert_int_equal(rt_put(reg.port, "/v1/agent/service/register?token=root", db, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(rt_http(reg.port, "PUT", "/v1/agent/service/register", db, 0,
                             "X-Consul-Token: wrong\r\n", &r),
                     0);
    assert_int_equal(r.status, 403);

    assert_int_equal(rt_http(reg.port, "PUT", "/v1/kv/config/web/port", "80", 0,
                             "X-Consul-Token: web-team\r\n", &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_int_equal(rt_http(reg.port, "PUT", "/v1/kv/config/db/port", "5432", 0,
                             "X-Consul-Token: web-team\r\n", &r),
                     0);
    assert_int_equal(r.status, 403);
    assert_int_equal(rt_put(reg.port, "/v1/kv/config/secret/pw?token=root", "hunter2", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(rt_http(reg.port, "GET", "/v1/kv/config/secret/pw", NULL, 0,
                             "X-Consul-Token: web-team\r\n", &r),
                     0);
    assert_int_equal(r.status, 403);
    assert_int_equal(rt_http(reg.port, "GET", "/v1/kv/config/?recurse", NULL, 0,
                             "X-Consul-Token: web-team\r\n", &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "secret")); /* filtered out of listings */
    assert_non_null(strstr(r.body, "config/web/port"));
    assert_int_equal(rt_get(reg.port, "/v1/catalog/services", &r), 0);
    assert_non_null(strstr(r.body, "\"db\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_service_watch, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_kv_watch, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_many_watchers_and_shutdown, rt_setup, rt_teardown),
        cmocka_unit_test_setup_teardown(test_acl, rt_setup, rt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
