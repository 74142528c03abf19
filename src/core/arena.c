/* Request-scoped arena: a chain of blocks, bump allocation, one free. Large
 * allocations get a block of their own so the common block size stays small. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "colony/arena.h"
#include "core/alloc.h"

#define ARENA_ALIGN 16

typedef struct arena_block {
    struct arena_block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
} arena_block;

struct colony_arena {
    arena_block *head;  /* current block */
    arena_block *first; /* the original block, kept across resets */
    size_t block_size;
    size_t max_total;
    size_t total; /* bytes handed out */
};

static arena_block *block_new(size_t size)
{
    arena_block *b = colony__malloc(sizeof(*b) + size);
    if (!b) return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

colony_arena *colony_arena_new(size_t block_size, size_t max_total)
{
    colony_arena *a = colony__malloc(sizeof(*a));
    if (!a) return NULL;
    a->block_size = block_size ? block_size : 4096;
    a->max_total = max_total;
    a->total = 0;
    a->head = a->first = block_new(a->block_size);
    if (!a->head) {
        colony__free(a);
        return NULL;
    }
    return a;
}

void *colony_arena_alloc(colony_arena *a, size_t n)
{
    if (n == 0) n = 1;
    if (n > SIZE_MAX - ARENA_ALIGN) return NULL;
    size_t rounded = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (a->max_total && (rounded > a->max_total || a->total > a->max_total - rounded)) return NULL;
    arena_block *b = a->head;
    if (b->size - b->used < rounded) {
        size_t size = rounded > a->block_size / 2 ? rounded : a->block_size;
        arena_block *nb = block_new(size);
        if (!nb) return NULL;
        if (size == a->block_size) {
            nb->next = a->head;
            a->head = nb;
        } else {
            /* A dedicated block goes behind the head so the head keeps its free space. */
            nb->next = a->head->next;
            a->head->next = nb;
        }
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += rounded;
    a->total += rounded;
    return p;
}

void *colony_arena_calloc(colony_arena *a, size_t n)
{
    void *p = colony_arena_alloc(a, n);
    if (p) memset(p, 0, n);
    return p;
}

char *colony_arena_strndup(colony_arena *a, const char *s, size_t n)
{
    char *d = colony_arena_alloc(a, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *colony_arena_strdup(colony_arena *a, const char *s)
{
    return colony_arena_strndup(a, s, strlen(s));
}

char *colony_arena_sprintf(colony_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *d = colony_arena_alloc(a, (size_t)n + 1);
    if (!d) return NULL;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

size_t colony_arena_used(const colony_arena *a)
{
    return a->total;
}

void colony_arena_reset(colony_arena *a)
{
    arena_block *b = a->head;
    while (b) {
        arena_block *next = b->next;
        if (b != a->first) colony__free(b);
        b = next;
    }
    a->first->used = 0;
    a->first->next = NULL;
    a->head = a->first;
    a->total = 0;
}

void colony_arena_free(colony_arena *a)
{
    if (!a) return;
    arena_block *b = a->head;
    while (b) {
        arena_block *next = b->next;
        colony__free(b);
        b = next;
    }
    colony__free(a);
}
