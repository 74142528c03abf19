/* The durable group committer (src/kit/durable): acks only after a successful
 * commit, a doubling capped backoff for a failing one, ops that arrive during
 * a commit go to the next batch, and shutdown gives a failing batch up with a
 * count. The commit function is a fake that fails on demand. */
#include <stdatomic.h>
#include <string.h>
#include "colony/error.h"
#include "core/alloc.h"
#include "kit/durable/durable.h"
#include "test_support.h"

typedef struct test_op {
    colony__list node;
    int id, acked, err;
} test_op;

typedef struct fake {
    atomic_int fail_left; /* attempts still to fail; < 0: fail forever */
    atomic_int commits;   /* attempts made */
    size_t batch_sizes[16];
    atomic_int nbatches;
    uv_sem_t started, release; /* used when block is set */
    int block;
    /* loop side */
    uint64_t delays[16];
    int nfailed, acks, acks_at_failures, gave_up;
    colony__durable *d;
} fake;

static int fake_commit(void *ud, const colony__list *batch)
{
    fake *f = ud;
    size_t n = 0;
    for (const colony__list *p = batch->next; p != batch; p = p->next)
        n++;
    int i = atomic_fetch_add(&f->nbatches, 1);
    if (i < 16) f->batch_sizes[i] = n;
    atomic_fetch_add(&f->commits, 1);
    if (f->block) {
        uv_sem_post(&f->started);
        uv_sem_wait(&f->release);
    }
    int left = atomic_load(&f->fail_left);
    if (left < 0) return COLONY_EIO;
    if (left > 0) {
        atomic_fetch_sub(&f->fail_left, 1);
        return COLONY_EIO;
    }
    return 0;
}

static void fake_batch(void *ud, int err, int giving_up, const colony__list *batch)
{
    (void)batch;
    fake *f = ud;
    if (giving_up) f->gave_up++;
    if (err && !giving_up && f->nfailed < 16) {
        f->delays[f->nfailed++] = colony__durable_retry_delay(f->d);
        f->acks_at_failures += f->acks;
        assert_true(colony__durable_failing(f->d));
    }
}

static void fake_ack(void *ud, colony__list *node, int err)
{
    fake *f = ud;
    test_op *op = COLONY__CONTAINER_OF(node, test_op, node);
    op->acked++;
    op->err = err;
    f->acks++;
}

static colony__durable *new_durable(uv_loop_t *loop, fake *f, uint64_t min_ms, uint64_t max_ms)
{
    colony__durable_options o = {.commit = fake_commit,
                                 .ack = fake_ack,
                                 .batch = fake_batch,
                                 .ud = f,
                                 .name = "test",
                                 .retry_min_ms = min_ms,
                                 .retry_max_ms = max_ms};
    colony__durable *d = NULL;
    assert_int_equal(colony__durable_new(&d, loop, &o), 0);
    f->d = d;
    return d;
}

static void close_durable(uv_loop_t *loop, colony__durable *d)
{
    colony__durable_close(d);
    colony_test_loop_close(loop);
}

/* Runs the loop until d is idle (bounded). */
static void run_until_idle(uv_loop_t *loop, colony__durable *d)
{
    uint64_t end = colony_test_now_ms() + 5000;
    while (!colony__durable_idle(d) && colony_test_now_ms() < end)
        colony_test_run_once(loop);
    assert_true(colony__durable_idle(d));
}

static void test_fails_then_succeeds_acks_only_after_success_with_capped_backoff(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    fake f;
    memset(&f, 0, sizeof(f));
    atomic_store(&f.fail_left, 6);
    colony__durable *d = new_durable(&loop, &f, 1, 8);
    test_op ops[3] = {{.id = 1}, {.id = 2}, {.id = 3}};
    for (int i = 0; i < 3; i++)
        colony__durable_push(d, &ops[i].node);
    run_until_idle(&loop, d);
    /* op 1 started a batch alone (the committer was idle) and failed 6 times;
     * ops 2 and 3 waited behind it and committed together afterwards. */
    assert_int_equal(atomic_load(&f.commits), 8);
    assert_int_equal(colony__durable_attempts(d), 8);
    for (int i = 0; i < 7; i++)
        assert_int_equal(f.batch_sizes[i], 1);
    assert_int_equal(f.batch_sizes[7], 2);
    assert_int_equal(f.nfailed, 6);
    assert_int_equal(f.acks_at_failures, 0); /* nothing acked while failing */
    const uint64_t want[6] = {1, 2, 4, 8, 8, 8};
    for (int i = 0; i < 6; i++)
        assert_int_equal(f.delays[i], want[i]);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ops[i].acked, 1);
        assert_int_equal(ops[i].err, 0);
    }
    assert_false(colony__durable_failing(d));
    assert_int_equal(colony__durable_retry_delay(d), 0);
    assert_int_equal(colony__durable_lost(d), 0);
    close_durable(&loop, d);
}

/* push_all queues a whole list before a batch starts: one batch of three,
 * where three pushes to an idle committer make a batch of one, then two. */
