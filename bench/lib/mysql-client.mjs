// A minimal MySQL/MariaDB client for the MySQL workloads: the login (mysql_native_password, or
// mysql_clear_password carrying the OIDC token to Airlock's native listener), COM_QUERY in the text
// protocol, and a reader that finds the end of each result by the packets' first bytes without
// decoding the rows, so the client spends as little CPU as possible and the figure is the proxy's
// (the same reason as bulk-client.mjs for PostgreSQL; see bench/README.md).
//
//   node mysql-client.mjs point PORT USER DATABASE CLIENTS SECONDS ROWS LATENCY_FILE
//     CLIENTS connections opened first, then each runs
//     `SELECT abalance FROM bench_accounts WHERE aid = <random 1..ROWS>` one after another for
//     SECONDS. Prints { clients, openSeconds, transactions, seconds, tps, p50Ms, p99Ms,
//     clientCpuSeconds } and writes every statement's latency (microseconds, Float64
//     little-endian) to LATENCY_FILE.
//   node mysql-client.mjs bulk PORT USER DATABASE "SQL"
//     One query; counts the row packets and their bytes (payload + 4-byte header). Prints
//     { rows, bytes, seconds, firstRowMs, firstRow, clientCpuSeconds } (firstRow: the first row's
//     values, decoded, so the harness can show whether masking was on).
//
// Password from BENCH_MYSQL_PASSWORD; BENCH_MYSQL_AUTH=clear sends it with mysql_clear_password
// (Airlock's listeners), otherwise mysql_native_password (MariaDB directly).
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { connect } from "node:net";

const [mode, port, user, database, ...rest] = process.argv.slice(2);
const password = process.env.BENCH_MYSQL_PASSWORD ?? "";
const clearAuth = process.env.BENCH_MYSQL_AUTH === "clear";

// Capability flags (https://dev.mysql.com/doc/dev/mysql-server/latest/group__group__cs__capabilities__flags.html).
const CLIENT_LONG_PASSWORD = 0x1;
const CLIENT_LONG_FLAG = 0x4;
const CLIENT_CONNECT_WITH_DB = 0x8;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_TRANSACTIONS = 0x2000;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_PLUGIN_AUTH = 0x80000;
const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 0x200000;
const SERVER_MORE_RESULTS_EXISTS = 0x8;
const COM_QUERY = 0x03;
const COM_QUIT = 0x01;

function fail(text) {
  process.stderr.write(`mysql-client: ${text}\n`);
  process.exit(1);
}

function packet(sequenceId, payload) {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUIntLE(payload.length, 0, 3);
  out[3] = sequenceId;
  payload.copy(out, 4);
  return out;
}

function lenencInt(value) {
  if (value < 251) return Buffer.from([value]);
  if (value < 0x10000) return Buffer.from([0xfc, value & 0xff, value >> 8]);
  const out = Buffer.alloc(4);
  out[0] = 0xfd;
  out.writeUIntLE(value, 1, 3);
  return out;
}

/** Reads a length-encoded integer at `offset`: [value, next offset] (value null for 0xfb, NULL). */
function readLenenc(buffer, offset) {
  const first = buffer[offset];
  if (first < 0xfb) return [first, offset + 1];
  if (first === 0xfb) return [null, offset + 1];
  if (first === 0xfc) return [buffer.readUInt16LE(offset + 1), offset + 3];
  if (first === 0xfd) return [buffer.readUIntLE(offset + 1, 3), offset + 4];
  return [Number(buffer.readBigUInt64LE(offset + 1)), offset + 9];
}

function errText(payload) {
  // 0xff, error code (2), '#' + SQL state (5), message.
  const code = payload.readUInt16LE(1);
  const text = payload[3] === 0x23 ? payload.toString("utf8", 9) : payload.toString("utf8", 3);
  return `ERROR ${code}: ${text}`;
}

const sha1 = (...parts) => {
  const hash = createHash("sha1");
  for (const part of parts) hash.update(part);
  return hash.digest();
};

