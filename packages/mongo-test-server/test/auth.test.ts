import { MongoClient, MongoServerError } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMongoTestServer, type MongoTestServer } from "../src/index.js";
import { ADMIN, closeClient, connect, recordCommands } from "./support.js";

/** SCRAM-SHA-256 and SCRAM-SHA-1 as the official driver runs them, and what an unauthenticated or read-only user may do. */
let server: MongoTestServer;
const reader = { username: "reader", password: "read-only", roles: ["readAnyDatabase" as const] };
const legacy = { username: "legacy", password: "sha1 only", mechanisms: ["SCRAM-SHA-1" as const] };
const shopUser = { username: "clerk", password: "clerk", db: "shop", roles: ["readWrite" as const] };
// SASLprep maps the soft hyphen (U+00AD) to nothing: "I\u00ADX" and "IX" are the same SCRAM-SHA-256 password.
const prepped = { username: "prepped", password: "IX", mechanisms: ["SCRAM-SHA-256" as const] };

beforeAll(async () => {
  server = await startMongoTestServer({ users: [ADMIN, reader, legacy, shopUser, prepped] });
});
afterAll(async () => {
  await server.close();
});

async function whoAmI(client: MongoClient): Promise<unknown> {
  const status = await client.db("admin").command({ connectionStatus: 1 });
  return status.authInfo.authenticatedUsers;
}

describe("SCRAM", () => {
  for (const mechanism of ["SCRAM-SHA-256", "SCRAM-SHA-1"]) {
    it(`authenticates with ${mechanism}`, async () => {
      const client = await connect(server, ADMIN, { authMechanism: mechanism });
      try {
        expect(await whoAmI(client)).toEqual([{ user: "admin", db: "admin" }]);
        await client.db("t").collection("c").insertOne({ mechanism });
      } finally {
        await closeClient(server, client);
      }
    });
  }

  it("negotiates SCRAM-SHA-256 by default, with speculative authentication in the handshake", async () => {
    const client = await connect(server, ADMIN, {}, { monitorCommands: true });
    const events = recordCommands(client);
    try {
      await client.db("admin").command({ ping: 1 });
      // The handshake carried the whole first step, so the driver never sent a separate saslStart.
      expect(events.map((event) => event.commandName)).not.toContain("saslStart");
      expect(server.stats.commands.get("saslStart") ?? 0).toBe(0);
      expect(await whoAmI(client)).toEqual([{ user: "admin", db: "admin" }]);
    } finally {
      await closeClient(server, client);
    }
  });

  it("falls back to SCRAM-SHA-1 for a user that has only it", async () => {
    const client = await connect(server, legacy);
    try {
      expect(await whoAmI(client)).toEqual([{ user: "legacy", db: "admin" }]);
    } finally {
      await closeClient(server, client);
    }
  });

  it("applies SASLprep to SCRAM-SHA-256 passwords", async () => {
    const client = await connect(server, { username: "prepped", password: "I\u00ADX" }, { authMechanism: "SCRAM-SHA-256" });
    try {
      expect(await whoAmI(client)).toEqual([{ user: "prepped", db: "admin" }]);
    } finally {
      await closeClient(server, client);
    }
  });

  it("authenticates against the user's own database (authSource)", async () => {
    const client = await connect(server, shopUser, { authSource: "shop" });
    try {
      await client.db("shop").collection("c").insertOne({ ok: true });
      const error = await client.db("other").collection("c").insertOne({}).catch((caught: unknown) => caught);
      expect((error as MongoServerError).code).toBe(13);
    } finally {
      await closeClient(server, client);
    }
  });

  for (const mechanism of ["SCRAM-SHA-256", "SCRAM-SHA-1"]) {
    it(`refuses a wrong password with ${mechanism}: AuthenticationFailed (18)`, async () => {
      const client = new MongoClient(server.uriFor({ username: "admin", password: "wrong" }, { authMechanism: mechanism }), { serverSelectionTimeoutMS: 2000 });
      const error = await client.connect().catch((caught: unknown) => caught);
      await client.close();
      expect(error).toBeInstanceOf(MongoServerError);
      expect((error as MongoServerError).code).toBe(18);
      expect((error as MongoServerError).codeName).toBe("AuthenticationFailed");
      expect((error as MongoServerError).message).toBe("Authentication failed.");
    });
  }

  it("refuses an unknown user the same way", async () => {
    const client = new MongoClient(server.uriFor({ username: "nobody", password: "x" }, { authMechanism: "SCRAM-SHA-256" }), { serverSelectionTimeoutMS: 2000 });
    const error = await client.connect().catch((caught: unknown) => caught);
    await client.close();
    expect((error as MongoServerError).code).toBe(18);
  });
});

