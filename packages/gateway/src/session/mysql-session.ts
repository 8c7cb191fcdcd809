import { decideStatement, type Grant, type StatementClass, type StatementDecision } from "@airlock/policy";
import { create, packFrames, Protocol, SessionResponseSchema, type SessionRequest } from "@airlock/proto";
import type { Logger } from "@airlock/runtime";
import { createMysqlFramer, mysql, mysqlCapabilities, mysqlCommandName, mysqlCommands, WireError, type MysqlPacket } from "@airlock/wire";
import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { IdentityError, type Identity } from "../identity/index.js";
import { createMysqlSessionState, parseServerVersion, type MysqlSessionState, type MysqlStatementAnalysis } from "../inspect/index.js";
import { AgentUnavailableError, type AgentCall } from "../link/agent-hub.js";
import { acceptMysqlLogin, MysqlHandshakeError, mysqlLoginErrors, refuseMysqlLogin, sendMysqlLoginOk, type MysqlClientLogin, type MysqlRsaKey } from "../listeners/mysql-handshake.js";
import { MysqlMasker } from "../mask/mysql-masker.js";
import type { SessionRecording } from "../recording/index.js";
import { MysqlResultRecorder } from "../recording/mysql-results.js";
import { admitSession, firstAgentMessage, endSessionBookkeeping, recordStatementDecision, reviewStatement, sendAfterRecording, storeSessionStart, type SessionScope } from "./common.js";
import type { GatewayServices, SessionTarget } from "./context.js";
import { mysqlColumnPolicy } from "./mysql-columns.js";
import { MysqlResponseTracker, type MysqlCommand } from "./mysql-responses.js";
import type { StatementEvent } from "./postgres-statements.js";

const C = mysqlCapabilities;
const M = mysqlCommands;

/** What a MySQL listener shares across its sessions. */
export interface MysqlListenerContext {
  /** The RSA key of caching_sha2_password's full authentication without TLS. */
  readonly rsaKey: MysqlRsaKey;
  /** The version the handshake announces: the server's, learnt from the agent, with `-airlock`. */
  readonly serverVersion: () => string;
  /** Called with the server's version when an agent reports it. */
  readonly learnServerVersion: (version: string) => void;
}

/**
 * Capabilities that change packet formats: client and server must agree on each, since the relay
 * passes packets through as they are.
 */
const FORMAT_CAPABILITIES = (C.CLIENT_DEPRECATE_EOF | C.CLIENT_MULTI_RESULTS | C.CLIENT_PS_MULTI_RESULTS | C.CLIENT_SESSION_TRACK | C.CLIENT_QUERY_ATTRIBUTES) >>> 0;

/**
 * Commands refused whatever the policy: they stream data past every statement check (replication,
 * table dumps), change the identity (COM_CHANGE_USER) or act on the server (shutdown, kill, debug).
 */
const REFUSED: ReadonlyMap<number, string> = new Map([
  [M.COM_CHANGE_USER, "changing the user of a session is not allowed through airlock"],
  [M.COM_BINLOG_DUMP, "replication streams are not allowed through airlock"],
  [M.COM_BINLOG_DUMP_GTID, "replication streams are not allowed through airlock"],
  [M.COM_REGISTER_SLAVE, "replication streams are not allowed through airlock"],
  [M.COM_TABLE_DUMP, "table dumps are not allowed through airlock"],
  [M.COM_SHUTDOWN, "shutting the server down is not allowed through airlock"],
  [M.COM_PROCESS_KILL, "use KILL as a statement, which the policy judges"],
  [M.COM_PROCESS_INFO, "use SHOW PROCESSLIST as a statement, which the policy judges"],
  [M.COM_DEBUG, "COM_DEBUG is not allowed through airlock"],
  [M.COM_REFRESH, "use FLUSH as a statement, which the policy judges"],
  [M.COM_CREATE_DB, "use CREATE DATABASE as a statement, which the policy judges"],
  [M.COM_DROP_DB, "use DROP DATABASE as a statement, which the policy judges"],
]);

/** Commands forwarded as they are: no statement, no data beyond their own answer. */
const PASSED = new Set<number>([M.COM_PING, M.COM_STATISTICS, M.COM_SET_OPTION, M.COM_RESET_CONNECTION, M.COM_STMT_RESET, M.COM_STMT_FETCH, M.COM_STMT_CLOSE, M.COM_STMT_SEND_LONG_DATA]);

/**
 * A session's lifecycle: login (handshake, token) -> opening (policy, agent, database) -> ready
 * (idle between commands) -> busy (a command's answer is on its way) | held (a review) -> closed.
 */
