/* One intrusive doubly linked list for the whole tree (libuv's queue.h idea):
 * a colony__list node lives inside the element, and a list head is a node that
 * points at itself when empty. Insert and remove are O(1) and allocate nothing,
 * so they cannot fail. Use COLONY__CONTAINER_OF to get from a node back to its
 * element. */
#ifndef COLONY_CORE_LIST_H
#define COLONY_CORE_LIST_H

#include <stddef.h>

typedef struct colony__list {
    struct colony__list *next, *prev;
} colony__list;

#define COLONY__CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Walks every node of head; the body may remove the current node (safe form). */
#define COLONY__LIST_FOREACH_SAFE(node, tmp, head)                                                 \
    for ((node) = (head)->next, (tmp) = (node)->next; (node) != (head);                            \
         (node) = (tmp), (tmp) = (node)->next)

static inline void colony__list_init(colony__list *head)
{
    head->next = head->prev = head;
}

static inline int colony__list_empty(const colony__list *head)
{
    return head->next == head;
}

/* Links node at the tail of head (queue order: first in, first out). */
static inline void colony__list_push_back(colony__list *head, colony__list *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

static inline void colony__list_push_front(colony__list *head, colony__list *node)
{
    node->next = head->next;
    node->prev = head;
    head->next->prev = node;
    head->next = node;
}

/* Unlinks node and leaves it pointing at itself, so removing twice is harmless
 * and colony__list_linked() tells whether it is on a list. */
static inline void colony__list_remove(colony__list *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node->prev = node;
}

static inline int colony__list_linked(const colony__list *node)
{
    return node->next != node;
}

/* First node, or NULL when empty. */
static inline colony__list *colony__list_first(const colony__list *head)
{
    return head->next == head ? NULL : head->next;
}

/* Removes and returns the first node, or NULL when empty. */
static inline colony__list *colony__list_pop_front(colony__list *head)
{
    colony__list *n = colony__list_first(head);
    if (n) colony__list_remove(n);
    return n;
}

#endif
