// pgbouncer (transaction pooling) and pgpool-II (raw mode, one backend), each configured in the
// temp dir on free ports and run in the foreground as the postgres user.
import { chownSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { binaries } from "./system.mjs";
import { freePort, portOpen, startProcess, waitFor } from "./util.mjs";
import { BENCH_DB, writeOwned } from "./postgres.mjs";

/**
 * One pgbouncer with a database alias per PostgreSQL: `airlock_bench` (5432) and, when there is a
 * private server, `airlock_bench_many`. max_client_conn 1000 so 200 clients fit; default_pool_size
 * 20 server connections per database.
 */
export async function startPgbouncer(dir, user, backends) {
  mkdirSync(dir, { recursive: true });
  chownSync(dir, user.uid, user.gid);
  const port = await freePort();
  const databases = Object.entries(backends)
    .map(([alias, backendPort]) => `${alias} = host=127.0.0.1 port=${backendPort} dbname=${BENCH_DB} user=postgres`)
    .join("\n");
  writeOwned(join(dir, "userlist.txt"), `"postgres" ""\n`, user);
  writeOwned(
    join(dir, "pgbouncer.ini"),
    `[databases]
${databases}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${join(dir, "userlist.txt")}
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
min_pool_size = 0
reserve_pool_size = 0
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
stats_period = 60
logfile = ${join(dir, "pgbouncer.log")}
pidfile = ${join(dir, "pgbouncer.pid")}
`,
    user,
  );
  const handle = startProcess("pgbouncer", binaries.pgbouncer, [join(dir, "pgbouncer.ini")], { logFile: join(dir, "pgbouncer.out"), uid: user.uid, gid: user.gid, cwd: dir });
  await waitFor("pgbouncer to listen", () => portOpen(port), 20_000, handle);
  return { port, handle, settings: { pool_mode: "transaction", max_client_conn: 1000, default_pool_size: 20 } };
}

/**
 * pgpool-II in raw mode with one backend: no load balancing, no replication checks, no health
 * checks, connection cache on. Every client needs a pgpool child process, so num_init_children is
 * the most concurrent clients (more wait in the listen queue): `children` of them.
 */
export async function startPgpool(dir, user, backendPort, children) {
  mkdirSync(dir, { recursive: true });
  chownSync(dir, user.uid, user.gid);
  const port = await freePort();
  const pcpPort = await freePort();
  writeOwned(join(dir, "pcp.conf"), "", user);
  writeOwned(join(dir, "pool_hba.conf"), "host all all 127.0.0.1/32 trust\n", user);
  writeOwned(join(dir, "pool_passwd"), "", user);
  writeOwned(
    join(dir, "pgpool.conf"),
    `backend_clustering_mode = 'raw'
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = '${dir}'
pcp_listen_addresses = ''
pcp_port = ${pcpPort}
pcp_socket_dir = '${dir}'
backend_hostname0 = '127.0.0.1'
backend_port0 = ${backendPort}
backend_weight0 = 1
backend_flag0 = 'DISALLOW_TO_FAILOVER'
enable_pool_hba = off
pool_passwd = ''
allow_clear_text_frontend_auth = off
num_init_children = ${children}
max_pool = 1
reserved_connections = 0
child_life_time = 0
child_max_connections = 0
connection_life_time = 0
client_idle_limit = 0
connection_cache = on
load_balance_mode = off
sr_check_period = 0
health_check_period = 0
failover_on_backend_error = off
use_watchdog = off
memory_cache_enabled = off
ssl = off
log_destination = 'stderr'
log_min_messages = warning
log_connections = off
log_statement = off
logdir = '${dir}'
pid_file_name = '${join(dir, "pgpool.pid")}'
`,
    user,
  );
  const handle = startProcess("pgpool", binaries.pgpool, ["-n", "-f", join(dir, "pgpool.conf"), "-F", join(dir, "pcp.conf"), "-a", join(dir, "pool_hba.conf")], {
    logFile: join(dir, "pgpool.out"),
    uid: user.uid,
    gid: user.gid,
    cwd: dir,
  });
  await waitFor("pgpool to listen", () => portOpen(port), 30_000, handle);
  return { port, handle, settings: { mode: "raw", num_init_children: children, max_pool: 1, connection_cache: "on" } };
}