type State =
  | { readonly name: "login" }
  | { readonly name: "opening" }
  | { readonly name: "ready"; readonly call: AgentCall }
  | { readonly name: "busy"; readonly call: AgentCall }
  | { readonly name: "held"; readonly call: AgentCall }
  | { readonly name: "closed" };

/** A statement prepared with COM_STMT_PREPARE, by the server's id. */
interface Prepared {
  readonly sql: string;
  readonly analysis: MysqlAnalysisSummary;
}

/** A command on its way: what it is, and how many of its statements the server has run so far. */
interface InFlight {
  readonly kind: "query" | "prepare" | "init_db" | "field_list" | "execute" | "other";
  readonly sql?: string;
  readonly analysis?: MysqlAnalysisSummary;
  readonly schema?: string;
  /** Statements whose results ended without an error (their session effects are applied). */
  applied: number;
  failed: boolean;
}

/** What a session keeps of an analysis. */
interface MysqlAnalysisSummary {
  readonly ok: boolean;
  readonly error?: string;
  readonly classes: readonly StatementClass[];
  readonly unboundedWrite: boolean;
  readonly copiesData: boolean;
  readonly statements: readonly MysqlStatementAnalysis[];
  /** The statements that run, for lineage: each EXECUTE of a statement PREPAREd in SQL replaced by that statement. */
  readonly lineage: readonly MysqlStatementAnalysis[];
}

let connectionIds = 0;

/**
 * Serves one MySQL or MariaDB client on the gateway: the login with the token as password (or the
 * tunnel's identity), the connection policy, then each command judged, recorded and relayed
 * through the connection's agent, its answer masked and recorded on the way back.
 */
export function serveMysql(socket: Duplex, target: SessionTarget, services: GatewayServices, listener: MysqlListenerContext): void {
  new MysqlSession(socket, target, services, listener).start();
}

class MysqlSession {
  readonly #services: GatewayServices;
  readonly #target: SessionTarget;
  readonly #listener: MysqlListenerContext;
  readonly #id = randomUUID();
  readonly #connection: string;
  #logger: Logger;
  #socket: Duplex;
  #state: State = { name: "login" };
  #login: MysqlClientLogin | undefined;
  #identity: Identity | undefined;
  #grants: Grant[] = [];
  #recording: SessionRecording | undefined;
  #results: MysqlResultRecorder | undefined;
  #stored = false;
  #storedStart: Promise<unknown> = Promise.resolve();
  #counted = false;
  #openedAt = 0;
  #outcome = "closed";
  #statements = 0;
  #cancelReview: (() => void) | undefined;
  #deadline: NodeJS.Timeout | undefined;
  /** Client packets not yet judged: one command at a time, in order. */
  #queue: MysqlPacket[] = [];
  #framer;
  #tracker: MysqlResponseTracker | undefined;
  #masker: MysqlMasker | undefined;
  /** Masking's column decisions and statement guard, for a masked identity. */
  #columns: ReturnType<typeof mysqlColumnPolicy> | undefined;
  #prepared = new Map<number, Prepared>();
  /** SQL-level PREPARE name FROM '...': analyses by name, to judge EXECUTE name. */
  #sqlPrepared = new Map<string, MysqlAnalysisSummary>();
  /** How the server reads what comes next: the session's schema and sql_mode (as statements succeed). */
  #sqlState: MysqlSessionState = createMysqlSessionState();
  /** What each forwarded command is, by the tracker's command id, until its answer ends. */
  #inFlight = new Map<number, InFlight>();
  /** Masked values per column label since the last batch went to the client. */
  #maskedCounts = new Map<string, number>();
  /** The sequence id of the last packet of the command in flight, either way: an ERR out of the server's turn continues from it. */
  #lastSequenceId = 0;

  constructor(socket: Duplex, target: SessionTarget, services: GatewayServices, listener: MysqlListenerContext) {
    this.#socket = socket;
    this.#target = target;
    this.#services = services;
    this.#listener = listener;
    this.#connection = target.connection.name;
    this.#framer = createMysqlFramer({ maxMessageBytes: services.maxMessageBytes });
    this.#logger = services.logger.child({ session: this.#id, connection: this.#connection, transport: target.transport.kind, client: target.transport.remoteAddress });
  }

  start(): void {
    this.#openedAt = performance.now();
    this.#socket.on("error", (error: Error) => this.#logger.debug({ err: error.message }, "client connection error"));
    this.#doLogin().catch((error: unknown) => this.#fatalUnexpected(error));
  }

