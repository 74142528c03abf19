#include "core/json_write.h"
#include <stdio.h>

int colony__json_append_string(colony_buf *b, const char *s)
{
    if (!s) return colony_buf_append(b, "null", 4);
    int rc = colony_buf_append(b, "\"", 1);
    const char *run = s;
    for (; *s && !rc; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        rc = colony_buf_append(b, run, (size_t)(s - run));
        char esc[8];
        switch (c) {
        case '"':
            snprintf(esc, sizeof(esc), "\\\"");
            break;
        case '\\':
            snprintf(esc, sizeof(esc), "\\\\");
            break;
        case '\n':
            snprintf(esc, sizeof(esc), "\\n");
            break;
        case '\r':
            snprintf(esc, sizeof(esc), "\\r");
            break;
        case '\t':
            snprintf(esc, sizeof(esc), "\\t");
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            break;
        }
        if (!rc) rc = colony_buf_append_str(b, esc);
        run = s + 1;
    }
    if (!rc) rc = colony_buf_append(b, run, (size_t)(s - run));
    if (!rc) rc = colony_buf_append(b, "\"", 1);
    return rc;
}
