/**
 * Passwords written into statements (a role's password, a user's `pwd`) reach the database as the
 * client sent them, but never the recording, the audit log or the store: these replace each one
 * with `[redacted]`. Text-level on purpose: it runs on every statement recorded, including those
 * the parser refused.
 */

const REDACTED = "[redacted]";

/** A quoted SQL string: '...' with '' or \' inside, or "..." (MySQL without ANSI_QUOTES). */
const QUOTED = String.raw`(?:'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")`;

const SQL_PATTERNS: readonly RegExp[] = [
  // PostgreSQL: CREATE/ALTER ROLE|USER ... [ENCRYPTED] PASSWORD '...'; psql's \password sends the same.
  new RegExp(String.raw`(\bPASSWORD\s+)${QUOTED}`, "gi"),
  // MySQL/MariaDB: IDENTIFIED [WITH plugin] BY|AS '...', SET PASSWORD ... = '...', PASSWORD('...').
  new RegExp(String.raw`(\bIDENTIFIED\s+(?:WITH\s+\S+\s+)?(?:BY|AS)\s+(?:PASSWORD\s+)?)${QUOTED}`, "gi"),
  new RegExp(String.raw`(\bSET\s+PASSWORD\b[^=;]*=\s*(?:PASSWORD\s*\(\s*)?)${QUOTED}`, "gi"),
  new RegExp(String.raw`(\b(?:OLD_)?PASSWORD\s*\(\s*)${QUOTED}`, "gi"),
];

/** MongoDB commands as Extended JSON: createUser/updateUser's `pwd`, and any `password` field. */
const JSON_PATTERN = /("(?:pwd|password)"\s*:\s*)"(?:[^"\\]|\\.)*"/g;

/** The statement's text as it may be recorded. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const pattern of SQL_PATTERNS) out = out.replace(pattern, `$1'${REDACTED}'`);
  return out.replace(JSON_PATTERN, `$1"${REDACTED}"`);
}