  /** Not narrowed by earlier checks: the client may have left during an await. */
  #isClosed(): boolean {
    return this.#state.name === "closed";
  }

  #scope(): SessionScope {
    return { id: this.#id, services: this.#services, target: this.#target, logger: this.#logger };
  }

  // ---- login ----------------------------------------------------------------------------------

  async #doLogin(): Promise<void> {
    const transport = this.#target.transport;
    const native = transport.kind === "native";
    let login: MysqlClientLogin;
    try {
      login = await acceptMysqlLogin(this.#socket as Socket, {
        serverVersion: this.#listener.serverVersion(),
        connectionId: (connectionIds = (connectionIds % 0x7fffffff) + 1),
        ...(native && this.#services.tls !== undefined ? { secureContext: this.#services.tls } : {}),
        remoteAddress: transport.remoteAddress,
        // Through the tunnel the identity is the tunnel's (its gRPC call is TLS): whatever password comes is not used.
        insecureAllowPlaintext: !native || this.#target.connection.insecure_plaintext,
        rsaKey: this.#listener.rsaKey,
        ...(native ? {} : { authPlugin: "mysql_clear_password" as const }),
      });
    } catch (error) {
      const code = error instanceof MysqlHandshakeError ? error.code : "handshake_failed";
      this.#services.metrics.startupRefusals.inc({ connection: this.#connection, reason: code });
      this.#logger.info({ reason: code, err: (error as Error).message }, "login failed");
      this.#close(code);
      return;
    }
    this.#login = login;
    this.#socket = login.socket;
    this.#socket.on("error", (error: Error) => this.#logger.debug({ err: error.message }, "client connection error"));
    this.#socket.on("close", () => this.#close(this.#state.name === "ready" ? "client_closed" : "client_left"));
    this.#state = { name: "opening" };
    let identity: Identity;
    if (transport.kind === "tunnel") {
      identity = transport.identity;
    } else {
      try {
        identity = await this.#services.verifier.verify(login.token.reveal());
      } catch (error) {
        const reason = error instanceof IdentityError ? error.code : "error";
        this.#logger.warn({ reason, err: error instanceof Error ? error.message : String(error) }, "token refused");
        this.#refuseLogin(`token_${reason}`, mysqlLoginErrors.accessDenied(login.user, "the token was refused"));
        return;
      }
    }
    await this.#open(identity, login);
  }

  async #open(identity: Identity, login: MysqlClientLogin): Promise<void> {
    this.#identity = identity;
    this.#logger = this.#logger.child({ principal: identity.subject, issuer: identity.issuer, groups: identity.groups });
    const admitted = await admitSession(this.#scope(), identity);
    if (!admitted.ok) {
      const error =
        admitted.reason === "policy_denied"
          ? mysqlLoginErrors.accessDenied(login.user, admitted.message)
          : { code: 1105, sqlState: "HY000", message: admitted.message };
      this.#refuseLogin(admitted.reason, error);
      return;
    }
    this.#grants = admitted.grants;
    this.#recording = admitted.recording;
    const decision = admitted.decision;
    let call: AgentCall;
    try {
      call = await this.#services.hub.open({
        sessionId: this.#id,
        connection: this.#connection,
        protocol: Protocol.MYSQL,
        parameters: {
          // What changes packet formats is the client's to choose; LOCAL INFILE is never offered.
          capabilities: String((login.capabilities & ~C.CLIENT_LOCAL_FILES) >>> 0),
          character_set: String(login.characterSet),
          ...(login.schema === undefined ? {} : { schema: login.schema }),
        },
      });
    } catch (error) {
      const reason = error instanceof AgentUnavailableError ? error.code : "agent_error";
      this.#logger.warn({ reason, err: (error as Error).message }, "no database session");
      this.#refuseLogin(reason, { code: 2013, sqlState: "08S01", message: `connection \`${this.#connection}\` is unavailable: its agent is not connected` });
      return;
    }
    if (this.#state.name === "closed") {
      call.end();
      return;
    }
    const first = await firstAgentMessage(call);
    if (first === undefined || first.kind.case !== "opened") {
      const refused = first?.kind.case === "error" ? first.kind.value : { code: "2013:08S01", message: "the agent closed the session" };
      const [errno, sqlState] = refused.code.includes(":") ? refused.code.split(":") : ["2013", "08S01"];
      this.#logger.warn({ code: refused.code, err: refused.message }, "the database refused the session");
      call.end();
      this.#refuseLogin("database_refused", { code: Number(errno) || 2013, sqlState: sqlState ?? "08S01", message: `connection \`${this.#connection}\` is unavailable: ${refused.message}` });
      return;
    }
    const facts = first.kind.value.facts;
    const serverCapabilities = Number(facts.capabilities ?? "0");
    if (facts.server_version !== undefined) this.#listener.learnServerVersion(facts.server_version);
    const missing = (login.capabilities & FORMAT_CAPABILITIES & ~serverCapabilities) >>> 0;
    if (missing !== 0) {
      call.end();
      this.#refuseLogin("capabilities", { code: 1251, sqlState: "08004", message: `the database does not support capabilities the client asked for (0x${missing.toString(16)}): connect without them` });
      return;
    }
    if (this.#isClosed()) {
      call.end();
      return;
    }
    const safeFunctions = this.#services.mysql.connections.get(this.#connection)?.safeFunctions ?? [];
    const server = facts.server_version === undefined ? undefined : parseServerVersion(facts.server_version);
    this.#sqlState = createMysqlSessionState({ ...(server === undefined ? {} : { server }), ...(login.schema === undefined ? {} : { schema: login.schema }), safeFunctions });
    this.#tracker = new MysqlResponseTracker({ capabilities: login.capabilities });
    if (admitted.masking !== undefined) {
      const columns = mysqlColumnPolicy(
        admitted.masking,
        (command) => {
          const analysis = this.#inFlight.get(command.id)?.analysis;
          return analysis === undefined ? undefined : { statements: analysis.lineage };
        },
        () => this.#sqlState.schema,
        () => this.#sqlState.options,
      );
      this.#columns = columns;
      this.#masker = new MysqlMasker(this.#tracker, {
        columnPolicy: (column, index, resultIndex, command) => columns.decide(column, command, index, resultIndex),
        readsSensitive: (command) => columns.readsSensitive(command),
        ...(admitted.masking.config.detectors === undefined ? {} : { detectors: admitted.masking.config.detectors }),
        ...(admitted.masking.config.key === undefined ? {} : { key: admitted.masking.config.key }),
        events: {
          // Counted here and added to the metric once per batch: a per-value update costs more than the masking.
          masked: (label) => this.#maskedCounts.set(label, (this.#maskedCounts.get(label) ?? 0) + 1),
          detected: (detector) => this.#services.metrics.detectorHits.inc({ connection: this.#connection, detector }),
          uncertain: () => this.#services.metrics.uncertainLineage.inc({ connection: this.#connection }),
        },
      });
    }
    if (this.#recording !== undefined) this.#results = new MysqlResultRecorder(this.#recording, this.#tracker, this.#services.recording.sampleRows);
    sendMysqlLoginOk(login, { statusFlags: Number(facts.status_flags ?? "2") });
    this.#state = { name: "ready", call };
    this.#stored = true;
    this.#storedStart = storeSessionStart(this.#scope(), identity, this.#recording?.path);
    this.#services.metrics.sessionsActive.inc({ connection: this.#connection, transport: this.#target.transport.kind });
    this.#services.metrics.sessionOpenSeconds.observe({ connection: this.#connection }, (performance.now() - this.#openedAt) / 1000);
    this.#counted = true;
    this.#logger.info({ rules: decision.rules, serverVersion: facts.server_version }, "session started");
    if (decision.sessionEndsAt !== undefined) {
      const limit = decision.sessionEndsAt.getTime() - this.#services.now().getTime();
      this.#deadline = setTimeout(() => this.#endSession({ code: 1927, sqlState: "70100", message: `session ended: the maximum session length of policy \`${decision.rules.join("`, `")}\` was reached` }, "max_session"), Math.max(0, limit));
    }
    this.#relayFromAgent(call);
    this.#socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    if (login.leftover.length > 0) this.#onData(login.leftover);
    this.#socket.resume();
  }

  #refuseLogin(reason: string, error: mysql.ErrPacket): void {
    if (this.#state.name === "closed" || this.#login === undefined) return;
    this.#services.metrics.startupRefusals.inc({ connection: this.#connection, reason });
    refuseMysqlLogin(this.#login, error);
    this.#close(reason);
  }

  // ---- client -> agent ------------------------------------------------------------------------

  #onData(chunk: Buffer): void {
    if (this.#state.name === "closed") return;
    try {
      for (const packet of this.#framer.push(chunk)) this.#queue.push(packet);
    } catch (error) {
      this.#protocolViolation(error);
      return;
    }
    this.#drain();
  }

  /** Judges queued commands one at a time: the next waits until the answer to the last is complete. */
  #drain(): void {
    while (this.#state.name === "ready" && this.#queue.length > 0) {
      const packet = this.#queue.shift() as MysqlPacket;
      try {
        this.#command(this.#state.call, packet);
      } catch (error) {
        this.#protocolViolation(error);
        return;
      }
    }
    // Reading pauses while a command is in flight or held: the queue stays short.
    if (this.#state.name === "ready") this.#socket.resume();
    else if (this.#state.name !== "closed") this.#socket.pause();
  }

  #command(call: AgentCall, packet: MysqlPacket): void {
    if (packet.sequenceId !== 0) throw new WireError("unexpected_message", `a command packet with sequence id ${packet.sequenceId}, not 0`);
    const payload = packet.payload;
    const command = mysql.commandOf(payload);
    this.#services.metrics.messages.inc({ connection: this.#connection, type: mysqlCommandName(command) });
    const refusedBecause = REFUSED.get(command);
    if (refusedBecause !== undefined) {
      this.#refuseCommand(command, { code: 1227, sqlState: "42000", message: `airlock: ${refusedBecause}` }, mysqlCommandName(command));
      return;
    }
    switch (command) {
      case M.COM_QUIT:
        this.#close("client_closed");
        return;
      case M.COM_QUERY:
        this.#judge(call, packet, mysql.decodeComQuery(payload, this.#login?.capabilities ?? 0), "query");
        return;
      case M.COM_STMT_PREPARE:
        this.#judge(call, packet, mysql.decodeComStmtPrepare(payload), "prepare");
        return;
      case M.COM_STMT_EXECUTE:
        this.#execute(call, packet);
        return;
      case M.COM_INIT_DB:
        this.#judge(call, packet, `USE \`${mysql.decodeComInitDb(payload).replaceAll("`", "``")}\``, "init_db");
        return;
      case M.COM_FIELD_LIST: {
        const table = payload.toString("utf8", 1, payload.indexOf(0, 1) === -1 ? payload.length : payload.indexOf(0, 1));
        this.#judge(call, packet, `SHOW COLUMNS FROM \`${table.replaceAll("`", "``")}\``, "field_list");
        return;
      }
      default:
        if (PASSED.has(command)) {
          if (command === M.COM_STMT_CLOSE) this.#prepared.delete(mysql.decodeStatementId(payload));
          this.#forward(call, packet);
          return;
        }
        this.#refuseCommand(command, { code: 1047, sqlState: "08S01", message: `airlock: unknown command 0x${command.toString(16)}` }, "unknown");
    }
  }

  /** Analyses a statement's text as the server will read it now (schema, sql_mode). */
  #analyze(sql: string): MysqlAnalysisSummary {
    const analysis = this.#services.mysql.analyses.analyze(sql, this.#sqlState.options);
    if (!analysis.ok) return { ok: false, error: analysis.error, classes: [], unboundedWrite: false, copiesData: false, statements: [], lineage: [] };
    // EXECUTE of a statement PREPAREd in SQL takes that statement's classes; unknown names stay writes (fail closed).
    // A PREPARE earlier in the same string counts: the server stops the string at the first error,
    // so a later EXECUTE only runs when that PREPARE succeeded.
    const classes = new Set<StatementClass>();
    let unboundedWrite = false;
    let copiesData = false;
    const lineage: MysqlStatementAnalysis[] = [];
    const local = new Map<string, MysqlAnalysisSummary | undefined>();
    const preparedAs = (name: string) => {
      const key = name.toLowerCase();
      return local.has(key) ? local.get(key) : this.#sqlPrepared.get(key);
    };
    for (const statement of analysis.statements) {
      const executed = statement.executes === undefined ? undefined : preparedAs(statement.executes);
      if (statement.prepares !== undefined) local.set(statement.prepares.name.toLowerCase(), summaryOf(statement.prepares.statement));
      if (statement.deallocates !== undefined) local.set(statement.deallocates.toLowerCase(), undefined);
      for (const statementClass of executed?.classes ?? statement.classes) classes.add(statementClass);
      unboundedWrite ||= executed?.unboundedWrite ?? statement.unboundedWrite;
      copiesData ||= executed?.copiesData ?? statement.copiesData;
      lineage.push(...(executed?.lineage ?? [statement]));
    }
    return { ok: true, classes: [...classes].sort(), unboundedWrite, copiesData, statements: analysis.statements, lineage };
  }

  #decide(analysis: MysqlAnalysisSummary): StatementDecision {
    if (!analysis.ok) return { effect: "deny", reasons: [`the statement cannot be analysed: ${analysis.error ?? "parse error"}`] };
    const decision = this.#decidePolicy(analysis);
    if (decision.effect === "deny" || this.#columns === undefined) return decision;
    const refused = this.#columns.guard({ statements: analysis.lineage }, this.#masker?.diagnosticsSensitive === true);
    if (refused !== undefined) return { effect: "deny", rule: "masking", reasons: [refused] };
    // Predicates on sensitive columns let a masked reader infer values: `masking.inference` decides, as for PostgreSQL.
    const inferred = this.#columns.inference({ statements: analysis.lineage });
    if (inferred === undefined) return decision;
    if (inferred.action === "allow") {
      this.#recording?.note({ type: "inference", columns: [...inferred.columns] });
      return decision;
    }
    if (inferred.action === "deny") return { effect: "deny", rule: "masking", reasons: [inferred.reason] };
    return decision.effect === "review" ? { ...decision, reasons: [...decision.reasons, inferred.reason] } : { ...decision, effect: "review", rule: decision.rule ?? "masking", reasons: [...decision.reasons, inferred.reason] };
  }

  #decidePolicy(analysis: MysqlAnalysisSummary): StatementDecision {
    return decideStatement({
      principal: this.#identity as Identity,
      connection: this.#connection,
      now: this.#services.now(),
      policies: this.#services.policies,
      grants: this.#grants,
      classes: analysis.classes,
      unboundedWrite: analysis.unboundedWrite,
    });
  }

  #judge(call: AgentCall, packet: MysqlPacket, sql: string, kind: "query" | "prepare" | "init_db" | "field_list"): void {
    const analysis = this.#analyze(sql);
    let decision = this.#decide(analysis);
    if (kind === "prepare" && decision.effect === "review") {
      // Preparing runs nothing: the review, if any, holds the EXECUTE.
      decision = { ...decision, effect: "allow" };
    }
    const event: StatementEvent = {
      sql,
      protocol: kind === "prepare" ? "extended" : "simple",
      classes: analysis.classes,
      decision,
      ...(analysis.copiesData ? { copiesData: true } : {}),
      ...(analysis.ok ? {} : { parseError: analysis.error ?? "" }),
    };
    this.#onDecision(event);
    if (decision.effect === "deny") {
      this.#refuseStatement(decision);
      return;
    }
    const inFlight: InFlight = { kind, sql, analysis, ...(kind === "init_db" ? { schema: mysql.decodeComInitDb(packet.payload) } : {}), applied: 0, failed: false };
    if (decision.effect === "review") {
      this.#hold(call, event, () => this.#forward(call, packet, inFlight));
      return;
    }
    this.#forward(call, packet, inFlight);
  }

  #execute(call: AgentCall, packet: MysqlPacket): void {
    const id = mysql.decodeStatementId(packet.payload);
    // MariaDB's 0xffffffff names the statement prepared last.
    const prepared = id === 0xffffffff ? [...this.#prepared.values()].at(-1) : this.#prepared.get(id);
    if (prepared === undefined) {
      this.#refuseCommand(M.COM_STMT_EXECUTE, { code: 1243, sqlState: "HY000", message: `Unknown prepared statement handler (${id}) given to mysqld_stmt_execute` }, "execute");
      return;
    }
    const decision = this.#decide(prepared.analysis);
    const event: StatementEvent = { sql: prepared.sql, protocol: "extended", classes: prepared.analysis.classes, decision, ...(prepared.analysis.copiesData ? { copiesData: true } : {}) };
    this.#onDecision(event);
    if (decision.effect === "deny") {
      this.#refuseStatement(decision);
      return;
    }
    const inFlight: InFlight = { kind: "execute", sql: prepared.sql, analysis: prepared.analysis, applied: 0, failed: false };
    if (decision.effect === "review") this.#hold(call, event, () => this.#forward(call, packet, inFlight));
    else this.#forward(call, packet, inFlight);
  }

  #hold(call: AgentCall, event: StatementEvent, proceed: () => void): void {
    this.#state = { name: "held", call };
    reviewStatement(this.#scope(), this.#identity as Identity, event, {
      recording: this.#recording,
      onPending: (cancel) => (this.#cancelReview = cancel),
      // MySQL has no notices: the reviewer finds the statement in the review queue.
      notify: () => undefined,
    }).then(
      (outcome) => {
        this.#cancelReview = undefined;
        if (this.#state.name !== "held") return;
        this.#state = { name: "ready", call };
        if (outcome.approved) proceed();
        else this.#writeError({ code: 1142, sqlState: "42000", message: `airlock: ${outcome.message}` });
        this.#drain();
      },
      (error: unknown) => this.#fatalUnexpected(error),
    );
  }

  /** Sends a command on to the agent; the next command waits for its answer if it has one. */
  #forward(call: AgentCall, packet: MysqlPacket, inFlight: InFlight = { kind: "other", applied: 0, failed: false }): void {
    const command = (this.#tracker as MysqlResponseTracker).onCommand(packet.payload);
    this.#lastSequenceId = packet.sequenceId;
    this.#results?.onCommand(packet.payload);
    if (command.expectsResponse && !command.done) {
      this.#inFlight.set(command.id, inFlight);
      this.#state = { name: "busy", call };
    }
    const send = () => {
      this.#services.metrics.bytes.inc({ connection: this.#connection, direction: "to_database" }, packet.bytes.length);
      if (!call.write(create(SessionResponseSchema, { kind: { case: "frames", value: packFrames([{ bytes: Buffer.from(packet.bytes) }]) } }))) {
        this.#socket.pause();
        call.once("drain", () => {
          if (this.#state.name === "ready") this.#socket.resume();
        });
      }
    };
    // The statement's record is durable before it reaches the database.
    sendAfterRecording(this.#scope(), this.#recording, send, () => this.#endSession({ code: 1105, sqlState: "HY000", message: "the session can no longer be recorded, so it ends" }, "recording_failed"));
  }

  #onDecision(event: StatementEvent): void {
    this.#statements++;
    recordStatementDecision(this.#scope(), this.#identity, this.#recording, this.#storedStart, event);
  }

  #refuseStatement(decision: StatementDecision): void {
    const reasons = decision.reasons.length === 0 ? "" : `: ${decision.reasons.join("; ")}`;
    this.#writeError({ code: 1142, sqlState: "42000", message: `airlock: statement denied${decision.rule === undefined ? "" : ` by policy \`${decision.rule}\``}${reasons}` });
  }

  #refuseCommand(command: number, error: mysql.ErrPacket, kind: string): void {
    this.#logger.info({ command: mysqlCommandName(command), kind }, "command refused");
    this.#recording?.note({ type: "command_refused", command: mysqlCommandName(command), code: error.code, message: error.message });
    this.#writeError(error);
  }

  /** An ERR in answer to the command just read (its sequence id is 1). */
  #writeError(error: mysql.ErrPacket): void {
    if (this.#state.name === "closed") return;
    const bytes = mysql.encodePacket(1, mysql.encodeErr(error));
    // The recording holds what the client got: the gateway's answer, as the server's would be.
    this.#results?.refused(error, bytes.length);
    this.#socket.write(bytes);
  }

  #resetSessionState(): void {
    this.#prepared.clear();
    this.#sqlPrepared.clear();
    this.#sqlState.reset();
  }

  // ---- agent -> client ------------------------------------------------------------------------

  #relayFromAgent(call: AgentCall): void {
    const toClient = this.#services.metrics.bytes.labels({ connection: this.#connection, direction: "to_client" });
    call.on("data", (message: SessionRequest) => {
      if (this.#state.name === "closed") return;
      if (message.kind.case === "error") {
        const [errno, sqlState] = message.kind.value.code.split(":");
        this.#endSession({ code: Number(errno) || 2013, sqlState: sqlState ?? "HY000", message: message.kind.value.message }, "database_error");
        return;
      }
      if (message.kind.case !== "frames") return;
      let out: Buffer[];
      try {
        out = this.#onServerPackets(message.kind.value.data, message.kind.value.lengths);
      } catch (error) {
        this.#logger.error({ err: (error as Error).message }, "cannot process a message from the database");
        this.#endSession({ code: 2027, sqlState: "HY000", message: "the database sent a packet the gateway cannot read" }, "agent_protocol_error");
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
      if (this.#state.name === "busy" && this.#tracker?.idle === true) {
        this.#state = { name: "ready", call };
        this.#drain();
      }
    });
    call.on("end", () => {
      setImmediate(() => {
        // Mid-command, the client is owed an answer: the connection was lost under it.
        if (call.cancelled || this.#state.name === "busy" || this.#state.name === "held") {
          lost();
          return;
        }
        if (this.#outcome !== "terminated") this.#outcome = "database_closed";
        this.#close(this.#outcome);
      });
    });
    const lost = () => {
      if (this.#state.name === "closed") return;
      this.#endSession({ code: 2013, sqlState: "HY000", message: "Lost connection to the database: the agent link closed" }, "agent_lost");
    };
    call.on("error", lost);
    call.on("cancelled", lost);
    // firstAgentMessage paused the call; a data listener does not resume a stream paused explicitly.
    call.resume();
  }

  /** Tracks, masks and records a batch of server packets; returns what the client gets. */
  #onServerPackets(data: Uint8Array, lengths: readonly number[]): Buffer[] {
    const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const framer = createMysqlFramer({ maxMessageBytes: this.#services.maxMessageBytes });
    const packets = framer.push(buffer);
    if (framer.buffered !== 0 || lengths.length !== packets.length) throw new WireError("malformed_message", "a batch from the agent does not hold whole packets");
    const tracker = this.#tracker as MysqlResponseTracker;
    const out: Buffer[] = [];
    for (const packet of packets) {
      let sent: Buffer;
      if (this.#masker !== undefined) sent = this.#masker.onServerPacket(packet);
      else {
        tracker.onServerPacket(packet);
        sent = packet.bytes;
      }
      this.#results?.onServerPacket(packet, sent);
      this.#lastSequenceId = sent[3] ?? 0;
      const event = tracker.lastEvent;
      if (event !== undefined) this.#onResponseEvent(event.kind, event.command, event.kind === "prepare_ok" ? event.statement.statementId : undefined);
      out.push(sent);
    }
    return out;
  }

  /**
   * What a command's answer changes in the session, as it arrives: each statement that ended
   * without an error takes its effect (USE, SET sql_mode, PREPARE / DEALLOCATE, HANDLER), in
   * order, and the first error stops the rest (the server stops a multi-statement string there).
   */
  #onResponseEvent(kind: string, command: MysqlCommand, statementId: number | undefined): void {
    const inFlight = this.#inFlight.get(command.id);
    if (inFlight !== undefined && !inFlight.failed) {
      if (kind === "err") inFlight.failed = true;
      else if (kind === "prepare_ok" && statementId !== undefined && inFlight.analysis !== undefined && inFlight.sql !== undefined) {
        this.#prepared.set(statementId, { sql: inFlight.sql, analysis: inFlight.analysis });
      } else if (kind === "ok" || kind === "result_end") {
        if (inFlight.kind === "init_db" && inFlight.schema !== undefined) this.#sqlState.initDb(inFlight.schema);
        else if (inFlight.kind === "query") {
          const statement = inFlight.analysis?.statements[inFlight.applied];
          if (statement !== undefined) this.#applyStatement(statement);
        }
        inFlight.applied += 1;
      }
    }
    if (command.code === M.COM_RESET_CONNECTION && kind === "ok") this.#resetSessionState();
    if (command.done) this.#inFlight.delete(command.id);
  }

  #applyStatement(statement: MysqlStatementAnalysis): void {
    this.#sqlState.applyStatement(statement);
    if (statement.prepares !== undefined) {
      this.#sqlPrepared.set(statement.prepares.name.toLowerCase(), summaryOf(statement.prepares.statement));
    }
    if (statement.deallocates !== undefined) this.#sqlPrepared.delete(statement.deallocates.toLowerCase());
  }

  // ---- ending ---------------------------------------------------------------------------------

  #endSession(error: mysql.ErrPacket, outcome: string): void {
    if (this.#state.name === "closed") return;
    this.#outcome = outcome;
    // Mid-answer it continues the answer's numbering; between commands it is out of turn (0).
    const sequenceId = this.#state.name === "busy" ? (this.#lastSequenceId + 1) & 0xff : this.#state.name === "held" ? 1 : 0;
    this.#socket.write(mysql.encodePacket(sequenceId, mysql.encodeErr(error)));
    this.#close(outcome, true);
  }

  #protocolViolation(error: unknown): void {
    const message = error instanceof WireError ? error.message : "invalid packet";
    const code = error instanceof WireError ? error.code : "malformed_message";
    this.#logger.warn({ code, err: message }, "protocol violation");
    this.#outcome = "protocol_violation";
    if (this.#state.name !== "closed") this.#socket.write(mysql.encodePacket(1, mysql.encodeErr({ code: 1156, sqlState: "08S01", message: `protocol violation: ${message}` })));
    this.#close("protocol_violation", true);
  }

  #fatalUnexpected(error: unknown): void {
    this.#logger.error({ err: error instanceof Error ? error.stack : String(error) }, "session failed");
    if (this.#state.name !== "closed" && this.#login !== undefined) this.#socket.write(mysql.encodePacket(1, mysql.encodeErr({ code: 1105, sqlState: "HY000", message: "internal error in the gateway" })));
    this.#close("internal_error", true);
  }

  #close(outcome: string, flush = false): void {
    if (this.#state.name === "closed") return;
    const previous = this.#state;
    this.#state = { name: "closed" };
    if (this.#deadline !== undefined) clearTimeout(this.#deadline);
    this.#cancelReview?.();
    if (previous.name === "ready" || previous.name === "busy" || previous.name === "held") previous.call.end();
    if (flush) this.#socket.end();
    else this.#socket.destroy();
    setTimeout(() => this.#socket.destroy(), 5_000).unref();
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

/** What a session keeps of a statement PREPAREd in SQL, to judge its EXECUTE. */
function summaryOf(prepared: MysqlStatementAnalysis): MysqlAnalysisSummary {
  return { ok: true, classes: prepared.classes, unboundedWrite: prepared.unboundedWrite, copiesData: prepared.copiesData, statements: [prepared], lineage: [prepared] };
}
