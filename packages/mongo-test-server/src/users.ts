import { fail } from "./errors.js";
import { deriveCredential, scramMechanisms, type ScramCredential, type ScramMechanism } from "./scram.js";

/**
 * A built-in role. A name alone applies to the user's own database (as in createUser); the
 * AnyDatabase roles, root and clusterAdmin apply everywhere.
 * https://www.mongodb.com/docs/manual/reference/built-in-roles/
 */
export type MongoTestRoleName =
  | "read"
  | "readWrite"
  | "dbAdmin"
  | "dbOwner"
  | "userAdmin"
  | "readAnyDatabase"
  | "readWriteAnyDatabase"
  | "dbAdminAnyDatabase"
  | "userAdminAnyDatabase"
  | "clusterAdmin"
  | "root";

export type MongoTestRole = MongoTestRoleName | { readonly role: MongoTestRoleName; readonly db: string };

/** A user of the stand-in. */
export interface MongoTestUser {
  readonly username: string;
  readonly password: string;
  /** The authentication database (authSource); "admin" when absent. */
  readonly db?: string;
  /** Roles; ["root"] when absent. */
  readonly roles?: readonly MongoTestRole[];
  /** SCRAM mechanisms the user has credentials for; both when absent. */
  readonly mechanisms?: readonly ScramMechanism[];
}

/** What a command needs on its database. "cluster" is an admin action on the whole server. */
export type Privilege = "read" | "write" | "ddl" | "userAdmin" | "cluster";

interface StoredUser {
  readonly username: string;
  readonly db: string;
  readonly roles: readonly { role: MongoTestRoleName; db: string }[];
  readonly credentials: ReadonlyMap<ScramMechanism, ScramCredential>;
}

/** What each role grants, on its database or (AnyDatabase, root, clusterAdmin) on all. */
const grants: Record<MongoTestRoleName, { readonly privileges: readonly Privilege[]; readonly everywhere: boolean }> = {
  read: { privileges: ["read"], everywhere: false },
  readWrite: { privileges: ["read", "write", "ddl"], everywhere: false },
  dbAdmin: { privileges: ["ddl"], everywhere: false },
  dbOwner: { privileges: ["read", "write", "ddl", "userAdmin"], everywhere: false },
  userAdmin: { privileges: ["userAdmin"], everywhere: false },
  readAnyDatabase: { privileges: ["read"], everywhere: true },
  readWriteAnyDatabase: { privileges: ["read", "write", "ddl"], everywhere: true },
  dbAdminAnyDatabase: { privileges: ["ddl"], everywhere: true },
  userAdminAnyDatabase: { privileges: ["userAdmin"], everywhere: true },
  clusterAdmin: { privileges: ["cluster"], everywhere: true },
  root: { privileges: ["read", "write", "ddl", "userAdmin", "cluster"], everywhere: true },
};

/** The user registry; createUser and friends change it at run time. */
export class Users {
  readonly #users = new Map<string, StoredUser>();
  readonly #iterations: { readonly "SCRAM-SHA-1": number; readonly "SCRAM-SHA-256": number };

  constructor(iterations: { readonly "SCRAM-SHA-1": number; readonly "SCRAM-SHA-256": number }) {
    this.#iterations = iterations;
  }

  get size(): number {
    return this.#users.size;
  }

  /** Adds a user; Location51003 when it exists. */
  add(user: MongoTestUser): void {
    const db = user.db ?? "admin";
    const key = `${db}.${user.username}`;
    if (this.#users.has(key)) fail("Location51003", `User "${user.username}@${db}" already exists`);
    this.#users.set(key, this.#store(user, db));
  }

  /** Changes a user's password and/or roles; UserNotFound when absent. */
  update(db: string, username: string, change: { password?: string; roles?: readonly MongoTestRole[]; mechanisms?: readonly ScramMechanism[] }): void {
    const current = this.#users.get(`${db}.${username}`);
    if (current === undefined) fail("UserNotFound", `Could not find user "${username}" for db "${db}"`);
    const roles = change.roles ?? current.roles;
    if (change.password === undefined) {
      this.#users.set(`${db}.${username}`, { ...current, roles: normalizeRoles(roles, db) });
      return;
    }
    this.#users.set(`${db}.${username}`, this.#store({ username, db, password: change.password, roles, mechanisms: change.mechanisms ?? [...current.credentials.keys()] }, db));
  }

  /** Removes a user; returns whether it existed. */
  remove(db: string, username: string): boolean {
    return this.#users.delete(`${db}.${username}`);
  }

  /** Users of a database (all databases when db is undefined). */
  list(db: string | undefined): { username: string; db: string; roles: readonly { role: string; db: string }[]; mechanisms: ScramMechanism[] }[] {
    return [...this.#users.values()]
      .filter((user) => db === undefined || user.db === db)
      .map((user) => ({ username: user.username, db: user.db, roles: user.roles, mechanisms: [...user.credentials.keys()] }));
  }

  credential(db: string, username: string, mechanism: ScramMechanism): ScramCredential | undefined {
    return this.#users.get(`${db}.${username}`)?.credentials.get(mechanism);
  }

  mechanisms(db: string, username: string): ScramMechanism[] | undefined {
    const user = this.#users.get(`${db}.${username}`);
    return user === undefined ? undefined : [...user.credentials.keys()];
  }

  roles(db: string, username: string): readonly { role: string; db: string }[] {
    return this.#users.get(`${db}.${username}`)?.roles ?? [];
  }

  /** Whether the user holds `privilege` on database `db`. */
  allows(user: { readonly db: string; readonly username: string }, privilege: Privilege, db: string): boolean {
    const stored = this.#users.get(`${user.db}.${user.username}`);
    if (stored === undefined) return false;
    return stored.roles.some(({ role, db: on }) => {
      const grant = grants[role];
      return grant.privileges.includes(privilege) && (grant.everywhere || on === db);
    });
  }

  #store(user: MongoTestUser, db: string): StoredUser {
    const mechanisms = user.mechanisms ?? scramMechanisms;
    const credentials = new Map<ScramMechanism, ScramCredential>();
    for (const mechanism of mechanisms) credentials.set(mechanism, deriveCredential(mechanism, user.username, user.password, this.#iterations[mechanism]));
    return { username: user.username, db, roles: normalizeRoles(user.roles ?? ["root"], db), credentials };
  }
}

function normalizeRoles(roles: readonly MongoTestRole[], db: string): { role: MongoTestRoleName; db: string }[] {
  return roles.map((role) => {
    const named = typeof role === "string" ? { role, db } : { role: role.role, db: role.db };
    if (!Object.hasOwn(grants, named.role)) fail("BadValue", `No role named ${named.role}@${named.db}`);
    return named;
  });
}
