// 200 concurrent sessions each running short statements: opens N sessions at once (startup,
// trust or cleartext password: the token on the native listener), waits until all are ready, then
// each session runs pgbench -S's statement (SELECT abalance FROM pgbench_accounts WHERE aid = :aid,
// aid random in 1..100000*scale) in the simple protocol, one after another, for S seconds.
// Prints one JSON line: { sessions, openSeconds, transactions, seconds, tps, p50Ms, p99Ms }.
// Usage: node sessions-client.mjs PORT USER DATABASE SESSIONS SECONDS SCALE   (password from PGPASSWORD)
import { connect } from "node:net";

const [port, user, database, sessionsText, secondsText, scaleText] = process.argv.slice(2);
const sessions = Number(sessionsText);
const seconds = Number(secondsText);
const accounts = 100_000 * Number(scaleText);
const password = process.env.PGPASSWORD;

const cstr = (text) => Buffer.from(`${text}\0`);
function message(code, body) {
  const out = Buffer.alloc(5 + body.length);
  out[0] = code.charCodeAt(0);
  out.writeInt32BE(body.length + 4, 1);
  body.copy(out, 5);
  return out;
}
const startupBody = Buffer.concat([Buffer.from([0, 3, 0, 0]), cstr("user"), cstr(user), cstr("database"), cstr(database), cstr("application_name"), cstr("airlock-bench-sessions"), Buffer.from([0])]);
const startup = Buffer.alloc(4 + startupBody.length);
startup.writeInt32BE(startup.length, 0);
startupBody.copy(startup, 4);

function fail(text) {
  process.stderr.write(`sessions-client: ${text}\n`);
  process.exit(1);
}

const latencies = [];
let measuring = false;
let deadline = 0;
let transactions = 0;

function openSession() {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port: Number(port), noDelay: true });
    let pending = Buffer.alloc(0);
    let ready = false;
    let sentAt = 0;
    let errorText;
    const session = {
      socket,
      query() {
        const aid = 1 + Math.floor(Math.random() * accounts);
        sentAt = performance.now();
        socket.write(message("Q", cstr(`SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`)));
      },
    };
    socket.write(startup);
    socket.on("data", (chunk) => {
      const buffer = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      while (buffer.length - offset >= 5) {
        const code = buffer[offset];
        const length = buffer.readInt32BE(offset + 1);
        if (buffer.length - offset < length + 1) break;
        if (code === 0x52 /* R */) {
          const kind = buffer.readInt32BE(offset + 5);
          if (kind === 3) socket.write(message("p", cstr(password ?? "")));
          else if (kind !== 0) fail(`authentication method ${kind} is not supported by the bench client`);
        } else if (code === 0x45 /* E */) {
          errorText = buffer.toString("utf8", offset + 5, offset + 1 + length).split("\0").filter((field) => field.startsWith("M")).map((field) => field.slice(1)).join("; ");
        } else if (code === 0x5a /* Z */) {
          if (errorText !== undefined) fail(errorText);
          if (!ready) {
            ready = true;
            resolve(session);
          } else {
            const now = performance.now();
            if (measuring) {
              latencies.push(now - sentAt);
              transactions++;
            }
            if (now < deadline) session.query();
            else session.done?.();
          }
        }
        offset += length + 1;
      }
      pending = offset === buffer.length ? Buffer.alloc(0) : Buffer.from(buffer.subarray(offset));
    });
    socket.on("error", (error) => fail(error.message));
    socket.on("close", () => {
      if (!ready || (measuring && performance.now() < deadline)) fail(errorText ?? "a session closed early");
    });
  });
}

const openStarted = performance.now();
const opened = await Promise.all(Array.from({ length: sessions }, () => openSession()));
const openSeconds = (performance.now() - openStarted) / 1000;
// Every session is open: now measure.
const started = performance.now();
deadline = started + seconds * 1000;
measuring = true;
await Promise.all(
  opened.map(
    (session) =>
      new Promise((resolve) => {
        session.done = resolve;
        session.query();
      }),
  ),
);
const elapsed = (performance.now() - started) / 1000;
for (const session of opened) session.socket.end(message("X", Buffer.alloc(0)));
const sorted = Float64Array.from(latencies).sort();
const at = (p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
process.stdout.write(`${JSON.stringify({ sessions, openSeconds, transactions, seconds: elapsed, tps: transactions / elapsed, p50Ms: at(50), p99Ms: at(99) })}\n`);
