/**
 * MySQL client/server protocol codes, named as the spec names them.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basics.html
 * MariaDB's additions: https://mariadb.com/kb/en/clientserver-protocol/
 */

/**
 * Command bytes, the first payload byte of every packet a client sends in the command phase.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/my__command_8h.html
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_command_phase.html
 */
export const mysqlCommands = {
  COM_SLEEP: 0x00,
  COM_QUIT: 0x01,
  COM_INIT_DB: 0x02,
  COM_QUERY: 0x03,
  COM_FIELD_LIST: 0x04,
  COM_CREATE_DB: 0x05,
  COM_DROP_DB: 0x06,
  COM_REFRESH: 0x07,
  COM_SHUTDOWN: 0x08,
  COM_STATISTICS: 0x09,
  COM_PROCESS_INFO: 0x0a,
  COM_CONNECT: 0x0b,
  COM_PROCESS_KILL: 0x0c,
  COM_DEBUG: 0x0d,
  COM_PING: 0x0e,
  COM_TIME: 0x0f,
  COM_DELAYED_INSERT: 0x10,
  COM_CHANGE_USER: 0x11,
  COM_BINLOG_DUMP: 0x12,
  COM_TABLE_DUMP: 0x13,
  COM_CONNECT_OUT: 0x14,
  COM_REGISTER_SLAVE: 0x15,
  COM_STMT_PREPARE: 0x16,
  COM_STMT_EXECUTE: 0x17,
  COM_STMT_SEND_LONG_DATA: 0x18,
  COM_STMT_CLOSE: 0x19,
  COM_STMT_RESET: 0x1a,
  COM_SET_OPTION: 0x1b,
  COM_STMT_FETCH: 0x1c,
  COM_DAEMON: 0x1d,
  COM_BINLOG_DUMP_GTID: 0x1e,
  COM_RESET_CONNECTION: 0x1f,
  COM_CLONE: 0x20,
  COM_SUBSCRIBE_GROUP_REPLICATION_STREAM: 0x21,
  /** MariaDB only: an array of parameter sets for one prepared statement (https://mariadb.com/kb/en/com_stmt_bulk_execute/). */
  COM_STMT_BULK_EXECUTE: 0xfa,
} as const;

/**
 * Capability flags, 32 bits: values above 0x7fffffff are positive numbers here, so combine them with
 * `(a | b) >>> 0` and test them with `(caps & flag) !== 0`.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/group__group__cs__capabilities__flags.html
 */
export const mysqlCapabilities = {
  /** Also MariaDB's CLIENT_MYSQL: a MariaDB server clears it to announce its extended capabilities. */
  CLIENT_LONG_PASSWORD: 0x1,
  CLIENT_FOUND_ROWS: 0x2,
  CLIENT_LONG_FLAG: 0x4,
  CLIENT_CONNECT_WITH_DB: 0x8,
  CLIENT_NO_SCHEMA: 0x10,
  CLIENT_COMPRESS: 0x20,
  CLIENT_ODBC: 0x40,
  CLIENT_LOCAL_FILES: 0x80,
  CLIENT_IGNORE_SPACE: 0x100,
  CLIENT_PROTOCOL_41: 0x200,
  CLIENT_INTERACTIVE: 0x400,
  CLIENT_SSL: 0x800,
  CLIENT_IGNORE_SIGPIPE: 0x1000,
  CLIENT_TRANSACTIONS: 0x2000,
  CLIENT_RESERVED: 0x4000,
  /** CLIENT_RESERVED2 in newer headers; the 4.1 auth response with a 1-byte length. */
  CLIENT_SECURE_CONNECTION: 0x8000,
  CLIENT_MULTI_STATEMENTS: 0x10000,
  CLIENT_MULTI_RESULTS: 0x20000,
  CLIENT_PS_MULTI_RESULTS: 0x40000,
  CLIENT_PLUGIN_AUTH: 0x80000,
  CLIENT_CONNECT_ATTRS: 0x100000,
  CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x200000,
  CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS: 0x400000,
  CLIENT_SESSION_TRACK: 0x800000,
  CLIENT_DEPRECATE_EOF: 0x1000000,
  CLIENT_OPTIONAL_RESULTSET_METADATA: 0x2000000,
  CLIENT_ZSTD_COMPRESSION_ALGORITHM: 0x4000000,
  CLIENT_QUERY_ATTRIBUTES: 0x8000000,
  MULTI_FACTOR_AUTHENTICATION: 0x10000000,
  CLIENT_CAPABILITY_EXTENSION: 0x20000000,
  CLIENT_SSL_VERIFY_SERVER_CERT: 0x40000000,
  CLIENT_REMEMBER_OPTIONS: 0x80000000,
} as const;