static void test_push_all_commits_the_list_as_one_batch(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    fake f;
    memset(&f, 0, sizeof(f));
    colony__durable *d = new_durable(&loop, &f, 1, 8);
    test_op ops[3] = {{.id = 1}, {.id = 2}, {.id = 3}};
    colony__list list;
    colony__list_init(&list);
    for (int i = 0; i < 3; i++)
        colony__list_push_back(&list, &ops[i].node);
    colony__durable_push_all(d, &list);
    assert_true(colony__list_empty(&list));
    run_until_idle(&loop, d);
    assert_int_equal(atomic_load(&f.nbatches), 1);
    assert_int_equal(f.batch_sizes[0], 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ops[i].acked, 1);
        assert_int_equal(ops[i].err, 0);
    }
    close_durable(&loop, d);
}

static void test_ops_arriving_during_a_commit_go_to_the_next_batch(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    fake f;
    memset(&f, 0, sizeof(f));
    f.block = 1;
    assert_int_equal(uv_sem_init(&f.started, 0), 0);
    assert_int_equal(uv_sem_init(&f.release, 0), 0);
    colony__durable *d = new_durable(&loop, &f, 1, 8);
    test_op ops[3] = {{.id = 1}, {.id = 2}, {.id = 3}};
    colony__durable_push(d, &ops[0].node);
    uv_sem_wait(&f.started); /* batch 1 is on the thread pool now */
    colony__durable_push(d, &ops[1].node);
    colony__durable_push(d, &ops[2].node);
    assert_int_equal(f.acks, 0);
    uv_sem_post(&f.release);
    /* batch 2 blocks too: let it through once it starts */
    uint64_t end = colony_test_now_ms() + 5000;
    int released = 0;
    while (!colony__durable_idle(d) && colony_test_now_ms() < end) {
        if (!released && atomic_load(&f.nbatches) == 2) {
            uv_sem_wait(&f.started);
            uv_sem_post(&f.release);
            released = 1;
        }
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_true(colony__durable_idle(d));
    assert_int_equal(atomic_load(&f.nbatches), 2);
    assert_int_equal(f.batch_sizes[0], 1);
    assert_int_equal(f.batch_sizes[1], 2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ops[i].acked, 1);
    uv_sem_destroy(&f.started);
    uv_sem_destroy(&f.release);
    close_durable(&loop, d);
}

static void test_shutdown_gives_up_a_failing_batch_with_a_count(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    fake f;
    memset(&f, 0, sizeof(f));
    atomic_store(&f.fail_left, -1);
    colony__durable *d = new_durable(&loop, &f, 1000, 1000); /* the retry never comes */
    test_op ops[3] = {{.id = 1}, {.id = 2}, {.id = 3}};
    colony__durable_push(d, &ops[0].node);
    colony__durable_push(d, &ops[1].node);
    uint64_t end = colony_test_now_ms() + 5000;
    while (f.nfailed == 0 && colony_test_now_ms() < end)
        colony_test_run_once(&loop);
    assert_int_equal(f.nfailed, 1);
    colony__durable_push(d, &ops[2].node); /* queued behind the failing batch */
    assert_false(colony__durable_idle(d));
    uint64_t t0 = colony_test_now_ms();
    colony__durable_shutdown(d);
    run_until_idle(&loop, d);
    assert_true(colony_test_now_ms() - t0 < 900); /* the last attempt came at once */
    assert_int_equal(f.gave_up, 1);
    assert_int_equal(colony__durable_lost(d), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ops[i].acked, 1);
        assert_int_equal(ops[i].err, COLONY_EIO);
    }
    assert_int_equal(atomic_load(&f.commits), 2);
    close_durable(&loop, d);
}

static void test_close_hands_back_queued_ops(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    fake f;
    memset(&f, 0, sizeof(f));
    atomic_store(&f.fail_left, -1);
    colony__durable *d = new_durable(&loop, &f, 1000, 1000);
    test_op ops[2] = {{.id = 1}, {.id = 2}};
    colony__durable_push(d, &ops[0].node);
    uint64_t end = colony_test_now_ms() + 5000;
    while (f.nfailed == 0 && colony_test_now_ms() < end)
        colony_test_run_once(&loop);
    colony__durable_push(d, &ops[1].node);
    colony__durable_close(d); /* waiting for a retry: nothing on the thread pool */
    assert_int_equal(ops[0].err, COLONY_ECANCELED);
    assert_int_equal(ops[1].err, COLONY_ECANCELED);
    colony_test_loop_close(&loop);
}

static void test_new_checks_arguments_and_memory(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    colony__durable *d = (colony__durable *)1;
    colony__durable_options o = {.commit = fake_commit};
    assert_int_equal(colony__durable_new(&d, &loop, &o), COLONY_EINVAL);
    assert_null(d);
    o.ack = fake_ack;
    colony__alloc_fail_after(0);
    assert_int_equal(colony__durable_new(&d, &loop, &o), COLONY_ENOMEM);
    assert_int_equal(colony__alloc_failures(), 1);
    colony__alloc_fail_reset();
    assert_null(d);
    colony_test_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fails_then_succeeds_acks_only_after_success_with_capped_backoff),
        cmocka_unit_test(test_push_all_commits_the_list_as_one_batch),
        cmocka_unit_test(test_ops_arriving_during_a_commit_go_to_the_next_batch),
        cmocka_unit_test(test_shutdown_gives_up_a_failing_batch_with_a_count),
        cmocka_unit_test(test_close_hands_back_queued_ops),
        cmocka_unit_test(test_new_checks_arguments_and_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
