import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import pg from "pg";
import type { TestProject } from "vitest/node";

/** The role the tests' agents log in as: a SCRAM password, like a production service account. */
export const E2E_ROLE = "airlock_e2e_svc";
export const E2E_DATABASE = "airlock_e2e";

declare module "vitest" {
  export interface ProvidedContext {
    dbPassword: string;
  }
}

/** Creates the SCRAM role and the database the end-to-end tests use, once per run. */
export default async function setup(project: TestProject): Promise<void> {
  // One password per machine, kept private in the temp folder, so runs side by side agree on it.
  const passwordFile = join(tmpdir(), "airlock-e2e-db-password");
  if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomBytes(18).toString("base64url"), { mode: 0o600, flag: "wx" });
  const password = readFileSync(passwordFile, "utf8").trim();
  const admin = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "postgres" });
  await admin.connect();
  try {
    await admin.query("set password_encryption = 'scram-sha-256'");
    const exists = await admin.query("select 1 from pg_roles where rolname = $1", [E2E_ROLE]);
    await admin.query(`${exists.rowCount === 0 ? "create" : "alter"} role ${E2E_ROLE} login password '${password}'`);
    const verifier = await admin.query("select rolpassword from pg_authid where rolname = $1", [E2E_ROLE]);
    if (!String(verifier.rows[0]?.rolpassword).startsWith("SCRAM-SHA-256$")) throw new Error("the e2e role did not get a SCRAM verifier");
    await requireScram(admin);
    const database = await admin.query("select 1 from pg_database where datname = $1", [E2E_DATABASE]);
    if (database.rowCount === 0) await admin.query(`create database ${E2E_DATABASE} owner ${E2E_ROLE}`);
  } finally {
    await admin.end();
  }
  await setupMariadb(password);
  project.provide("dbPassword", password);
}

/** The same account and database on the machine's MariaDB, for the MySQL path (mysql_native_password). */
async function setupMariadb(password: string): Promise<void> {
  const admin = await mysql.createConnection({ host: "127.0.0.1", port: 3306, user: "root" });
  try {
    await admin.query(`create user if not exists '${E2E_ROLE}'@'%' identified by '${password}'`);
    await admin.query(`alter user '${E2E_ROLE}'@'%' identified by '${password}'`);
    await admin.query(`create database if not exists ${E2E_DATABASE}`);
    await admin.query(`grant all privileges on ${E2E_DATABASE}.* to '${E2E_ROLE}'@'%'`);
  } finally {
    await admin.end();
  }
}

/**
 * This machine's PostgreSQL trusts every loopback connection, which would let the agent in without
 * ever running SCRAM. A pg_hba.conf line for the e2e role alone makes the server demand it.
 */
async function requireScram(admin: pg.Client): Promise<void> {
  const file = String((await admin.query("show hba_file")).rows[0]?.hba_file);
  const line = `host all ${E2E_ROLE} 127.0.0.1/32 scram-sha-256`;
  const text = readFileSync(file, "utf8");
  if (!text.split("\n").includes(line)) {
    writeFileSync(file, `# airlock end-to-end tests: the agent's role must authenticate with SCRAM\n${line}\n${text}`);
    await admin.query("select pg_reload_conf()");
  }
  // The reload is asynchronous; wait until the rule is in force.
  for (let i = 0; i < 50; i++) {
    const rules = await admin.query("select auth_method from pg_hba_file_rules where $1 = any(user_name) and error is null", [E2E_ROLE]);
    if (rules.rows.some((row) => row.auth_method === "scram-sha-256")) {
      const probe = new pg.Client({ host: "127.0.0.1", port: 5432, user: E2E_ROLE, database: "postgres", password: "wrong" });
      const refused = await probe.connect().then(() => false, () => true);
      await probe.end().catch(() => undefined);
      if (refused) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`pg_hba.conf (${file}) does not make ${E2E_ROLE} authenticate with a password`);
}
