import { decideStatement, type Grant, type StatementDecision } from "@airlock/policy";
import { create, packFrames, Protocol, SessionResponseSchema, type SessionRequest } from "@airlock/proto";
import type { Logger } from "@airlock/runtime";
import { createMongoFramer, mongo, mongoOpcodes, opMsgFlags, WireError, type MongoMessage } from "@airlock/wire";
import { EJSON, type Document } from "bson";
import { randomUUID } from "node:crypto";
import type { Duplex } from "node:stream";
import { IdentityError, type Identity } from "../identity/index.js";
import { analyzeMongo, type MongoAnalysis } from "../inspect/index.js";
import { AgentUnavailableError, type AgentCall } from "../link/agent-hub.js";
import { acceptMongoLogin, finishMongoLogin, MONGO_LISTENER_SERVER_DEFAULTS, mongoHelloReply, MongoHandshakeError, type MongoClientLogin, type MongoServerFacts } from "../listeners/mongo-handshake.js";
import { buildMongoMaskCatalog, createMongoMasker, parseMongoField, type MongoMasker, type MongoMaskPlan, type MongoView } from "../mask/mongo/index.js";
import type { MaskCatalog } from "../mask/index.js";
import type { SessionRecording } from "../recording/index.js";
import { admitSession, firstAgentMessage, endSessionBookkeeping, sendAfterRecording, recordStatementDecision, reviewStatement, storeSessionStart, type Admitted, type SessionScope } from "./common.js";
import type { GatewayServices, SessionTarget } from "./context.js";
import type { StatementEvent } from "./postgres-statements.js";

/** What a MongoDB listener shares across its sessions. */
export interface MongoListenerContext {
  /** What the handshake tells clients about the server: learnt from the agent's logins. */
  readonly server: () => MongoServerFacts;
  readonly learnServer: (facts: Readonly<Record<string, string>>) => void;
  readonly nextConnectionId: () => number;
}

/** Creates a listener's shared state; before any agent login the handshake announces MongoDB 7.0's values. */
export function createMongoListenerContext(): MongoListenerContext {
  let server: MongoServerFacts = MONGO_LISTENER_SERVER_DEFAULTS;
  let connectionId = 0;
  return {
    server: () => server,
    learnServer(facts) {
      const number = (key: string, fallback: number) => {
        const value = Number(facts[key]);
        return Number.isSafeInteger(value) && value >= 0 ? value : fallback;
      };
      server = {
        ...server,
        minWireVersion: number("minWireVersion", server.minWireVersion),
        maxWireVersion: number("maxWireVersion", server.maxWireVersion),
        maxBsonObjectSize: number("maxBsonObjectSize", server.maxBsonObjectSize),
        maxMessageSizeBytes: number("maxMessageSizeBytes", server.maxMessageSizeBytes),
        maxWriteBatchSize: number("maxWriteBatchSize", server.maxWriteBatchSize),
        logicalSessionTimeoutMinutes: number("logicalSessionTimeoutMinutes", server.logicalSessionTimeoutMinutes),
      };
    },
    nextConnectionId: () => (connectionId = (connectionId % 0x7fffffff) + 1),
  };
}

/** Commands the gateway answers itself: the handshake's, so the client never sees the server's topology or credentials. */
const HANDSHAKE = new Set(["hello", "ismaster", "isMaster"]);
const AUTHENTICATION = new Set(["saslStart", "saslContinue", "authenticate", "logout"]);
/** How much of a command the recording keeps (Extended JSON). */
const MAX_RECORDED_COMMAND = 16 * 1024;
const REPLY_DECODE = { bson: { promoteValues: false } } as const;

/**
 * A session's lifecycle: login (hello, the token) -> opening (policy, agent, database) -> ready
 * (relaying, each command judged) | held (a review) -> closed.
 */
type State =
  | { readonly name: "login" }
  | { readonly name: "opening" }
  | { readonly name: "ready"; readonly call: AgentCall }
  | { readonly name: "held"; readonly call: AgentCall }
  | { readonly name: "closed" };

