import { decideStatement, type ConnectionDecision, type Grant } from "@airlock/policy";
import { create, packFrames, Protocol, SessionResponseSchema, unpackFrames, type Frames, type SessionRequest } from "@airlock/proto";
import { isLoopback, type Logger } from "@airlock/runtime";
import { backend, createPgFramer, frontend, frontendName, pg, WireError, type PgMessage } from "@airlock/wire";
import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import { IdentityError, type Identity } from "../identity/index.js";
import { AgentUnavailableError, type AgentCall } from "../link/agent-hub.js";
import { inspectFrontend } from "./inspect.js";
import { PostgresStatementGate, type ReviewOutcome, type StatementEvent } from "./postgres-statements.js";
import { PostgresResultRecorder, type SessionRecording } from "../recording/index.js";
import { PostgresMasker, type MaskCatalog } from "../mask/index.js";
import type { ConnectionMasking } from "./context.js";
import type { StatementDecision } from "@airlock/policy";
import type { GatewayServices, SessionTarget } from "./context.js";
import { admitSession, firstAgentMessage, endSessionBookkeeping, recordStatementDecision, reviewStatement, storeSessionStart, type SessionScope } from "./common.js";

/**
 * A session's lifecycle, one state at a time:
 * startup (StartupMessage, SSLRequest) -> auth (waiting for the token) -> opening (policy, agent,
 * database) -> ready (relaying) -> closed.
 */
type State =
  | { readonly name: "startup" }
  | { readonly name: "auth"; readonly parameters: ReadonlyMap<string, string> }
  | { readonly name: "opening" }
  | { readonly name: "ready"; readonly call: AgentCall }
  | { readonly name: "closed" };

/** Startup parameters never passed to the database: the agent sets user and database itself. */
const WITHHELD_PARAMETERS = new Set(["user", "database", "options", "replication"]);
const EMPTY = Buffer.alloc(0);

/**
 * Serves one PostgreSQL client on the gateway: SSL negotiation, the token as password, the
 * connection-level policy, then a relay of every message through the connection's agent.
 */
export function servePostgres(socket: Duplex, target: SessionTarget, services: GatewayServices): void {
  new PostgresSession(socket, target, services).start();
}

class PostgresSession {
  readonly #services: GatewayServices;
  readonly #target: SessionTarget;
  readonly #id = randomUUID();
  #logger: Logger;
  #client: Duplex;
  #state: State = { name: "startup" };
  #framer;
  #queue: PgMessage[] = [];
  #busy = false;
  #tls = false;
  #identity: Identity | undefined;
  #transactionStatus: "I" | "T" | "E" = "I";
  #outcome = "closed";
  #counted = false;
  #release: (() => void) | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #openedAt = 0;
  readonly #connection: string;
  #gate: PostgresStatementGate | undefined;
  #grants: Grant[] = [];
  #maxRows: number | undefined;
  /** Rows of the current result so far, and whether the result went over max_rows. */
  #rows = 0;
  #overLimit = false;
  #cancelReview: (() => void) | undefined;
  #stored = false;
  /** The store has the session's start (decisions and the end wait for it). */
  #storedStart: Promise<unknown> = Promise.resolve();
  #recording: SessionRecording | undefined;
  #results: PostgresResultRecorder | undefined;
  #statements = 0;
  /** Statements or parameters were recorded since the last flush: sync before they go out. */
  #unsynced = false;
  #masking: ConnectionMasking | undefined;
  #maskCatalog: MaskCatalog | undefined;
  #masker: PostgresMasker | undefined;
  /** An allowed schema change went out: refresh the mask catalog at the next ReadyForQuery. */
  #schemaChanged = false;
  readonly #maskedCounts = new Map<string, number>();

  constructor(socket: Duplex, target: SessionTarget, services: GatewayServices) {
    this.#client = socket;
    this.#target = target;
    this.#services = services;
    this.#connection = target.connection.name;
    this.#framer = createPgFramer({ maxMessageBytes: services.maxMessageBytes, startup: true });
    this.#logger = services.logger.child({ session: this.#id, connection: this.#connection, transport: target.transport.kind, client: target.transport.remoteAddress });
  }

