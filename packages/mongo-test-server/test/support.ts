import { MongoClient, type CommandStartedEvent, type MongoClientOptions } from "mongodb";
import { expect, vi } from "vitest";
import type { MongoTestServer } from "../src/index.js";

/** A root user whose password needs percent-encoding in a URI. */
export const ADMIN = { username: "admin", password: "s3cret:/@?#pass" } as const;

/** Connects the official driver to the stand-in; the caller closes it. */
export async function connect(server: MongoTestServer, user: { username: string; password: string } = ADMIN, query: Record<string, string> = {}, options: MongoClientOptions = {}): Promise<MongoClient> {
  const client = new MongoClient(server.uriFor(user, query), { serverSelectionTimeoutMS: 5000, ...options });
  await client.connect();
  return client;
}

/** Records the commands a client sends (it needs monitorCommands: true). */
export function recordCommands(client: MongoClient): CommandStartedEvent[] {
  const events: CommandStartedEvent[] = [];
  client.on("commandStarted", (event) => events.push(event));
  return events;
}

/** Closes the client and waits until the server has seen every one of its connections close. */
export async function closeClient(server: MongoTestServer, client: MongoClient): Promise<void> {
  await client.close();
  await vi.waitFor(() => expect(server.connectionCount).toBe(0), { timeout: 5000, interval: 10 });
}