/**
 * MariaDB's extended capabilities: the third 32-bit word, sent in reserved bytes of the handshake
 * when CLIENT_LONG_PASSWORD (CLIENT_MYSQL) is clear. Values are bits of that word (MariaDB's
 * MARIADB_CLIENT_PROGRESS is 1 << 32 of the 64-bit set, so 1 here).
 * https://mariadb.com/kb/en/connection/#capabilities
 */
export const mariadbCapabilities = {
  MARIADB_CLIENT_PROGRESS: 0x1,
  MARIADB_CLIENT_COM_MULTI: 0x2,
  MARIADB_CLIENT_STMT_BULK_OPERATIONS: 0x4,
  MARIADB_CLIENT_EXTENDED_METADATA: 0x8,
  MARIADB_CLIENT_CACHE_METADATA: 0x10,
  MARIADB_CLIENT_BULK_UNIT_RESULTS: 0x20,
} as const;

/**
 * Server status flags of OK and EOF packets.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/mysql__com_8h.html (enum SERVER_STATUS_flags_enum)
 */
export const mysqlServerStatus = {
  SERVER_STATUS_IN_TRANS: 0x1,
  SERVER_STATUS_AUTOCOMMIT: 0x2,
  SERVER_MORE_RESULTS_EXISTS: 0x8,
  SERVER_QUERY_NO_GOOD_INDEX_USED: 0x10,
  SERVER_QUERY_NO_INDEX_USED: 0x20,
  SERVER_STATUS_CURSOR_EXISTS: 0x40,
  SERVER_STATUS_LAST_ROW_SENT: 0x80,
  SERVER_STATUS_DB_DROPPED: 0x100,
  SERVER_STATUS_NO_BACKSLASH_ESCAPES: 0x200,
  SERVER_STATUS_METADATA_CHANGED: 0x400,
  SERVER_QUERY_WAS_SLOW: 0x800,
  SERVER_PS_OUT_PARAMS: 0x1000,
  SERVER_STATUS_IN_TRANS_READONLY: 0x2000,
  SERVER_SESSION_STATE_CHANGED: 0x4000,
} as const;

/**
 * Column types of ColumnDefinition41 and of binary protocol values.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/field__types_8h.html
 */
export const mysqlColumnTypes = {
  MYSQL_TYPE_DECIMAL: 0,
  MYSQL_TYPE_TINY: 1,
  MYSQL_TYPE_SHORT: 2,
  MYSQL_TYPE_LONG: 3,
  MYSQL_TYPE_FLOAT: 4,
  MYSQL_TYPE_DOUBLE: 5,
  MYSQL_TYPE_NULL: 6,
  MYSQL_TYPE_TIMESTAMP: 7,
  MYSQL_TYPE_LONGLONG: 8,
  MYSQL_TYPE_INT24: 9,
  MYSQL_TYPE_DATE: 10,
  MYSQL_TYPE_TIME: 11,
  MYSQL_TYPE_DATETIME: 12,
  MYSQL_TYPE_YEAR: 13,
  MYSQL_TYPE_NEWDATE: 14,
  MYSQL_TYPE_VARCHAR: 15,
  MYSQL_TYPE_BIT: 16,
  MYSQL_TYPE_TIMESTAMP2: 17,
  MYSQL_TYPE_DATETIME2: 18,
  MYSQL_TYPE_TIME2: 19,
  MYSQL_TYPE_TYPED_ARRAY: 20,
  MYSQL_TYPE_VECTOR: 242,
  MYSQL_TYPE_INVALID: 243,
  MYSQL_TYPE_BOOL: 244,
  MYSQL_TYPE_JSON: 245,
  MYSQL_TYPE_NEWDECIMAL: 246,
  MYSQL_TYPE_ENUM: 247,
  MYSQL_TYPE_SET: 248,
  MYSQL_TYPE_TINY_BLOB: 249,
  MYSQL_TYPE_MEDIUM_BLOB: 250,
  MYSQL_TYPE_LONG_BLOB: 251,
  MYSQL_TYPE_BLOB: 252,
  MYSQL_TYPE_VAR_STRING: 253,
  MYSQL_TYPE_STRING: 254,
  MYSQL_TYPE_GEOMETRY: 255,
} as const;

