// The MySQL side: the bench database on the machine's MariaDB (127.0.0.1:3306, root without a
// password), the user the agent logs in as, and the tables of the MySQL workloads.
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { progress, run } from "./util.mjs";
import { BULK_ROWS, BULK_TABLE } from "./postgres.mjs";

export const MYSQL_PORT = 3306;
export const MYSQL_DB = "airlock_bench";
/** The account the agent logs in as (and the mysql-direct target, so both read with the same grants). */
export const MYSQL_USER = "airlock_bench";
export const MYSQL_USER_HOST = "127.0.0.1";
/** Point lookups: like pgbench_accounts (aid, bid, abalance, filler). */
export const MYSQL_POINT_TABLE = "bench_accounts";
export const MYSQL_POINT_ROWS = 100_000;
export { BULK_ROWS as MYSQL_BULK_ROWS, BULK_TABLE as MYSQL_BULK_TABLE };

/** The command line client: mariadb, or mysql on older packages. */
function clientBinary() {
  for (const name of ["mariadb", "mysql"]) if (run("sh", ["-c", `command -v ${name}`], { allowFail: true }).status === 0) return name;
  return undefined;
}

/**
 * Runs SQL (from stdin, so no password shows in `ps`) as root on 127.0.0.1:3306; returns the
 * trimmed tab-separated output without column names.
 */
export function mariadb(sql, { database, allowFail = false } = {}) {
  const client = clientBinary();
  if (client === undefined) throw new Error("no mariadb or mysql command line client: install mariadb-client");
  const env = { ...process.env };
  delete env.MYSQL_PWD;
  const result = run(client, ["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", String(MYSQL_PORT), "-u", "root", "--batch", "--skip-column-names", ...(database === undefined ? [] : ["-D", database])], {
    input: sql,
    env,
    allowFail,
  });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** Version and limits of the server; throws with what to do when it is not there. */
export function mysqlFacts() {
  if (clientBinary() === undefined) throw new Error("the MySQL targets need the mariadb (or mysql) command line client: apt-get install mariadb-client");
  const out = mariadb("select version(), @@max_connections, @@innodb_buffer_pool_size", { allowFail: true });
  if (out === undefined) throw new Error(`the MySQL targets need MariaDB or MySQL on 127.0.0.1:${MYSQL_PORT} with user root and no password (\`mariadb -h 127.0.0.1 -u root\` failed)`);
  const [version, maxConnections, bufferPool] = out.split("\t");
  return { version, maxConnections: Number(maxConnections), bufferPoolBytes: Number(bufferPool) };
}

/**
 * The agent's account: created when missing, given a fresh random password for this run (written
 * to `passwordFile`, mode 600, read by the agent's password_file), and SELECT on the bench database.
 */
export function ensureMysqlUser(passwordFile) {
  const password = randomBytes(24).toString("base64url");
  const account = `'${MYSQL_USER}'@'${MYSQL_USER_HOST}'`;
  mariadb(
    `create database if not exists ${MYSQL_DB};
     create user if not exists ${account} identified by '${password}';
     alter user ${account} identified by '${password}';
     grant select, show view on ${MYSQL_DB}.* to ${account};`,
  );
  writeFileSync(passwordFile, password, { mode: 0o600 });
  return password;
}

/**
 * The bench tables: bench_accounts (100,000 rows) and bench_people (1,000,000 rows of five
 * columns; email and card_number are the masked ones), the same values as PostgreSQL's. Kept
 * between runs when intact; `reinit` rebuilds them.
 */
export function prepareMysqlBenchDatabase({ reinit = false } = {}) {
  mariadb(`create database if not exists ${MYSQL_DB}`);
  const count = (table) => Number(mariadb(`select count(*) from ${table}`, { database: MYSQL_DB, allowFail: true }) ?? -1);
  if (!reinit && count(MYSQL_POINT_TABLE) === MYSQL_POINT_ROWS) progress(`setup: MySQL ${MYSQL_POINT_TABLE} (${MYSQL_POINT_ROWS} rows) already in ${MYSQL_DB}`);
  else {
    progress(`setup: creating MySQL ${MYSQL_DB}.${MYSQL_POINT_TABLE} with ${MYSQL_POINT_ROWS} rows`);
    mariadb(
      `drop table if exists ${MYSQL_POINT_TABLE};
       create table ${MYSQL_POINT_TABLE} (aid int not null primary key, bid int not null, abalance int not null, filler char(84)) engine=InnoDB;
       insert into ${MYSQL_POINT_TABLE} select seq, 1 + (seq - 1) div 100000, 0, '' from seq_1_to_${MYSQL_POINT_ROWS};
       analyze table ${MYSQL_POINT_TABLE};`,
      { database: MYSQL_DB },
    );
  }
  if (!reinit && count(BULK_TABLE) === BULK_ROWS) progress(`setup: MySQL ${BULK_TABLE} (${BULK_ROWS} rows) already in ${MYSQL_DB}`);
  else {
    progress(`setup: creating MySQL ${MYSQL_DB}.${BULK_TABLE} with ${BULK_ROWS} rows of five columns`);
    mariadb(
      `drop table if exists ${BULK_TABLE};
       create table ${BULK_TABLE} (id bigint not null primary key, name varchar(64) not null, email varchar(128) not null, card_number varchar(32) not null, created_at datetime not null) engine=InnoDB;
       insert into ${BULK_TABLE}
         select seq, concat('Person ', seq), concat('person', seq, '@example.com'),
                concat('4111 ', lpad(seq % 10000, 4, '0'), ' ', lpad((seq * 7) % 10000, 4, '0'), ' ', lpad((seq * 13) % 10000, 4, '0')),
                timestamp('2024-01-01 00:00:00') + interval seq second
         from seq_1_to_${BULK_ROWS};
       analyze table ${BULK_TABLE};`,
      { database: MYSQL_DB },
    );
  }
  const size = (table) => {
    const bytes = Number(mariadb(`select data_length + index_length from information_schema.tables where table_schema = '${MYSQL_DB}' and table_name = '${table}'`) ?? 0);
    return `${Math.round(bytes / 2 ** 20)} MB`;
  };
  return { pointTableSize: size(MYSQL_POINT_TABLE), bulkTableSize: size(BULK_TABLE) };
}
