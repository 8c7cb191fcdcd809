import { createServer } from "node:net";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { openStore, redactStoreUrl } from "../../src/store/index.js";
import { storeError } from "./store-contract.js";

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

describe("openStore", () => {
  it.each([
    ["", "`sqlite:PATH`"],
    ["sqlite:", "names no file"],
    ["mysql://root:hunter2-secret@db/airlock", "`mysql`"],
    ["./data/airlock.db", "`sqlite:PATH`"],
    ["postgres://user:hunter2-secret@[::1/db", "not a valid"],
  ])("refuses %j with invalid_url, never showing a password", async (url, expected) => {
    const error = await storeError(openStore(url), "invalid_url");
    expect(error.message).toContain(expected);
    expect(error.message).not.toContain("hunter2-secret");
  });

  it("fails with unavailable when PostgreSQL cannot be reached, never showing the password", async () => {
    const port = await closedPort();
    const error = await storeError(openStore(`postgres://airlock:hunter2-secret@127.0.0.1:${port}/airlock`), "unavailable");
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.message).not.toContain("hunter2-secret");
    expect(JSON.stringify(error)).not.toContain("hunter2-secret");
    expect(inspect(error, { depth: 10 })).not.toContain("hunter2-secret");
  });

  it("refuses a non-string url with a TypeError", async () => {
    await expect(openStore(undefined as unknown as string)).rejects.toThrow(TypeError);
  });
});

describe("redactStoreUrl", () => {
  it.each([
    ["postgres://airlock:hunter2-secret@db.internal:5432/airlock", "postgres://airlock:***@db.internal:5432/airlock"],
    ["postgresql://airlock@db.internal/airlock?sslmode=require", "postgresql://airlock@db.internal/airlock?sslmode=require"],
    ["postgres://db.internal/airlock?user=a&password=hunter2-secret", "postgres://db.internal/airlock?user=a&password=***"],
    ["postgres://a:hunter2-secret@[::1/db", "(an unparsable store url)"],
    ["sqlite:./data/airlock.db", "sqlite:./data/airlock.db"],
  ])("redacts %j", (url, expected) => {
    expect(redactStoreUrl(url)).toBe(expected);
  });
});
