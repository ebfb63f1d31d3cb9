/* A MariaDB Connector/C client for what no Rust driver sends: server-side cursors
 * (STMT_ATTR_CURSOR_TYPE = CURSOR_TYPE_READ_ONLY, rows fetched with COM_STMT_FETCH a few
 * at a time) and mysql_change_user. Built and run by tests/my_commands.rs.
 *
 * usage: cursor_client HOST PORT USER PASSWORD DB OTHER_USER OTHER_PASSWORD
 * Prints one "key value..." line per check; exits 1 with "error: ..." on the first failure. */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(MYSQL *c, MYSQL_STMT *s, const char *what) {
  if (s)
    printf("error: %s: %u %s\n", what, mysql_stmt_errno(s), mysql_stmt_error(s));
  else
    printf("error: %s: %u %s\n", what, mysql_errno(c), mysql_error(c));
  exit(1);
}

/* A prepared "SELECT id, @@port FROM cur_t WHERE id <= ? ORDER BY id" with a read-only
 * cursor fetching `prefetch` rows per COM_STMT_FETCH. */
struct cur {
  MYSQL_STMT *s;
  int limit, id, port;
  MYSQL_BIND param, res[2];
};

static void open_cursor(MYSQL *c, struct cur *k, int limit, unsigned long prefetch) {
  const char *sql = "SELECT id, @@port FROM cur_t WHERE id <= ? ORDER BY id";
  unsigned long type = CURSOR_TYPE_READ_ONLY;
  memset(k, 0, sizeof *k);
  k->limit = limit;
  if (!(k->s = mysql_stmt_init(c))) die(c, NULL, "stmt_init");
  if (mysql_stmt_prepare(k->s, sql, strlen(sql))) die(c, k->s, "prepare");
  if (mysql_stmt_attr_set(k->s, STMT_ATTR_CURSOR_TYPE, &type)) die(c, k->s, "cursor type");
  if (mysql_stmt_attr_set(k->s, STMT_ATTR_PREFETCH_ROWS, &prefetch)) die(c, k->s, "prefetch");
  k->param.buffer_type = MYSQL_TYPE_LONG;
  k->param.buffer = &k->limit;
  if (mysql_stmt_bind_param(k->s, &k->param)) die(c, k->s, "bind param");
  k->res[0].buffer_type = MYSQL_TYPE_LONG;
  k->res[0].buffer = &k->id;
  k->res[1].buffer_type = MYSQL_TYPE_LONG;
  k->res[1].buffer = &k->port;
  if (mysql_stmt_bind_result(k->s, k->res)) die(c, k->s, "bind result");
}

static void execute(MYSQL *c, struct cur *k) {
  if (mysql_stmt_execute(k->s)) die(c, k->s, "execute");
}

/* Fetches up to n rows (all when n < 0); returns how many, adds ids to *sum, keeps the port. */
static int fetch(MYSQL *c, struct cur *k, int n, long *sum, int *port) {
  int got = 0, rc;
  while (n < 0 || got < n) {
    rc = mysql_stmt_fetch(k->s);
    if (rc == MYSQL_NO_DATA) break;
    if (rc != 0) die(c, k->s, "fetch");
    *sum += k->id;
    *port = k->port;
    got++;
  }
  return got;
}

static void query_line(MYSQL *c, const char *key, const char *sql) {
  MYSQL_RES *r;
  MYSQL_ROW row;
  if (mysql_query(c, sql)) die(c, NULL, sql);
  if (!(r = mysql_store_result(c))) die(c, NULL, "store result");
  row = mysql_fetch_row(r);
  printf("%s %s\n", key, row && row[0] ? row[0] : "NULL");
  mysql_free_result(r);
}

int main(int argc, char **argv) {
  MYSQL *c;
  struct cur a, b;
  long sum;
  int n, port, port_b, timeout = 10;
  if (argc != 8) {
    fprintf(stderr, "usage: %s HOST PORT USER PASSWORD DB OTHER_USER OTHER_PASSWORD\n", argv[0]);
    return 2;
  }
  if (!(c = mysql_init(NULL))) return 1;
  mysql_options(c, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  mysql_options(c, MYSQL_OPT_READ_TIMEOUT, &timeout);
  if (!mysql_real_connect(c, argv[1], argv[3], argv[4], argv[5], atoi(argv[2]), NULL, 0))
    die(c, NULL, "connect");

  /* 1. A whole cursor, 7 rows per fetch. */
  open_cursor(c, &a, 100, 7);
  execute(c, &a);
  sum = 0;
  n = fetch(c, &a, -1, &sum, &port);
  printf("whole rows %d sum %ld port %d\n", n, sum, port);

  /* 2. Two cursors open at once, fetched in turns. */
  open_cursor(c, &b, 50, 5);
  execute(c, &a);
  execute(c, &b);
  {
    long sa = 0, sb = 0;
    int na = 0, nb = 0, ga, gb;
    do {
      ga = fetch(c, &a, 3, &sa, &port);
      gb = fetch(c, &b, 4, &sb, &port_b);
      na += ga;
      nb += gb;
    } while (ga || gb);
    printf("interleaved a %d %ld b %d %ld\n", na, sa, nb, sb);
  }

  /* 3. Reset in the middle of a cursor, then run it again from the start. */
  execute(c, &a);
  sum = 0;
  n = fetch(c, &a, 10, &sum, &port);
  if (mysql_stmt_reset(a.s)) die(c, a.s, "reset");
  execute(c, &a);
  sum = 0;
  n = fetch(c, &a, -1, &sum, &port);
  printf("after_reset rows %d sum %ld\n", n, sum);

  /* 4. Close with a cursor open; the session goes on. */
  execute(c, &b);
  sum = 0;
  fetch(c, &b, 2, &sum, &port);
  if (mysql_stmt_close(b.s)) die(c, NULL, "close");
  if (mysql_stmt_close(a.s)) die(c, NULL, "close");
  query_line(c, "after_close", "SELECT count(*) FROM cur_t");

  /* 5. Change of user: the session is reset and runs as the other user; a wrong password
   * is refused with 1045. */
  query_line(c, "user_before", "SELECT CURRENT_USER()");
  if (mysql_query(c, "SET @marker = 42")) die(c, NULL, "set marker");
  if (mysql_change_user(c, argv[6], argv[7], argv[5])) die(c, NULL, "change_user");
  query_line(c, "user_after", "SELECT CURRENT_USER()");
  query_line(c, "marker_after", "SELECT @marker");
  query_line(c, "rows_after", "SELECT count(*) FROM cur_t");
  if (!mysql_change_user(c, argv[3], "wrong-password", argv[5]))
    printf("error: change_user accepted a wrong password\n");
  else
    printf("wrong_password %u\n", mysql_errno(c));
  if (mysql_query(c, "SELECT CURRENT_USER()"))
    printf("after_wrong error %u\n", mysql_errno(c));
  else {
    MYSQL_RES *r = mysql_store_result(c);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    printf("after_wrong user %s\n", row && row[0] ? row[0] : "NULL");
    if (r) mysql_free_result(r);
  }
  mysql_close(c);
  return 0;
}