/**
 * Column definition flags.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/group__group__cs__column__definition__flags.html
 */
export const mysqlColumnFlags = {
  NOT_NULL_FLAG: 0x1,
  PRI_KEY_FLAG: 0x2,
  UNIQUE_KEY_FLAG: 0x4,
  MULTIPLE_KEY_FLAG: 0x8,
  BLOB_FLAG: 0x10,
  UNSIGNED_FLAG: 0x20,
  ZEROFILL_FLAG: 0x40,
  BINARY_FLAG: 0x80,
  ENUM_FLAG: 0x100,
  AUTO_INCREMENT_FLAG: 0x200,
  TIMESTAMP_FLAG: 0x400,
  SET_FLAG: 0x800,
  NO_DEFAULT_VALUE_FLAG: 0x1000,
  ON_UPDATE_NOW_FLAG: 0x2000,
  NUM_FLAG: 0x8000,
} as const;

/**
 * The flags byte of COM_STMT_EXECUTE.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/mysql__com_8h.html (enum_cursor_type)
 */
export const mysqlCursorTypes = {
  CURSOR_TYPE_NO_CURSOR: 0x0,
  CURSOR_TYPE_READ_ONLY: 0x1,
  CURSOR_TYPE_FOR_UPDATE: 0x2,
  CURSOR_TYPE_SCROLLABLE: 0x4,
  PARAMETER_COUNT_AVAILABLE: 0x8,
} as const;

/**
 * First payload byte of the server's generic responses.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_response_packets.html
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets.html
 */
export const mysqlResponseHeaders = {
  OK: 0x00,
  /** AuthMoreData during authentication. */
  AuthMoreData: 0x01,
  /** AuthNextFactor during multi-factor authentication (MySQL 8.0.27). */
  AuthNextFactor: 0x02,
  /** LOCAL INFILE request in answer to COM_QUERY. */
  LocalInfile: 0xfb,
  /** EOF in the command phase, AuthSwitchRequest during authentication, OK-as-EOF with CLIENT_DEPRECATE_EOF. */
  EOF: 0xfe,
  ERR: 0xff,
} as const;

/**
 * The single bytes caching_sha2_password exchanges inside AuthMoreData.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html
 */
export const mysqlCachingSha2 = {
  /** Client to server: send me your RSA public key. */
  REQUEST_PUBLIC_KEY: 0x02,
  /** Server to client: the scramble matched the cache; an OK follows. */
  FAST_AUTH_SUCCESS: 0x03,
  /** Server to client: send the password (in clear over TLS, RSA-encrypted otherwise). */
  PERFORM_FULL_AUTHENTICATION: 0x04,
} as const;

/** Name of a command byte, for logs and recordings. */
export function mysqlCommandName(code: number): string {
  return nameOf(mysqlCommands, code);
}

/** Name of a column type, for logs and recordings. */
export function mysqlColumnTypeName(type: number): string {
  return nameOf(mysqlColumnTypes, type);
}

function nameOf(table: Readonly<Record<string, number>>, code: number): string {
  for (const [name, value] of Object.entries(table)) if (value === code) return name;
  return `Unknown(0x${code.toString(16).padStart(2, "0")})`;
}
