import { openPostgresStore } from "./postgres.js";
import { openSqliteStore } from "./sqlite.js";
import { StoreError, type Store, type StoreOptions } from "./types.js";
import { parseStoreUrl } from "./url.js";

/**
 * Opens the gateway's state store named by gateway.yaml's `store` and brings its schema up to date.
 *
 * - `sqlite:PATH`: the embedded store (the default). The folder is created; the database runs in WAL
 *   mode with a busy timeout and foreign keys on. A relative PATH is relative to the working directory.
 *   `sqlite::memory:` keeps everything in memory.
 * - `postgres://...` or `postgresql://...`: the shared store for several gateways behind a load
 *   balancer; a change made through one gateway reaches the others' subscribers.
 *
 * Rejects with StoreError `invalid_url` for anything else, `unavailable` if the database cannot be
 * reached, `migration_failed` if the schema cannot be brought up to date. No message ever shows the
 * URL's password.
 */
export async function openStore(url: string, options: StoreOptions = {}): Promise<Store> {
  if (typeof url !== "string") throw new TypeError("url must be a string");
  const location = parseStoreUrl(url);
  if ("error" in location) throw new StoreError("invalid_url", location.error);
  return location.kind === "sqlite" ? openSqliteStore(location.path, options) : openPostgresStore(location.url, options);
}