/** A command sent to the server, until its last reply: how to mask and record the replies. */
interface Pending {
  readonly plan: MongoMaskPlan | undefined;
  readonly command: string;
}

/**
 * Serves one MongoDB client on the gateway: the login (MONGODB-OIDC or PLAIN with the job's
 * token) or the tunnel's identity, the connection policy, then every command decoded, judged and
 * recorded before the agent gets it, and every reply masked and recorded on its way back.
 */
export function serveMongo(socket: Duplex, target: SessionTarget, services: GatewayServices, listener: MongoListenerContext, tls: boolean): void {
  new MongoSession(socket, target, services, listener, tls).start();
}

class MongoSession {
  readonly #services: GatewayServices;
  readonly #target: SessionTarget;
  readonly #listener: MongoListenerContext;
  readonly #tls: boolean;
  readonly #id = randomUUID();
  readonly #connection: string;
  readonly #connectionId: number;
  #logger: Logger;
  #socket: Duplex;
  #state: State = { name: "login" };
  #identity: Identity | undefined;
  #grants: Grant[] = [];
  #recording: SessionRecording | undefined;
  #stored = false;
  #storedStart: Promise<unknown> = Promise.resolve();
  #counted = false;
  #openedAt = 0;
  #outcome = "closed";
  #statements = 0;
  #cancelReview: (() => void) | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #framer;
  #queue: MongoMessage[] = [];
  #masker: MongoMasker | undefined;
  #inference: "allow" | "review" | "deny" = "deny";
  #pending = new Map<number, Pending>();
  /** Masked values per field label since the last batch went to the client. */
  #maskedCounts = new Map<string, number>();
  #sampleRows: number;

  constructor(socket: Duplex, target: SessionTarget, services: GatewayServices, listener: MongoListenerContext, tls: boolean) {
    this.#socket = socket;
    this.#target = target;
    this.#services = services;
    this.#listener = listener;
    this.#tls = tls;
    this.#connection = target.connection.name;
    this.#connectionId = listener.nextConnectionId();
    this.#framer = createMongoFramer({ maxMessageBytes: services.maxMessageBytes });
    this.#sampleRows = services.recording.sampleRows;
    this.#logger = services.logger.child({ session: this.#id, connection: this.#connection, transport: target.transport.kind, client: target.transport.remoteAddress });
  }

  start(): void {
    this.#openedAt = performance.now();
    this.#socket.on("error", (error: Error) => this.#logger.debug({ err: error.message }, "client connection error"));
    const transport = this.#target.transport;
    if (transport.kind === "tunnel") {
      // The tunnel's identity is known: the client connects without credentials and its handshake is answered in the relay.
      this.#socket.pause();
      this.#attachClient();
      this.#open(transport.identity, undefined).catch((error: unknown) => this.#fatalUnexpected(error));
      return;
    }
    this.#login().catch((error: unknown) => this.#fatalUnexpected(error));
  }

  #scope(): SessionScope {
    return { id: this.#id, services: this.#services, target: this.#target, logger: this.#logger };
  }

