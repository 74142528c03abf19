#include "core/json_write.h"

int colony__json_append_string(colony_buf *b, const char *s)
{
    if (!s) return colony_buf_append(b, "null", 4);
    int rc = colony_buf_append(b, "\"", 1);
    const char *run = s;
    for (; *s && !rc; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        rc = colony_buf_append(b, run, (size_t)(s - run));
        char esc[6];
        if (!rc) rc = colony_buf_append(b, esc, colony__json_escape(c, esc));
        run = s + 1;
    }
    if (!rc) rc = colony_buf_append(b, run, (size_t)(s - run));
    if (!rc) rc = colony_buf_append(b, "\"", 1);
    return rc;
}
