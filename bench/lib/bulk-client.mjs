// A minimal PostgreSQL client for the bulk read: startup (trust or cleartext password: the
// token on the native listener), one simple-protocol Query, and it counts DataRow messages and
// their bytes (or CopyData messages, for COPY ... TO STDOUT) without decoding values, so the client spends as little CPU as possible and the
// figure is the proxy's. Prints one JSON line: { rows, bytes, seconds, firstRowMs }.
// Usage: node bulk-client.mjs PORT USER DATABASE "SQL"   (password from PGPASSWORD)
import { createHash } from "node:crypto";
import { connect } from "node:net";

const [port, user, database, sql] = process.argv.slice(2);
const password = process.env.PGPASSWORD;

function message(code, body) {
  const header = Buffer.alloc(5);
  header[0] = code.charCodeAt(0);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}
const cstr = (text) => Buffer.from(`${text}\0`);

const socket = connect({ host: "127.0.0.1", port: Number(port), noDelay: true });
const startupBody = Buffer.concat([Buffer.from([0, 3, 0, 0]), cstr("user"), cstr(user), cstr("database"), cstr(database), cstr("application_name"), cstr("airlock-bench-bulk"), Buffer.from([0])]);
const startup = Buffer.alloc(4 + startupBody.length);
startup.writeInt32BE(startup.length, 0);
startupBody.copy(startup, 4);
socket.write(startup);

let pending = Buffer.alloc(0);
let queried = false;
let started = 0;
let firstRow = 0;
let rows = 0;
let bytes = 0;
let error;

function fail(text) {
  process.stderr.write(`bulk-client: ${text}\n`);
  process.exit(1);
}

socket.on("data", (chunk) => {
  let buffer = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
  let offset = 0;
  while (buffer.length - offset >= 5) {
    const code = buffer[offset];
    const length = buffer.readInt32BE(offset + 1);
    if (buffer.length - offset < length + 1) break;
    if (code === 0x44 /* D: DataRow */ || code === 0x64 /* d: CopyData, one row of COPY text */) {
      if (rows === 0) firstRow = performance.now();
      rows++;
      bytes += length + 1;
    } else if (code === 0x52 /* R */) {
      const kind = buffer.readInt32BE(offset + 5);
      if (kind === 3) socket.write(message("p", cstr(password ?? "")));
      else if (kind === 5) {
        const salt = buffer.subarray(offset + 9, offset + 13);
        const inner = createHash("md5").update(`${password ?? ""}${user}`).digest("hex");
        socket.write(message("p", cstr(`md5${createHash("md5").update(Buffer.concat([Buffer.from(inner), salt])).digest("hex")}`)));
      } else if (kind !== 0) fail(`authentication method ${kind} is not supported by the bench client`);
    } else if (code === 0x45 /* E */) {
      error = buffer.toString("utf8", offset + 5, offset + 1 + length).split("\0").filter((field) => field.startsWith("M")).map((field) => field.slice(1)).join("; ");
    } else if (code === 0x5a /* Z */) {
      if (error !== undefined) fail(error);
      if (!queried) {
        queried = true;
        started = performance.now();
        socket.write(message("Q", cstr(sql)));
      } else {
        const seconds = (performance.now() - started) / 1000;
        socket.end(message("X", Buffer.alloc(0)));
        process.stdout.write(`${JSON.stringify({ rows, bytes, seconds, firstRowMs: rows > 0 ? firstRow - started : undefined })}\n`);
        return;
      }
    }
    offset += length + 1;
  }
  pending = offset === buffer.length ? Buffer.alloc(0) : buffer.subarray(offset);
  if (pending.length > 0 && offset > 0) pending = Buffer.from(pending);
});
socket.on("error", (cause) => fail(cause.message));
socket.on("close", () => {
  if (!queried || rows === 0) fail(error ?? "connection closed before the result");
});