/** The auth response of `plugin` for the password and the server's 20-byte scramble. */
function authResponse(plugin, scramble) {
  if (plugin === "mysql_clear_password") return Buffer.from(`${password}\0`);
  if (plugin === "mysql_native_password") {
    if (password === "") return Buffer.alloc(0);
    const stage1 = sha1(password);
    const stage2 = sha1(scramble, sha1(stage1));
    for (let index = 0; index < stage1.length; index++) stage1[index] ^= stage2[index];
    return stage1;
  }
  fail(`the server asks for ${plugin}, which the bench client does not speak`);
}

/**
 * Opens a connection and logs in. Resolves with { socket, onPacket(handler) } once the server has
 * sent its OK; later packets go to the handler as (payload, sequenceId, packetBytes).
 */
function open() {
  return new Promise((resolve) => {
    let pending = null;
    // onread: reads land in one buffer of this connection's, without the stream's per-read Buffer
    // and 'data' event (less client CPU per statement); a partial packet is copied to `pending`.
    const onRead = (nread, chunk) => {
      const buffer = pending === null ? chunk : Buffer.concat([pending, chunk.subarray(0, nread)]);
      const end = pending === null ? nread : buffer.length;
      let offset = 0;
      while (end - offset >= 4) {
        const length = buffer[offset] | (buffer[offset + 1] << 8) | (buffer[offset + 2] << 16);
        if (end - offset < length + 4) break;
        const sequenceId = buffer[offset + 3];
        const payload = buffer.subarray(offset + 4, offset + 4 + length);
        if (loggedIn) handler(payload, sequenceId, length + 4);
        else login(payload, sequenceId);
        offset += length + 4;
      }
      pending = offset === end ? null : Buffer.from(buffer.subarray(offset, end));
    };
    const socket = connect({ host: "127.0.0.1", port: Number(port), noDelay: true, onread: { buffer: Buffer.allocUnsafe(256 << 10), callback: onRead } });
    let handler = null;
    let loggedIn = false;
    const connection = {
      socket,
      onPacket(next) {
        handler = next;
      },
    };
    const login = (payload, sequenceId) => {
      if (sequenceId === 0) {
        // Handshake v10: the scramble and the capabilities.
        if (payload[0] === 0xff) fail(errText(payload));
        let offset = payload.indexOf(0, 1) + 1; // server version
        offset += 4; // connection id
        const part1 = payload.subarray(offset, offset + 8);
        offset += 9;
        let capabilities = payload.readUInt16LE(offset);
        offset += 2 + 1 + 2; // capabilities (low), character set, status
        capabilities |= payload.readUInt16LE(offset) << 16;
        offset += 2;
        const dataLength = payload[offset];
        offset += 1 + 10;
        const part2Length = Math.max(13, dataLength - 8);
        const part2 = payload.subarray(offset, offset + part2Length - 1); // without its trailing NUL
        offset += part2Length;
        const serverPlugin = payload.toString("latin1", offset, payload.indexOf(0, offset) === -1 ? payload.length : payload.indexOf(0, offset));
        connection.scramble = Buffer.concat([part1, part2]);
        const plugin = clearAuth ? "mysql_clear_password" : serverPlugin === "mysql_clear_password" ? serverPlugin : "mysql_native_password";
        const wanted = CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_CONNECT_WITH_DB | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;
        const flags = (wanted & (capabilities | CLIENT_LONG_PASSWORD)) >>> 0;
        const response = authResponse(plugin, connection.scramble);
        if (!(flags & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) && response.length > 250) fail("the server cannot take a long password (no CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)");
        const head = Buffer.alloc(32);
        head.writeUInt32LE(flags, 0);
        head.writeUInt32LE(1 << 24, 4); // max packet size: 16 MiB
        head[8] = 45; // utf8mb4_general_ci
        socket.write(
          packet(
            1,
            Buffer.concat([head, Buffer.from(`${user}\0`), flags & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA ? lenencInt(response.length) : Buffer.from([response.length]), response, Buffer.from(`${database}\0`), Buffer.from(`${plugin}\0`)]),
          ),
        );
        return;
      }
      switch (payload[0]) {
        case 0x00:
          loggedIn = true;
          resolve(connection);
          return;
        case 0xff:
          fail(`login refused: ${errText(payload)}`);
          return;
        case 0xfe: {
          // Auth switch: plugin name, then its data (a new scramble, with a trailing NUL).
          const end = payload.indexOf(0, 1);
          const plugin = payload.toString("latin1", 1, end);
          const data = payload.subarray(end + 1, payload.length - (payload[payload.length - 1] === 0 ? 1 : 0));
          socket.write(packet(sequenceId + 1, authResponse(plugin, data.length >= 20 ? data.subarray(0, 20) : connection.scramble)));
          return;
        }
        case 0x01:
          // caching_sha2_password's fast-auth success (0x03) is followed by the OK.
          if (payload[1] === 0x03) return;
          fail("the server asks for caching_sha2_password's full authentication, which the bench client does not do");
          return;
        default:
          fail(`unexpected packet 0x${payload[0].toString(16)} during the login`);
      }
    };
    socket.on("error", (error) => fail(error.message));
    socket.on("close", () => {
      if (!loggedIn) fail("the server closed the connection during the login");
      connection.closed = true;
      connection.onClose?.();
    });
  });
}