  #isClosed(): boolean {
    return this.#state.name === "closed";
  }

  // ---- login ----------------------------------------------------------------------------------

  async #login(): Promise<void> {
    const transport = this.#target.transport;
    let login: MongoClientLogin;
    try {
      login = await acceptMongoLogin(this.#socket, {
        tls: this.#tls,
        connectionId: this.#connectionId,
        remoteAddress: transport.remoteAddress,
        insecureAllowPlaintext: this.#target.connection.insecure_plaintext,
        server: this.#listener.server(),
        now: () => this.#services.now(),
      });
    } catch (error) {
      const code = error instanceof MongoHandshakeError ? error.code : "handshake_failed";
      // Driver monitors never authenticate: their leaving is no refusal.
      if (code !== "client_closed") this.#services.metrics.startupRefusals.inc({ connection: this.#connection, reason: code });
      this.#logger.debug({ reason: code, err: (error as Error).message }, "login ended");
      this.#state = { name: "closed" };
      this.#socket.destroy();
      return;
    }
    for (;;) {
      try {
        const identity = await this.#services.verifier.verify(login.token.reveal());
        this.#socket = login.socket;
        this.#attachClient();
        await this.#open(identity, login);
        return;
      } catch (error) {
        if (!(error instanceof IdentityError)) throw error;
        this.#logger.warn({ reason: error.code, err: error.message }, "token refused");
        this.#services.metrics.startupRefusals.inc({ connection: this.#connection, reason: `token_${error.code}` });
        try {
          // The driver may retry on the same connection with a fresh token.
          login = await finishMongoLogin(login, false, "the token was refused");
        } catch {
          this.#state = { name: "closed" };
          return;
        }
      }
    }
  }

  #attachClient(): void {
    this.#socket.on("error", (error: Error) => this.#logger.debug({ err: error.message }, "client connection error"));
    this.#socket.on("close", () => this.#close(this.#state.name === "ready" ? "client_closed" : "client_left"));
    this.#socket.on("data", (chunk: Buffer) => this.#onData(chunk));
  }

  async #open(identity: Identity, login: MongoClientLogin | undefined): Promise<void> {
    this.#state = { name: "opening" };
    this.#identity = identity;
    this.#logger = this.#logger.child({ principal: identity.subject, issuer: identity.issuer, groups: identity.groups });
    const refuse = (reason: string, message: string) => {
      this.#services.metrics.startupRefusals.inc({ connection: this.#connection, reason });
      if (login !== undefined) void finishMongoLogin(login, false, message).catch(() => undefined);
      this.#close(reason);
    };
    const admitted = await admitSession(this.#scope(), identity);
    if (!admitted.ok) {
      refuse(admitted.reason, admitted.message);
      return;
    }
    this.#grants = admitted.grants;
    this.#recording = admitted.recording;
    let call: AgentCall;
    try {
      call = await this.#services.hub.open({ sessionId: this.#id, connection: this.#connection, protocol: Protocol.MONGODB, parameters: {} });
    } catch (error) {
      const reason = error instanceof AgentUnavailableError ? error.code : "agent_error";
      this.#logger.warn({ reason, err: (error as Error).message }, "no database session");
      refuse(reason, `connection \`${this.#connection}\` is unavailable: its agent is not connected`);
      return;
    }
    const first = await firstAgentMessage(call);
    if (this.#isClosed()) {
      call.end();
      return;
    }
    if (first === undefined || first.kind.case !== "opened") {
      const refused = first?.kind.case === "error" ? first.kind.value : { code: "6:HostUnreachable", message: "the agent closed the session" };
      this.#logger.warn({ code: refused.code, err: refused.message }, "the database refused the session");
      call.end();
      refuse("database_refused", `connection \`${this.#connection}\` is unavailable: ${refused.message}`);
      return;
    }
    this.#listener.learnServer(first.kind.value.facts);
    if (admitted.masking !== undefined) this.#createMasker(admitted.masking);
    if (login !== undefined) finishMongoLogin(login, true);
    this.#state = { name: "ready", call };
    this.#stored = true;
    this.#storedStart = storeSessionStart(this.#scope(), identity, this.#recording?.path);
    this.#services.metrics.sessionsActive.inc({ connection: this.#connection, transport: this.#target.transport.kind });
    this.#services.metrics.sessionOpenSeconds.observe({ connection: this.#connection }, (performance.now() - this.#openedAt) / 1000);
    this.#counted = true;
    this.#logger.info({ rules: admitted.decision.rules }, "session started");
    const endsAt = admitted.decision.sessionEndsAt;
    if (endsAt !== undefined) {
      this.#deadline = setTimeout(() => this.#close("max_session"), Math.max(0, endsAt.getTime() - this.#services.now().getTime()));
    }
    this.#relayFromAgent(call);
    if (login !== undefined && login.leftover.length > 0) this.#onData(login.leftover);
    this.#drain();
  }

  /** The masker of a masked identity: the declared fields, and the views the agent's catalog lists. */
  #createMasker(masking: NonNullable<Admitted["masking"]>): void {
    const declared = this.#target.connection.masking?.columns ?? [];
    const fields = declared.map((column) => ({ ...parseMongoField(column.column), style: column.style, ...(column.keep === undefined ? {} : { keep: column.keep }) }));
    const catalog = buildMongoMaskCatalog(fields, mongoViews(masking.catalog));
    const metrics = this.#services.metrics;
    const connection = this.#connection;
    this.#inference = masking.config.inference;
    this.#masker = createMongoMasker({
      catalog,
      ...(masking.config.detectors === undefined ? {} : { detectors: masking.config.detectors }),
      ...(masking.config.key === undefined ? {} : { key: masking.config.key }),
      events: {
        // Counted here and added to the metric once per batch: a per-value update costs more than the masking.
        masked: (label: string) => this.#maskedCounts.set(label, (this.#maskedCounts.get(label) ?? 0) + 1),
        detected: (detector: string) => metrics.detectorHits.inc({ connection, detector }),
        uncertain: () => metrics.uncertainLineage.inc({ connection }),
      },
    });
  }

  // ---- client -> agent ------------------------------------------------------------------------

  #onData(chunk: Buffer): void {
    if (this.#isClosed()) return;
    try {
      for (const message of this.#framer.push(chunk)) this.#queue.push(message);
    } catch (error) {
      this.#protocolViolation(error);
      return;
    }
    this.#drain();
  }

  #drain(): void {
    while (this.#state.name === "ready" && this.#queue.length > 0) {
      const message = this.#queue.shift() as MongoMessage;
      try {
        this.#onClientMessage(this.#state.call, message);
      } catch (error) {
        this.#protocolViolation(error);
        return;
      }
    }
    if (this.#state.name === "ready") this.#socket.resume();
    else if (!this.#isClosed()) this.#socket.pause();
  }

  #onClientMessage(call: AgentCall, message: MongoMessage): void {
    if (message.opCode === mongoOpcodes.OP_QUERY) {
      // Only the legacy handshake comes as OP_QUERY.
      const query = mongo.decodeOpQuery(message.bytes);
      const name = commandName(query.query);
      if (query.fullCollectionName.endsWith(".$cmd") && HANDSHAKE.has(name)) {
        this.#socket.write(mongo.encodeOpReply({ requestID: 0, responseTo: query.requestID, documents: [this.#hello(name, query.query)] }));
        return;
      }
      this.#socket.write(mongo.encodeOpReply({ requestID: 0, responseTo: query.requestID, documents: [{ ok: 0, code: 352, codeName: "UnsupportedOpQueryCommand", errmsg: `unsupported OP_QUERY command \`${name}\`` }] }));
      return;
    }
    if (message.opCode !== mongoOpcodes.OP_MSG) throw new WireError("unexpected_message", `opcode ${message.opCode} is not taken after the login`);
    const decoded = mongo.decodeOpMsg(message.bytes);
    const command = mongo.opMsgCommand(decoded);
    const name = commandName(command);
    const silent = (decoded.flagBits & opMsgFlags.moreToCome) !== 0;
    const reply = (body: Document) => {
      if (!silent) this.#socket.write(mongo.encodeOpMsg({ requestID: 0, responseTo: decoded.requestID, body }));
    };
    /** The gateway's own refusal: the client's reply, and in the recording what the client saw. */
    const refuse = (body: Document) => {
      this.#recordReply(name, body);
      reply(body);
    };
    this.#services.metrics.messages.inc({ connection: this.#connection, type: name });
    if (HANDSHAKE.has(name)) {
      reply(this.#hello(name, command));
      return;
    }
    if (AUTHENTICATION.has(name)) {
      // Never relayed, whatever the policy: it would log the agent's connection in as someone else, or out.
      const reason = `\`${name}\` is the gateway's: the session is already authenticated as the job`;
      // Recorded without its payload, which carries credentials.
      const shown = { [name]: command[name], ...(typeof command.mechanism === "string" ? { mechanism: command.mechanism } : {}), $db: command.$db };
      this.#onDecision({ sql: recordedCommand(shown), protocol: "simple", classes: ["dangerous"], decision: { effect: "deny", reasons: [reason] } });
      refuse({ ok: 0, code: 13, codeName: "Unauthorized", errmsg: `airlock: ${reason}` });
      return;
    }
    const analysis = analyzeMongo(command, { database: typeof command.$db === "string" ? command.$db : "admin" });
    let decision = this.#decide(analysis);
    let plan: MongoMaskPlan | undefined;
    if (decision.effect !== "deny" && this.#masker !== undefined) {
      plan = this.#masker.plan(command);
      decision = this.#maskGuard(plan, decision);
    }
    const event: StatementEvent = {
      sql: recordedCommand(command),
      protocol: "simple",
      classes: analysis.ok ? analysis.classes : [],
      decision,
      ...(analysis.ok && analysis.statements.some((statement) => statement.copiesData) ? { copiesData: true } : {}),
      ...(analysis.ok ? {} : { parseError: analysis.error }),
    };
    this.#onDecision(event);
    if (decision.effect === "deny") {
      refuse({ ok: 0, code: 13, codeName: "Unauthorized", errmsg: `airlock: command denied${decision.rule === undefined ? "" : ` by policy \`${decision.rule}\``}${decision.reasons.length === 0 ? "" : `: ${decision.reasons.join("; ")}`}` });
      return;
    }
    const forward = () => {
      if (!silent) this.#pending.set(decoded.requestID, { plan, command: name });
      this.#send(call, message.bytes);
    };
    if (decision.effect === "review") {
      this.#hold(call, event, forward, refuse);
      return;
    }
    forward();
  }

  #hello(name: string, command: Document): Document {
    return mongoHelloReply(name === "ismaster" ? "isMaster" : name, command, this.#listener.server(), this.#connectionId, this.#services.now());
  }

  #decide(analysis: MongoAnalysis): StatementDecision {
    if (!analysis.ok) return { effect: "deny", reasons: [analysis.error] };
    const unboundedWrite = analysis.statements.some((statement) => statement.unboundedWrite);
    return decideStatement({ principal: this.#identity as Identity, connection: this.#connection, now: this.#services.now(), policies: this.#services.policies, grants: this.#grants, classes: analysis.classes, unboundedWrite });
  }

  /** Masking's say on a masked identity's command: copies past masking are refused; inference per `masking.inference`. */
  #maskGuard(plan: MongoMaskPlan, decision: StatementDecision): StatementDecision {
    if (plan.copiesSensitive) return { effect: "deny", rule: "masking", reasons: ["the command copies sensitive fields past masking"] };
    if (plan.inference.length === 0) return decision;
    const fields = [...new Set(plan.inference.map((entry) => `${entry.column} (${entry.clause.replace("_", " ")})`))];
    const reason = `filters, sorts or groups on sensitive fields can reveal their values: ${fields.join(", ")}`;
    if (this.#inference === "allow") {
      this.#recording?.note({ type: "inference", columns: fields });
      return decision;
    }
    if (this.#inference === "deny") return { effect: "deny", rule: "masking", reasons: [reason] };
    return { ...decision, effect: "review", rule: decision.rule ?? "masking", reasons: [...decision.reasons, reason] };
  }

  #hold(call: AgentCall, event: StatementEvent, forward: () => void, refuse: (body: Document) => void): void {
    this.#state = { name: "held", call };
    reviewStatement(this.#scope(), this.#identity as Identity, event, {
      recording: this.#recording,
      onPending: (cancel) => (this.#cancelReview = cancel),
      notify: () => undefined,
    }).then(
      (outcome) => {
        this.#cancelReview = undefined;
        if (this.#state.name !== "held") return;
        this.#state = { name: "ready", call };
        if (outcome.approved) forward();
        else refuse({ ok: 0, code: 13, codeName: "Unauthorized", errmsg: `airlock: ${outcome.message}` });
        this.#drain();
      },
      (error: unknown) => this.#fatalUnexpected(error),
    );
  }

  /** Sends a message on once everything recorded so far is durable (the command's record before it runs). */
  #send(call: AgentCall, bytes: Buffer): void {
    const copy = Buffer.from(bytes);
    const send = () => {
      this.#services.metrics.bytes.inc({ connection: this.#connection, direction: "to_database" }, copy.length);
      if (!call.write(create(SessionResponseSchema, { kind: { case: "frames", value: packFrames([{ bytes: copy }]) } }))) {
        this.#socket.pause();
        call.once("drain", () => {
          if (this.#state.name === "ready") this.#socket.resume();
        });
      }
    };
    sendAfterRecording(this.#scope(), this.#recording, send, () => this.#close("recording_failed"));
  }

  #onDecision(event: StatementEvent): void {
    this.#statements++;
    recordStatementDecision(this.#scope(), this.#identity, this.#recording, this.#storedStart, event);
  }

  // ---- agent -> client ------------------------------------------------------------------------

  #relayFromAgent(call: AgentCall): void {
    const toClient = this.#services.metrics.bytes.labels({ connection: this.#connection, direction: "to_client" });
    call.on("data", (message: SessionRequest) => {
      if (this.#isClosed()) return;
      if (message.kind.case === "error") {
        this.#logger.warn({ code: message.kind.value.code, err: message.kind.value.message }, "the database session failed");
        this.#close("database_error");
        return;
      }
      if (message.kind.case !== "frames") return;
      let out: Buffer[];
      try {
        out = this.#onServerMessages(Buffer.from(message.kind.value.data.buffer, message.kind.value.data.byteOffset, message.kind.value.data.byteLength));
      } catch (error) {
        this.#logger.error({ err: (error as Error).message }, "cannot process a message from the database");
        this.#close("agent_protocol_error");
        return;
      }
      const bytes = out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
      toClient.inc(bytes.length);
      if (this.#maskedCounts.size > 0) {
        for (const [column, count] of this.#maskedCounts) this.#services.metrics.maskedValues.inc({ connection: this.#connection, column }, count);
        this.#maskedCounts.clear();
      }
      if (!this.#socket.write(bytes)) {
        call.pause();
        this.#socket.once("drain", () => call.resume());
      }
    });
    const lost = () => {
      if (this.#isClosed()) return;
      this.#logger.warn("the agent link closed mid-session");
      this.#close("agent_lost");
    };
    call.on("end", () => setImmediate(() => (call.cancelled ? lost() : this.#close("database_closed"))));
    call.on("error", lost);
    call.on("cancelled", lost);
    call.resume();
  }

  /** Masks and records a batch of server messages (OP_MSG replies); returns what the client gets. */
  #onServerMessages(data: Buffer): Buffer[] {
    const framer = createMongoFramer({ maxMessageBytes: this.#services.maxMessageBytes });
    const messages = framer.push(data);
    if (framer.buffered !== 0) throw new WireError("malformed_message", "a batch from the agent does not hold whole messages");
    const out: Buffer[] = [];
    for (const message of messages) {
      if (message.opCode !== mongoOpcodes.OP_MSG) throw new WireError("unexpected_message", `the database sent opcode ${message.opCode}`);
      const pending = this.#pending.get(message.responseTo);
      const decoded = mongo.decodeOpMsg(message.bytes, REPLY_DECODE);
      if ((decoded.flagBits & opMsgFlags.moreToCome) === 0) this.#pending.delete(message.responseTo);
      const body = mongo.opMsgBody(decoded);
      let sent = message.bytes;
      let shown: Document = body;
      if (this.#masker !== undefined) {
        // A reply to nothing this session sent is masked whole: fail closed.
        shown = pending?.plan === undefined ? { ok: 0, code: 17, codeName: "ProtocolError", errmsg: "airlock: a reply the gateway cannot place was withheld" } : this.#masker.maskReply(pending.plan, body);
        if (shown !== body) sent = mongo.encodeOpMsg({ requestID: decoded.requestID, responseTo: decoded.responseTo, flagBits: decoded.flagBits & ~opMsgFlags.checksumPresent, body: shown });
      }
      this.#recordReply(pending?.command ?? "?", shown);
      out.push(sent);
    }
    return out;
  }

  /** The result in the recording: ok/error, counts, and the first documents of a batch (as the client got them). */
  #recordReply(command: string, reply: Document): void {
    const recording = this.#recording;
    if (recording === undefined) return;
    const cursor = reply.cursor as Document | undefined;
    const batch = (cursor?.firstBatch ?? cursor?.nextBatch) as unknown[] | undefined;
    const event: Record<string, unknown> = { type: "result", command, ok: Number(reply.ok) === 1 };
    if (reply.code !== undefined) event.code = Number(reply.code);
    if (typeof reply.errmsg === "string") event.error = reply.errmsg;
    if (Array.isArray(batch)) {
      event.documents = batch.length;
      event.sample = EJSON.serialize(batch.slice(0, this.#sampleRows), { relaxed: true });
    }
    if (reply.n !== undefined) event.n = Number(reply.n);
    if (reply.nModified !== undefined) event.nModified = Number(reply.nModified);
    if (Array.isArray(reply.writeErrors)) event.writeErrors = EJSON.serialize(reply.writeErrors, { relaxed: true });
    recording.note(event);
  }

  // ---- ending ---------------------------------------------------------------------------------

  #protocolViolation(error: unknown): void {
    const message = error instanceof WireError ? error.message : "invalid message";
    const code = error instanceof WireError ? error.code : "malformed_message";
    this.#logger.warn({ code, err: message }, "protocol violation");
    this.#outcome = "protocol_violation";
    this.#close("protocol_violation");
  }

  #fatalUnexpected(error: unknown): void {
    this.#logger.error({ err: error instanceof Error ? error.stack : String(error) }, "session failed");
    this.#close("internal_error");
  }

  #close(outcome: string): void {
    if (this.#isClosed()) return;
    const previous = this.#state;
    this.#state = { name: "closed" };
    if (this.#deadline !== undefined) clearTimeout(this.#deadline);
    this.#cancelReview?.();
    if (previous.name === "ready" || previous.name === "held") previous.call.end();
    this.#socket.destroy();
    endSessionBookkeeping(this.#scope(), {
      outcome: this.#outcome === "closed" ? outcome : this.#outcome,
      counted: this.#counted,
      stored: this.#stored,
      storedStart: this.#storedStart,
      recording: this.#recording,
      statements: this.#statements,
      openedAt: this.#openedAt,
    });
  }
}

/** A command's name is its first field. */
function commandName(command: Document): string {
  for (const key in command) return key;
  return "";
}

/** The command as the recording keeps it: canonical Extended JSON, cut at 16 KiB. */
function recordedCommand(command: Document): string {
  const text = EJSON.stringify(command, { relaxed: true });
  return text.length <= MAX_RECORDED_COMMAND ? text : `${text.slice(0, MAX_RECORDED_COMMAND)}…`;
}

/** The views of the agent's catalog (kind `v`, definition `{viewOn, pipeline}` in Extended JSON). */
function mongoViews(catalog: MaskCatalog): MongoView[] {
  const views: MongoView[] = [];
  for (const relation of catalog.byOid.values()) {
    if (relation.kind !== "view") continue;
    try {
      const definition = EJSON.parse(relation.definition) as { viewOn?: unknown; pipeline?: unknown };
      if (typeof definition.viewOn !== "string") continue;
      views.push({ database: relation.schema, name: relation.name, viewOn: definition.viewOn, pipeline: Array.isArray(definition.pipeline) ? (definition.pipeline as Document[]) : [] });
    } catch {
      // A view masking cannot read: its documents are those of an unknown namespace.
    }
  }
  return views;
}

