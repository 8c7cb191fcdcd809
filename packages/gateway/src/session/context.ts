import type { PolicyRule } from "@airlock/policy";
import type { Logger } from "@airlock/runtime";
import type { SecureContext } from "node:tls";
import type { ConnectionConfig } from "../config/schema.js";
import type { Identity, IdentityVerifier } from "../identity/index.js";
import type { Approvals } from "../approvals/index.js";
import type { Analysis } from "../inspect/index.js";
import type { AgentHub } from "../link/agent-hub.js";
import type { Recorder } from "../recording/index.js";
import type { MaskCatalogCache } from "../mask/index.js";
import type { Detectors } from "../mask/values.js";
import type { StatementExposure } from "../mask/lineage/index.js";
import type { Store } from "../store/index.js";
import type { DecisionLog } from "./decision-log.js";
import type { MysqlAnalysisCache } from "../inspect/index.js";
import type { MysqlListenerContext } from "./mysql-session.js";
import type { MongoListenerContext } from "./mongo-session.js";
import type { GatewayMetrics } from "../metrics/metrics.js";
import type { CancelKeys } from "./cancel-keys.js";

/** What every session of the gateway shares. */
export interface GatewayServices {
  readonly hub: AgentHub;
  readonly verifier: IdentityVerifier;
  readonly policies: readonly PolicyRule[];
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly cancelKeys: CancelKeys;
  readonly maxMessageBytes: number;
  readonly tls?: SecureContext;
  readonly now: () => Date;
  readonly store: Store;
  /** Statement decisions on their way to the store, in batches. */
  readonly decisions: DecisionLog;
  readonly approvals: Approvals;
  /** This gateway's id in the store (sessions it holds, reviews it waits for). */
  readonly gatewayId: string;
  /** The statement analyser of each connection (its safe functions differ). */
  readonly analyzers: ReadonlyMap<string, { analyze(sql: string): Analysis }>;
  /** MySQL connections: the shared analysis cache and each connection's listener context and safe functions. */
  /** MongoDB connections: each one's listener context (the server facts its handshake announces). */
  readonly mongo: ReadonlyMap<string, MongoListenerContext>;
  readonly mysql: {
    readonly analyses: MysqlAnalysisCache;
    readonly connections: ReadonlyMap<string, { readonly listener: MysqlListenerContext; readonly safeFunctions: readonly string[] }>;
  };
  readonly recorder: Recorder;
  readonly recording: { readonly failClosed: boolean; readonly sampleRows: number };
  /** Masking of each connection that declares it. */
  readonly masking: ReadonlyMap<string, ConnectionMasking>;
  /** Writes one audit event (a JSON line for a SIEM). */
  readonly audit: (event: Readonly<Record<string, unknown>>) => void;
}

/** How one client reached the gateway. */
export type SessionTransport =
  | { readonly kind: "native"; readonly remoteAddress: string }
  /** Through `airlock connect`: the token was verified when the tunnel opened. */
  | { readonly kind: "tunnel"; readonly remoteAddress: string; readonly identity: Identity };

/** The connection a session is for, and how it arrived. */
export interface SessionTarget {
  readonly connection: ConnectionConfig;
  readonly transport: SessionTransport;
}

/** A connection's masking: its catalog, detectors, what to do with inference, the pseudonym key. */
export interface ConnectionMasking {
  readonly catalog: MaskCatalogCache;
  readonly detectors: Detectors | undefined;
  readonly inference: "allow" | "review" | "deny";
  readonly key: Buffer | undefined;
  /** Exposure of SQL text against the current catalog (cached). */
  readonly exposureOf: (sql: string, snapshot: import("../mask/lineage/index.js").CatalogSnapshot) => readonly StatementExposure[] | undefined;
}