describe("authorization", () => {
  it("without credentials only the handshake, ping and friends work: Unauthorized (13)", async () => {
    const client = new MongoClient(server.uri, { serverSelectionTimeoutMS: 2000 });
    try {
      await client.connect();
      expect(await client.db("admin").command({ ping: 1 })).toEqual({ ok: 1 });
      const error = await client.db("shop").collection("c").findOne({}).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(MongoServerError);
      expect((error as MongoServerError).code).toBe(13);
      expect((error as MongoServerError).codeName).toBe("Unauthorized");
    } finally {
      await closeClient(server, client);
    }
  });

  it("a read-only user reads but cannot write, create or administer", async () => {
    server.databases.insert("shop", "orders", [{ _id: 1 }]);
    const client = await connect(server, reader);
    try {
      expect(await client.db("shop").collection("orders").find().toArray()).toEqual([{ _id: 1 }]);
      for (const attempt of [
        () => client.db("shop").collection("orders").insertOne({ _id: 2 }),
        () => client.db("shop").collection("orders").deleteMany({}),
        () => client.db("shop").collection("orders").drop(),
        () => client.db("shop").createCollection("new"),
        () => client.db("shop").collection("orders").aggregate([{ $out: "copy" }]).toArray(),
        () => client.db("admin").command({ setParameter: 1, logLevel: 2 }),
        () => client.db("admin").command({ createUser: "x", pwd: "y", roles: [] }),
      ]) {
        const error = await attempt().catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(MongoServerError);
        expect((error as MongoServerError).code).toBe(13);
      }
      expect(server.databases.documents("shop", "orders")).toEqual([{ _id: 1 }]);
      expect(server.databases.collectionNames("shop")).not.toContain("copy");
      expect(server.databases.collectionNames("shop")).not.toContain("new");
    } finally {
      await closeClient(server, client);
      server.databases.drop("shop");
    }
  });

  it("createUser, then the new user logs in; dropUser, then it cannot", async () => {
    const admin = await connect(server, ADMIN);
    try {
      await admin.db("app").command({ createUser: "svc", pwd: "svc-pass", roles: [{ role: "readWrite", db: "app" }] });
      const info = await admin.db("app").command({ usersInfo: "svc" });
      expect(info.users).toMatchObject([{ _id: "app.svc", user: "svc", db: "app", roles: [{ role: "readWrite", db: "app" }], mechanisms: ["SCRAM-SHA-1", "SCRAM-SHA-256"] }]);
      const user = await connect(server, { username: "svc", password: "svc-pass" }, { authSource: "app" });
      await user.db("app").collection("c").insertOne({ by: "svc" });
      await user.close();
      await admin.db("app").command({ dropUser: "svc" });
      const gone = new MongoClient(server.uriFor({ username: "svc", password: "svc-pass" }, { authSource: "app" }), { serverSelectionTimeoutMS: 2000 });
      const error = await gone.connect().catch((caught: unknown) => caught);
      await gone.close();
      expect((error as MongoServerError).code).toBe(18);
    } finally {
      await closeClient(server, admin);
    }
  });
});

describe("compression", () => {
  it("agrees to zlib when the client asks, and both directions are compressed", async () => {
    const before = server.stats.compressedMessages;
    const client = await connect(server, ADMIN, { compressors: "zlib" });
    try {
      const documents = Array.from({ length: 200 }, (_, index) => ({ index, text: "compress me ".repeat(20) }));
      await client.db("z").collection("c").insertMany(documents);
      const back = await client.db("z").collection("c").find().toArray();
      expect(back).toHaveLength(200);
      expect(server.stats.compressedMessages).toBeGreaterThan(before);
    } finally {
      await client.db("z").dropDatabase();
      await closeClient(server, client);
    }
  });

  it("agrees to nothing it does not have (snappy, zstd)", async () => {
    const client = await connect(server, ADMIN, {}, { monitorCommands: true });
    try {
      const hello = await client.db("admin").command({ hello: 1, compression: ["snappy", "zstd"] });
      expect(hello.compression).toBeUndefined();
    } finally {
      await closeClient(server, client);
    }
  });
});

describe("standalone", () => {
  it("without a replica set name there are no transactions, as on a real standalone", async () => {
    const standalone = await startMongoTestServer({ replicaSet: false });
    const client = new MongoClient(standalone.uri, { serverSelectionTimeoutMS: 2000 });
    try {
      await client.connect();
      const hello = await client.db("admin").command({ hello: 1 });
      expect(hello.setName).toBeUndefined();
      await client.db("t").collection("c").insertOne({ a: 1 });
      const session = client.startSession();
      session.startTransaction();
      const error = await client.db("t").collection("c").insertOne({ a: 2 }, { session }).catch((caught: unknown) => caught);
      expect((error as MongoServerError).codeName).toBe("IllegalOperation");
      await session.endSession();
    } finally {
      await closeClient(standalone, client);
      await standalone.close();
    }
  });
});
