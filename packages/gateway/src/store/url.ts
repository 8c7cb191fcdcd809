/** What a store URL names: an embedded file, or a PostgreSQL database. */
export type StoreLocation = { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };

/** Query parameters of a PostgreSQL URL that may carry a secret. */
const SECRET_PARAMETER = /pass|secret|token/i;

/**
 * The store URL safe to log: the password and any password-like query parameter replaced by `***`.
 * A URL that does not parse is not shown at all.
 */
export function redactStoreUrl(url: string): string {
  if (url.startsWith("sqlite:")) return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "(an unparsable store url)";
  }
  if (parsed.password !== "") {
    parsed.password = "***";
    // The setter is ignored when the URL has no host; then drop the credentials altogether.
    if (parsed.password !== "***") return `${parsed.protocol}//(credentials hidden)`;
  }
  for (const key of [...parsed.searchParams.keys()]) {
    if (SECRET_PARAMETER.test(key)) parsed.searchParams.set(key, "***");
  }
  return parsed.toString();
}

/**
 * Reads `sqlite:PATH` (`sqlite::memory:` for an in-memory store) or `postgres://...` /
 * `postgresql://...`; for anything else, an error message. Never echoes the URL, which may hold a password.
 */
export function parseStoreUrl(url: string): StoreLocation | { error: string } {
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length);
    if (path === "") return { error: "store url `sqlite:` names no file: expected `sqlite:PATH`" };
    if (path.includes("\0")) return { error: "store url `sqlite:PATH` contains a NUL character" };
    return { kind: "sqlite", path };
  }
  if (/^postgres(ql)?:\/\//i.test(url)) {
    try {
      new URL(url);
    } catch {
      return { error: "store url is not a valid `postgres://` url" };
    }
    return { kind: "postgres", url };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  const found = scheme === undefined ? "" : `: got scheme \`${scheme}\``;
  return { error: `store url must be \`sqlite:PATH\` or \`postgres://...\`${found}` };
}