  start(): void {
    this.#openedAt = performance.now();
    this.#attach(this.#client);
  }

  #attach(stream: Duplex): void {
    stream.on("data", (chunk: Buffer) => this.#onData(chunk));
    stream.on("error", (error: Error) => {
      this.#logger.debug({ err: error.message }, "client connection error");
      this.#close("client_error");
    });
    stream.on("close", () => this.#close(this.#state.name === "ready" ? "client_closed" : "client_left"));
  }

  #onData(chunk: Buffer): void {
    if (this.#state.name === "closed") return;
    try {
      for (const message of this.#framer.push(chunk)) this.#queue.push(message);
    } catch (error) {
      this.#protocolViolation(error);
      return;
    }
    this.#drain();
  }

  /** Handles queued client messages in order; an async step (token check, agent) pauses the client. */
  #drain(): void {
    while (!this.#busy && this.#queue.length > 0 && this.#state.name !== "closed") {
      if (this.#state.name === "ready") {
        try {
          this.#forward(this.#state.call);
        } catch (error) {
          // Anything a client's bytes can make a decoder throw ends this session, never the gateway.
          this.#protocolViolation(error);
          return;
        }
        continue;
      }
      const message = this.#queue.shift() as PgMessage;
      let step: Promise<void> | undefined;
      try {
        step = message.code === 0 ? this.#onStartup(message) : this.#onAuthMessage(message);
      } catch (error) {
        this.#protocolViolation(error);
        return;
      }
      if (step !== undefined) {
        this.#busy = true;
        this.#client.pause();
        step
          .catch((error: unknown) => this.#fatalUnexpected(error))
          .finally(() => {
            this.#busy = false;
            if (this.#state.name === "closed") return;
            this.#client.resume();
            this.#drain();
          });
      }
    }
  }

  // ---- startup and authentication ----------------------------------------------------------

  #onStartup(message: PgMessage): Promise<void> | undefined {
    if (this.#state.name !== "startup") throw new WireError("unexpected_message", "a second startup message");
    const request = pg.decodeStartup(message.bytes);
    switch (request.kind) {
      case "ssl":
        return this.#onSSLRequest();
      case "gssenc":
        this.#client.write(Buffer.from("N"));
        this.#framer.expectStartup();
        this.#continueFraming();
        return undefined;
      case "cancel": {
        const found = this.#services.cancelKeys.cancel(request.processId, request.secretKey);
        this.#logger.info({ found }, "cancel request");
        this.#close("cancel_request", true);
        return undefined;
      }
      case "startup":
        return this.#onStartupMessage(request.parameters);
    }
  }

  #onSSLRequest(): undefined {
    // Anything the client sent after SSLRequest arrived before the handshake: it was not encrypted
    // and must not be processed as if it were (CVE-2021-23214).
    if (this.#queue.length > 0 || this.#framer.buffered > 0) {
      this.#refuse("08P01", "protocol_violation", "data received after SSLRequest before the TLS handshake", "unencrypted bytes after SSLRequest");
      return undefined;
    }
    const context = this.#target.transport.kind === "native" ? this.#services.tls : undefined;
    if (context === undefined || this.#tls) {
      this.#client.write(Buffer.from("N"));
      this.#framer.expectStartup();
      return undefined;
    }
    const raw = this.#client;
    raw.removeAllListeners("data");
    raw.removeAllListeners("close");
    raw.pause();
    raw.write(Buffer.from("S"));
    const secure = new TLSSocket(raw as Socket, { isServer: true, secureContext: context });
    secure.on("error", (error) => this.#logger.info({ err: error.message }, "tls handshake failed"));
    this.#client = secure;
    this.#tls = true;
    this.#framer.expectStartup();
    this.#attach(secure);
    return undefined;
  }

  #continueFraming(): void {
    try {
      for (const message of this.#framer.push(EMPTY)) this.#queue.push(message);
    } catch (error) {
      this.#protocolViolation(error);
    }
  }

  #onStartupMessage(parameters: ReadonlyMap<string, string>): Promise<void> | undefined {
    this.#continueFraming();
    if (parameters.has("replication")) {
      this.#refuse("0A000", "replication_refused", "replication connections are not allowed through airlock", "replication requested");
      return undefined;
    }
    const transport = this.#target.transport;
    if (transport.kind === "tunnel") {
      this.#state = { name: "opening" };
      return this.#open(transport.identity, parameters);
    }
    if (!this.#tls && !isLoopback(transport.remoteAddress) && !this.#target.connection.insecure_plaintext) {
      this.#refuse("28000", "tls_required", "tls is required: connect with sslmode=require", "plaintext from a non-loopback address");
      return undefined;
    }
    this.#state = { name: "auth", parameters };
    this.#client.write(pg.encodeAuthentication(3));
    return undefined;
  }

  #onAuthMessage(message: PgMessage): Promise<void> | undefined {
    if (this.#state.name !== "auth" || message.code !== frontend.PasswordMessage) {
      throw new WireError("unexpected_message", `unexpected ${frontendName(message.code)} before authentication`);
    }
    const parameters = this.#state.parameters;
    const end = message.bytes.indexOf(0, 5);
    const token = message.bytes.toString("utf8", 5, end === -1 ? message.bytes.length : end);
    this.#state = { name: "opening" };
    return this.#services.verifier.verify(token).then(
      (identity) => this.#open(identity, parameters),
      (error: unknown) => {
        const reason = error instanceof IdentityError ? error.code : "error";
        this.#logger.warn({ reason, err: error instanceof Error ? error.message : String(error) }, "token refused");
        this.#refuse("28P01", `token_${reason}`, "password authentication failed: the token was refused", undefined);
      },
    );
  }