/**
 * Follows one COM_QUERY's response (text protocol, without CLIENT_DEPRECATE_EOF): OK, ERR, or
 * column count, column definitions, EOF, rows, EOF; again while SERVER_MORE_RESULTS_EXISTS.
 * Calls onRow(payload, bytes) for each row and done() at the end.
 */
function resultReader({ onRow, done }) {
  let state = "first";
  let columns = 0;
  return (payload, _sequenceId, bytes) => {
    const first = payload[0];
    if (state === "rows") {
      if (first === 0xfe && payload.length < 9) {
        const status = payload.readUInt16LE(3);
        state = "first";
        if (!(status & SERVER_MORE_RESULTS_EXISTS)) done();
      } else if (first === 0xff) fail(errText(payload));
      else onRow(payload, bytes);
      return;
    }
    if (state === "first") {
      if (first === 0xff) fail(errText(payload));
      if (first === 0x00) {
        // OK: no result set (status flags after the affected rows and last insert id).
        let offset = readLenenc(payload, 1)[1];
        offset = readLenenc(payload, offset)[1];
        if (payload.readUInt16LE(offset) & SERVER_MORE_RESULTS_EXISTS) return;
        done();
        return;
      }
      if (first === 0xfb) fail("the server asked for LOCAL INFILE");
      columns = readLenenc(payload, 0)[0];
      state = "columns";
      return;
    }
    if (state === "columns") {
      if (columns > 0) columns--;
      else if (first === 0xfe && payload.length < 9) state = "rows";
      else fail("expected the EOF after the column definitions");
    }
  };
}

/**
 * This process's user + system CPU seconds since `since` (process.cpuUsage() taken when the
 * measurement began, after the logins): the load generator's own cost, reported alongside.
 */
function cpuSeconds(since) {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1e6;
}

function quit(connection) {
  connection.socket.end(packet(0, Buffer.from([COM_QUIT])));
}

function query(connection, sql) {
  const body = Buffer.from(` ${sql}`);
  body[0] = COM_QUERY;
  connection.socket.write(packet(0, body));
}

function decodeRow(payload) {
  const values = [];
  let offset = 0;
  while (offset < payload.length) {
    const [length, next] = readLenenc(payload, offset);
    if (length === null) {
      values.push(null);
      offset = next;
    } else {
      values.push(payload.toString("utf8", next, next + length));
      offset = next + length;
    }
  }
  return values;
}

