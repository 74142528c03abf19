/* The store's notes (src/broker/store/notes.c), the last error text per
 * (group, entry): replaced, dropped, replayed after reopen, a torn tail cut,
 * and compaction (each 1 MiB of growth) keeping the notes of pending entries
 * and forgetting those of entries acked behind the engine's back (XACK). */
#include "broker_delivery_fixture.h"
#include <fcntl.h>
#include <unistd.h>

static void text_of(colony__bstream *st, const char *group, colony__bid id, const char *want)
{
    colony__bstr t;
    if (!want) {
        assert_int_equal(colony__bnote_get(st, group, id, &t), COLONY_ENOENT);
        return;
    }
    assert_int_equal(colony__bnote_get(st, group, id, &t), 0);
    assert_int_equal(t.len, strlen(want));
    assert_memory_equal(t.data, want, t.len);
}

static void notes_replace_drop_reopen_and_torn_tail(void **state)
{
    (void)state;
    colony__bid a = bd_pub("jobs", 1, 0, 0), b = bd_pub("jobs", 2, 0, 0);
    colony__bstream *st = colony__bstore_get(bd_store, "jobs");
    text_of(st, "g", a, NULL);
    assert_int_equal(colony__bnote_drop(st, "g", a), 0);
    assert_int_equal(colony__bnote_put(st, "g", a, "first", 5), 0);
    assert_int_equal(colony__bnote_put(st, "g", a, "second", 6), 0);
    assert_int_equal(colony__bnote_put(st, "h", a, "other group", 11), 0);
    assert_int_equal(colony__bnote_put(st, "g", b, "", 0), 0);
    assert_int_equal(colony__bnote_put(st, "g", b, "dropped", 7), 0);
    assert_int_equal(colony__bnote_drop(st, "g", b), 1);
    text_of(st, "g", a, "second");
    text_of(st, "h", a, "other group");
    bd_close();
    bd_open();
    st = colony__bstore_get(bd_store, "jobs");
    text_of(st, "g", a, "second");
    text_of(st, "h", a, "other group");
    text_of(st, "g", b, NULL);
    assert_int_equal(colony__bnote_put(st, "g", b, "last one", 8), 0);
    bd_close();
    /* a torn last record (a crash mid-write) is cut; the rest stays */
    char path[128];
    snprintf(path, sizeof(path), "%s/streams/jobs/notes.jnl", bd_dir);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t size = lseek(fd, 0, SEEK_END);
    assert_int_equal(ftruncate(fd, size - 3), 0);
    close(fd);
    bd_open();
    st = colony__bstore_get(bd_store, "jobs");
    text_of(st, "g", b, NULL);
    text_of(st, "g", a, "second");
}

static void compaction_keeps_pending_notes_only(void **state)
{
    (void)state;
    for (int i = 0; i < 10; i++)
        bd_pub("jobs", i, 0, 0);
    bd_got g = bd_next("jobs", "g", "c", 10, 10);
    colony__bstream *st = colony__bstore_get(bd_store, "jobs");
    /* entry 0 acked by XACK (the store, not the engine): its note lingers */
    assert_int_equal(colony__bnote_put(st, "g", g.id[0], "stale", 5), 0);
    assert_int_equal(colony__bgroup_ack(colony__bgroup_get(st, "g"), g.id[0]), 1);
    char big[4096];
    memset(big, 'e', sizeof(big));
    for (int round = 0; round < 300; round++) /* > 1 MiB of notes: compactions */
        for (size_t i = 1; i < 10; i++)
            assert_int_equal(colony__bnote_put(st, "g", g.id[i], big, sizeof(big) - round), 0);
    text_of(st, "g", g.id[0], NULL); /* pruned with the compaction */
    char path[128];
    snprintf(path, sizeof(path), "%s/streams/jobs/notes.jnl", bd_dir);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size < (1 << 20) + 64 * 1024); /* compacted, not 1.2 MB of history */
    bd_close();
    bd_open();
    st = colony__bstore_get(bd_store, "jobs");
    colony__bstr t;
    for (size_t i = 1; i < 10; i++) {
        assert_int_equal(colony__bnote_get(st, "g", g.id[i], &t), 0);
        assert_int_equal(t.len, sizeof(big) - 299);
    }
    text_of(st, "g", g.id[0], NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(notes_replace_drop_reopen_and_torn_tail, bd_setup,
                                        bd_teardown),
        cmocka_unit_test_setup_teardown(compaction_keeps_pending_notes_only, bd_setup, bd_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