  async #open(identity: Identity, parameters: ReadonlyMap<string, string>): Promise<void> {
    this.#identity = identity;
    this.#logger = this.#logger.child({ principal: identity.subject, issuer: identity.issuer, groups: identity.groups });
    const admitted = await admitSession(this.#scope(), identity);
    if (!admitted.ok) {
      this.#refuse(admitted.reason === "policy_denied" ? "28000" : admitted.reason === "masking_unavailable" ? "58000" : "58030", admitted.reason, admitted.message, undefined);
      return;
    }
    const decision = admitted.decision;
    this.#grants = admitted.grants;
    if (admitted.masking !== undefined) {
      this.#masking = admitted.masking.config;
      this.#maskCatalog = admitted.masking.catalog;
    }
    this.#recording = admitted.recording;
    if (this.#recording !== undefined) this.#results = new PostgresResultRecorder(this.#recording, this.#services.recording.sampleRows);
    const passed: Record<string, string> = {};
    for (const [key, value] of parameters) if (!WITHHELD_PARAMETERS.has(key)) passed[key] = value;
    let call: AgentCall;
    try {
      call = await this.#services.hub.open({ sessionId: this.#id, connection: this.#connection, protocol: Protocol.POSTGRES, parameters: passed });
    } catch (error) {
      const reason = error instanceof AgentUnavailableError ? error.code : "agent_error";
      this.#logger.warn({ reason, err: (error as Error).message }, "no database session");
      this.#refuse("08001", reason, `connection \`${this.#connection}\` is unavailable: its agent is not connected`, undefined);
      return;
    }
    if (this.#state.name === "closed") {
      call.end();
      return;
    }
    const first = await firstAgentMessage(call);
    if (first === undefined || first.kind.case !== "frames") {
      const refused = first?.kind.case === "error" ? first.kind.value : { code: "08006", message: "the agent closed the session" };
      this.#logger.warn({ sqlstate: refused.code, err: refused.message }, "the database refused the session");
      call.end();
      this.#refuse(refused.code, "database_refused", `connection \`${this.#connection}\` is unavailable: ${refused.message}`, undefined);
      return;
    }
    this.#ready(call, first.kind.value, decision);
  }

  #ready(call: AgentCall, greeting: Frames, decision: ConnectionDecision): void {
    if (this.#state.name === "closed") {
      call.end();
      return;
    }
    const { key, release } = this.#services.cancelKeys.issue(() => {
      this.#services.hub.cancel(this.#connection, this.#id);
    });
    this.#release = release;
    const out: Buffer[] = [pg.encodeAuthenticationOk()];
    for (const message of unpackFrames(greeting)) {
      // The client gets the gateway's cancel key, never the backend's.
      out.push(message[0] === backend.BackendKeyData ? pg.encodeBackendKeyData(key.processId, key.secretKey) : message);
    }
    this.#client.write(Buffer.concat(out));
    this.#state = { name: "ready", call };
    this.#maxRows = decision.maxRows;
    this.#gate = this.#createGate(this.#identity as Identity);
    if (this.#masking !== undefined && this.#maskCatalog !== undefined) this.#masker = this.#createMasker(this.#masking, this.#maskCatalog);
    this.#stored = true;
    this.#storedStart = storeSessionStart(this.#scope(), this.#identity as Identity, this.#recording?.path);
    this.#services.metrics.sessionsActive.inc({ connection: this.#connection, transport: this.#target.transport.kind });
    this.#services.metrics.sessionOpenSeconds.observe({ connection: this.#connection }, (performance.now() - this.#openedAt) / 1000);
    this.#counted = true;
    this.#logger.info({ rules: decision.rules }, "session started");
    if (decision.sessionEndsAt !== undefined) {
      const limit = decision.sessionEndsAt.getTime() - this.#services.now().getTime();
      this.#deadline = setTimeout(() => this.#endSession("57P01", `session ended: the maximum session length of policy \`${decision.rules.join("`, `")}\` was reached`, "max_session"), Math.max(0, limit));
      this.#deadline.unref();
    }
    this.#relayFromAgent(call);
  }

  // ---- relaying ---------------------------------------------------------------------------

  /** Client -> agent: every queued message is inspected and judged, then the batch goes out as one Frames. */
  #forward(call: AgentCall): void {
    const gate = this.#gate as PostgresStatementGate;
    const batch: Buffer[] = [];
    while (this.#queue.length > 0) {
      const message = this.#queue.shift() as PgMessage;
      let verdict;
      try {
        verdict = inspectFrontend(message, this.#services.metrics, this.#connection);
      } catch (error) {
        this.#protocolViolation(error);
        return;
      }
      if (verdict === "refuse_fastpath") {
        this.#flush(call, batch);
        batch.length = 0;
        this.#client.write(
          Buffer.concat([pg.encodeErrorResponse("0A000", "fastpath function calls are not allowed through airlock"), pg.encodeReadyForQuery(this.#transactionStatus)]),
        );
        continue;
      }
      if (message.code === frontend.Terminate) {
        batch.push(message.bytes);
        this.#flush(call, batch);
        this.#outcome = "terminated";
        this.#close("terminated", true);
        return;
      }
      if (message.code === frontend.Bind && this.#recording !== undefined) this.#recordBind(message.bytes);
      const result = gate.onMessage(message);
      if (message.code === frontend.Query || message.code === frontend.Sync || message.code === frontend.Execute) this.#results?.started();
      if (result.kind === "forward") {
        batch.push(result.bytes);
        continue;
      }
      // Held for review: what was judged before goes out; nothing after it until the review ends.
      this.#pause(this.#durable().then(() => this.#state.name === "ready" && this.#flush(call, batch.splice(0))).then(() => result.release).then((bytes) => this.#durable().then(() => bytes)), (bytes) => {
        if (this.#state.name === "ready") this.#flush(call, [bytes]);
      });
      return;
    }
    if (!this.#unsynced) {
      this.#flush(call, batch);
      return;
    }
    // The recording of these statements must be on disk before they reach the database.
    this.#pause(this.#durable(), () => this.#flush(call, batch));
  }

  /** Stops reading the client until `step` is done, then runs `then` and goes on. */
  #pause<T>(step: Promise<T>, then: (value: T) => void): void {
    this.#busy = true;
    this.#client.pause();
    step
      .then(
        (value) => {
          if (this.#state.name === "ready") then(value);
        },
        (error: unknown) => this.#fatalUnexpected(error),
      )
      .finally(() => {
        this.#busy = false;
        if (this.#state.name === "closed") return;
        this.#client.resume();
        this.#drain();
      });
  }

  /** Waits until the recording holds everything noted so far; fails closed if it cannot. */
  async #durable(): Promise<void> {
    if (!this.#unsynced || this.#recording === undefined) return;
    this.#unsynced = false;
    try {
      await this.#recording.sync();
    } catch (error) {
      this.#logger.error({ err: (error as Error).message }, "the recording cannot be written");
      if (this.#services.recording.failClosed) {
        this.#endSession("58030", "the session can no longer be recorded, so it ends", "recording_failed");
        throw new RecordingFailed();
      }
    }
  }

  #recordBind(bytes: Buffer): void {
    const bind = pg.decodeBind(bytes);
    this.#recording?.note({
      type: "bind",
      portal: bind.portal,
      statement: bind.statement,
      params: bind.parameters.map((value, index) => {
        if (value === null) return null;
        const format = bind.parameterFormats.length === 1 ? bind.parameterFormats[0] : bind.parameterFormats[index];
        return format === 1 ? `\\x${value.toString("hex")}` : value.toString("utf8");
      }),
    });
    this.#unsynced = true;
  }

  #createGate(principal: Identity): PostgresStatementGate {
    const services = this.#services;
    const analyzer = services.analyzers.get(this.#connection);
    if (analyzer === undefined) throw new TypeError(`no analyser for connection \`${this.#connection}\``);
    return new PostgresStatementGate({
      analyze: (sql) => analyzer.analyze(sql),
      decide: (classes, unboundedWrite) =>
        decideStatement({ principal, connection: this.#connection, now: services.now(), policies: services.policies, grants: this.#grants, classes, unboundedWrite }),
      review: (event) => this.#review(principal, event),
      onDecision: (event) => this.#onDecision(event),
      guard: (sql, decision) => this.#maskGuard(sql, decision),
    });
  }

  #createMasker(masking: ConnectionMasking, catalog: MaskCatalog): PostgresMasker {
    const { metrics } = this.#services;
    const connection = this.#connection;
    return new PostgresMasker({
      catalog,
      detectors: masking.detectors,
      key: masking.key,
      events: {
        // Counted here and added to the metric once per batch: a per-value update costs more than the masking.
        masked: (label) => this.#maskedCounts.set(label, (this.#maskedCounts.get(label) ?? 0) + 1),
        detected: (detector) => metrics.detectorHits.inc({ connection, detector }),
        uncertain: () => metrics.uncertainLineage.inc({ connection }),
      },
      exposureOf: (sql) => masking.exposureOf(sql, (this.#maskCatalog ?? catalog).snapshot),
    });
  }

  /**
   * Masking's say on a statement of a masked identity: copying sensitive data past masking is
   * refused; predicates on sensitive columns (which let a reader infer values) get the connection's
   * `masking.inference` action, and are flagged in the recording when allowed.
   */
  #maskGuard(sql: string, decision: StatementDecision): StatementDecision | undefined {
    const masking = this.#masking;
    const catalog = this.#maskCatalog;
    if (masking === undefined || catalog === undefined) return undefined;
    const exposures = masking.exposureOf(sql, catalog.snapshot);
    if (exposures === undefined) return undefined;
    if (exposures.some((exposure) => exposure.copiesSensitive)) {
      return { effect: "deny", rule: "masking", reasons: ["the statement copies sensitive columns past masking"] };
    }
    const inferred = [...new Set(exposures.flatMap((exposure) => exposure.inference.map((entry) => `${entry.column} (${entry.clause.replace("_", " ")})`)))];
    if (inferred.length === 0) return undefined;
    const reason = `predicates on sensitive columns can reveal their values: ${inferred.join(", ")}`;
    if (masking.inference === "allow") {
      this.#recording?.note({ type: "inference", columns: inferred });
      return undefined;
    }
    if (masking.inference === "deny") return { effect: "deny", rule: "masking", reasons: [reason] };
    return decision.effect === "review" ? { ...decision, reasons: [...decision.reasons, reason] } : { ...decision, effect: "review", rule: decision.rule ?? "masking", reasons: [...decision.reasons, reason] };
  }

  async #review(principal: Identity, event: StatementEvent): Promise<ReviewOutcome> {
    const outcome = await reviewStatement(this.#scope(), principal, event, {
      recording: this.#recording,
      onPending: (cancel) => (this.#cancelReview = cancel),
      notify: (text, detail) => {
        if (this.#state.name !== "closed") this.#client.write(pg.encodeNotice(text, detail));
      },
    });
    this.#cancelReview = undefined;
    this.#unsynced = true;
    return outcome;
  }

  #onDecision(event: StatementEvent): void {
    this.#statements++;
    if (event.decision.effect !== "deny" && event.classes.includes("ddl")) this.#schemaChanged = true;
    recordStatementDecision(this.#scope(), this.#identity, this.#recording, this.#storedStart, event);
    this.#unsynced = true;
  }

  /** This session as the shared steps (common.ts) see it. */
  #scope(): SessionScope {
    return { id: this.#id, services: this.#services, target: this.#target, logger: this.#logger };
  }

  #flush(call: AgentCall, batch: Buffer[]): void {
    if (batch.length === 0) return;
    if (this.#masker !== undefined) for (const bytes of batch) this.#masker.onFrontend(bytes, this.#gate?.isSubstitute(bytes) === true);
    const frames = packFrames(batch.map((bytes) => ({ bytes })));
    this.#services.metrics.bytes.inc({ connection: this.#connection, direction: "to_database" }, frames.data.length);
    if (!call.write(create(SessionResponseSchema, { kind: { case: "frames", value: frames } }))) {
      this.#client.pause();
      call.once("drain", () => {
        if (this.#state.name !== "closed") this.#client.resume();
      });
    }
  }

  /** Agent -> client, with backpressure: the agent call is read only while the client keeps up. */
  #relayFromAgent(call: AgentCall): void {
    const toClient = this.#services.metrics.bytes.labels({ connection: this.#connection, direction: "to_client" });
    call.on("data", (message: SessionRequest) => {
      try {
        this.#onAgentMessage(call, message, toClient);
      } catch (error) {
        this.#logger.error({ err: (error as Error).message }, "cannot process a message from the database");
        this.#endSession("08P01", "the database sent a message the gateway cannot read", "agent_protocol_error");
      }
    });
    call.on("end", () => {
      // A vanished agent can end the stream too; only a call that was not cancelled ended cleanly.
      setImmediate(() => {
        if (call.cancelled) {
          lost();
          return;
        }
        if (this.#outcome !== "terminated") this.#outcome = "database_closed";
        this.#close(this.#outcome, true);
      });
    });
    const lost = () => {
      if (this.#state.name === "closed") return;
      this.#logger.warn("the agent link closed mid-session");
      this.#endSession("08006", "the connection to the database was lost: the agent link closed", "agent_lost");
    };
    call.on("error", lost);
    call.on("cancelled", lost);
    call.resume();
  }

  /** One message of the agent's stream: an error to end the session, or frames for the client. */
  #onAgentMessage(call: AgentCall, message: SessionRequest, toClient: { inc(value: number): void }): void {
    if (this.#state.name === "closed") return;
    if (message.kind.case === "error") {
      this.#endSession(message.kind.value.code, message.kind.value.message, "database_error");
      return;
    }
    if (message.kind.case !== "frames") return;
    const frames = message.kind.value;
    const data = Buffer.from(frames.data.buffer, frames.data.byteOffset, frames.data.byteLength);
    const lengths = frames.lengths;
    let total = 0;
    for (const length of lengths) total += length;
    if (total !== data.length) {
      this.#endSession("08P01", "the agent sent a malformed batch", "agent_protocol_error");
      this.#logger.error({ err: `frames: lengths add up to ${total}, the data has ${data.length} bytes` }, "malformed batch from the agent");
      return;
    }
    // The batch's messages are walked where they lie in `data` (no Buffer per message for rows);
    // what the client gets is `data` itself unless a message was replaced or dropped.
    let out: Buffer;
    if (this.#maxRows === undefined && !this.#gate?.rewriting && this.#masker === undefined) {
      const results = this.#results;
      let offset = 0;
      for (const length of lengths) {
        const end = offset + length;
        if (data[offset] === backend.DataRow && length > 0) results?.observeDataRow(data, offset, end);
        else if (length > 0) {
          const part = data.subarray(offset, end);
          this.#observeBackend(part);
          results?.observe(part);
        }
        offset = end;
      }
      out = data;
    } else {
      out = this.#rewriteBatch(data, lengths);
      if (this.#maskedCounts.size > 0) {
        for (const [column, count] of this.#maskedCounts) this.#services.metrics.maskedValues.inc({ connection: this.#connection, column }, count);
        this.#maskedCounts.clear();
      }
    }
    toClient.inc(out.length);
    if (!this.#client.write(out)) {
      call.pause();
      this.#client.once("drain", () => call.resume());
    }
  }

  /**
   * A batch through the gate's rewrites, masking and max_rows. Rows are masked where they lie
   * (in place when the mask keeps their length). Once a message is replaced or dropped, what goes
   * out is assembled in one buffer: the runs of messages that stay as they are copied whole,
   * around the replacements.
   */
  #rewriteBatch(data: Buffer, lengths: readonly number[]): Buffer {
    const masker = this.#masker;
    const results = this.#results;
    let out: Buffer | undefined;
    let written = 0;
    const append = (source: Buffer, from: number, to: number): void => {
      const size = to - from;
      if (size === 0) return;
      if (out === undefined || written + size > out.length) {
        const grown = Buffer.allocUnsafe(Math.max(data.length + 4096, 2 * (out?.length ?? 0), written + size));
        if (out !== undefined) out.copy(grown, 0, 0, written);
        out = grown;
      }
      written += source.copy(out, written, from, to);
    };
    let runStart = 0;
    let offset = 0;
    for (const length of lengths) {
      const end = offset + length;
      if (length === 0) continue;
      let replaced: Buffer | undefined;
      if (data[offset] === backend.DataRow) {
        // The gate rewrites only errors. Masking comes before anything that keeps or counts what the client receives.
        const masked = masker?.onDataRow(data, offset, end);
        if (this.#overMaxRows()) replaced = undefined;
        else if (masked === undefined) {
          results?.observeDataRow(data, offset, end);
          offset = end;
          continue;
        } else {
          results?.observe(masked);
          replaced = masked;
        }
      } else {
        const part = data.subarray(offset, end);
        const rewritten = this.#gate?.rewriteBackend(part) ?? part;
        const masked = masker === undefined ? rewritten : masker.onBackend(rewritten);
        replaced = masked === undefined ? undefined : this.#limitRows(masked);
        if (replaced !== undefined) {
          this.#observeBackend(replaced);
          results?.observe(replaced);
        }
        if (replaced === part) {
          offset = end;
          continue;
        }
      }
      append(data, runStart, offset);
      if (replaced !== undefined) append(replaced, 0, replaced.length);
      offset = end;
      runStart = end;
    }
    if (runStart === 0) return data;
    append(data, runStart, offset);
    return out === undefined ? Buffer.alloc(0) : out.subarray(0, written);
  }

  /** A row of the current result: whether it is past max_rows (then it is not sent). */
  #overMaxRows(): boolean {
    if (this.#maxRows === undefined) return false;
    this.#rows++;
    if (this.#rows <= this.#maxRows) return false;
    this.#overLimit = true;
    return true;
  }

  /**
   * Enforces max_rows: rows past the limit are not sent, and the result's CommandComplete becomes
   * an error, so the client never takes a cut result for a whole one.
   */
  #limitRows(message: Buffer): Buffer | undefined {
    if (this.#maxRows === undefined) return message;
    switch (message[0]) {
      case backend.DataRow:
        return this.#overMaxRows() ? undefined : message;
      case backend.CommandComplete:
      case backend.ErrorResponse: {
        const over = this.#overLimit;
        this.#rows = 0;
        this.#overLimit = false;
        if (!over) return message;
        this.#logger.info({ maxRows: this.#maxRows }, "result over max_rows");
        return pg.encodeErrorResponse("54000", `the statement returned more than ${this.#maxRows} rows, the max_rows of this connection's policy`, {
          hint: "add a LIMIT, or fetch with a cursor in batches",
        });
      }
      case backend.ReadyForQuery:
      case backend.RowDescription:
        this.#rows = 0;
        this.#overLimit = false;
        return message;
      default:
        return message;
    }
  }

  #observeBackend(message: Buffer): void {
    const code = message[0];
    if (code === backend.ReadyForQuery) {
      this.#transactionStatus = pg.decodeReadyForQuery(message);
      this.#gate?.onReadyForQuery();
      const masking = this.#services.masking.get(this.#connection);
      if (this.#schemaChanged && masking !== undefined) {
        // Any session's schema change makes every session of the connection read the catalog again.
        this.#schemaChanged = false;
        masking.catalog.invalidate();
        if (this.#masker !== undefined) masking.catalog.get().then(
          (catalog) => {
            this.#maskCatalog = catalog;
            this.#masker?.setCatalog(catalog);
          },
          (error: unknown) => this.#logger.warn({ err: String(error) }, "cannot refresh the mask catalog"),
        );
      }
    }
    else if (code === backend.ErrorResponse) {
      // Any field may be missing: decodeErrorFields never assumes one.
      const fields = pg.decodeErrorFields(message);
      this.#logger.debug({ sqlstate: fields.C ?? "", severity: fields.V ?? fields.S ?? "" }, "database error");
    }
  }

  // ---- ending -----------------------------------------------------------------------------

  #endSession(sqlstate: string, text: string, outcome: string): void {
    if (this.#state.name === "closed") return;
    this.#outcome = outcome;
    this.#client.write(pg.encodeErrorResponse(sqlstate, text, { severity: "FATAL" }));
    this.#close(outcome, true);
  }

  #refuse(sqlstate: string, reason: string, text: string, logMessage: string | undefined): void {
    if (this.#state.name === "closed") return;
    this.#services.metrics.startupRefusals.inc({ connection: this.#connection, reason });
    if (logMessage !== undefined) this.#logger.warn({ reason }, logMessage);
    this.#client.write(pg.encodeErrorResponse(sqlstate, text, { severity: "FATAL" }));
    this.#close(reason, true);
  }

  #protocolViolation(error: unknown): void {
    const message = error instanceof WireError ? error.message : "invalid message";
    const code = error instanceof WireError ? error.code : "malformed_message";
    this.#logger.warn({ code, err: message }, "protocol violation");
    if (this.#state.name === "ready" || this.#state.name === "opening") this.#outcome = "protocol_violation";
    if (!this.#counted) this.#services.metrics.startupRefusals.inc({ connection: this.#connection, reason: code });
    if (this.#state.name !== "closed") this.#client.write(pg.encodeErrorResponse("08P01", `protocol violation: ${message}`, { severity: "FATAL" }));
    this.#close("protocol_violation", true);
  }

  #fatalUnexpected(error: unknown): void {
    if (error instanceof RecordingFailed) return;
    this.#logger.error({ err: error instanceof Error ? error.stack : String(error) }, "session failed");
    if (this.#state.name !== "closed") this.#client.write(pg.encodeErrorResponse("XX000", "internal error in the gateway", { severity: "FATAL" }));
    this.#close("internal_error", true);
  }

  #close(outcome: string, flush = false): void {
    if (this.#state.name === "closed") return;
    const previous = this.#state;
    this.#state = { name: "closed" };
    if (this.#deadline !== undefined) clearTimeout(this.#deadline);
    this.#release?.();
    this.#cancelReview?.();
    if (previous.name === "ready") previous.call.end();
    if (flush) this.#client.end();
    else this.#client.destroy();
    // Some clients never close their side; do not keep the socket forever.
    setTimeout(() => this.#client.destroy(), 5_000).unref();
    const final = this.#outcome === "closed" ? outcome : this.#outcome;
    endSessionBookkeeping(this.#scope(), {
      outcome: final,
      counted: this.#counted,
      stored: this.#stored,
      storedStart: this.#storedStart,
      recording: this.#recording,
      statements: this.#statements,
      openedAt: this.#openedAt,
    });
  }
}


/** The session already ended because its recording failed. */
class RecordingFailed extends Error {}

