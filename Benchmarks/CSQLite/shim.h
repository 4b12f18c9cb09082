#include <sqlite3.h>
// SQLITE_TRANSIENT is a macro Swift cannot import: copy bound blobs.
static inline void (*tagoedge_sqlite_transient(void))(void *) { return SQLITE_TRANSIENT; }