/** A proxy that stops answering must not hang the harness: give up (exit 1) after `seconds`. */
function watchdog(seconds) {
  setTimeout(() => fail(`no end after ${seconds} s`), seconds * 1000).unref();
}

if (mode === "bulk") {
  const [sql] = rest;
  watchdog(900);
  const connection = await open();
  let rows = 0;
  let bytes = 0;
  let firstRow;
  let firstRowAt = 0;
  const cpuAtStart = process.cpuUsage();
  const started = performance.now();
  await new Promise((resolve) => {
    connection.onPacket(
      resultReader({
        onRow(payload, size) {
          if (rows === 0) {
            firstRowAt = performance.now();
            firstRow = decodeRow(payload);
          }
          rows++;
          bytes += size;
        },
        done: resolve,
      }),
    );
    connection.onClose = () => fail("connection closed before the end of the result");
    query(connection, sql);
  });
  const seconds = (performance.now() - started) / 1000;
  connection.onClose = undefined;
  quit(connection);
  process.stdout.write(`${JSON.stringify({ rows, bytes, seconds, firstRowMs: rows > 0 ? firstRowAt - started : undefined, firstRow, clientCpuSeconds: cpuSeconds(cpuAtStart) })}\n`);
} else if (mode === "point") {
  const [clientsText, secondsText, rowsText, latencyFile] = rest;
  const POINT_PREFIX = Buffer.from("SELECT abalance FROM bench_accounts WHERE aid = ");
  const clients = Number(clientsText);
  const seconds = Number(secondsText);
  const tableRows = Number(rowsText);
  watchdog(seconds + 120);
  let latencies = new Float64Array(1 << 16);
  let transactions = 0;
  let deadline = 0;
  const openStarted = performance.now();
  const connections = await Promise.all(Array.from({ length: clients }, () => open()));
  const openSeconds = (performance.now() - openStarted) / 1000;
  const cpuAtStart = process.cpuUsage();
  const started = performance.now();
  deadline = started + seconds * 1000;
  await Promise.all(
    connections.map(
      (connection) =>
        new Promise((resolve) => {
          let sentAt = 0;
          // One buffer per connection, rewritten for each statement: the previous write is done
          // (the server answered it) before the next one reuses it.
          const out = Buffer.alloc(64 + POINT_PREFIX.length);
          out[3] = 0; // sequence id
          out[4] = COM_QUERY;
          POINT_PREFIX.copy(out, 5);
          const next = () => {
            const digits = out.write(String(1 + Math.floor(Math.random() * tableRows)), 5 + POINT_PREFIX.length, "latin1");
            const length = 1 + POINT_PREFIX.length + digits;
            out.writeUIntLE(length, 0, 3);
            sentAt = performance.now();
            connection.socket.write(out.subarray(0, 4 + length));
          };
          connection.onPacket(
            resultReader({
              onRow() {},
              done() {
                const now = performance.now();
                if (transactions === latencies.length) {
                  const grown = new Float64Array(latencies.length * 2);
                  grown.set(latencies);
                  latencies = grown;
                }
                latencies[transactions++] = (now - sentAt) * 1000;
                if (now < deadline) next();
                else resolve();
              },
            }),
          );
          connection.onClose = () => fail("a connection closed during the run");
          next();
        }),
    ),
  );
  const elapsed = (performance.now() - started) / 1000;
  for (const connection of connections) {
    connection.onClose = undefined;
    quit(connection);
  }
  const used = latencies.subarray(0, transactions);
  writeFileSync(latencyFile, Buffer.from(used.buffer, used.byteOffset, used.byteLength));
  const sorted = Float64Array.from(used).sort();
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] / 1000;
  process.stdout.write(`${JSON.stringify({ clients, openSeconds, transactions, seconds: elapsed, tps: transactions / elapsed, p50Ms: at(50), p99Ms: at(99), clientCpuSeconds: cpuSeconds(cpuAtStart) })}\n`);
} else {
  fail("usage: mysql-client.mjs point|bulk ...");
}
