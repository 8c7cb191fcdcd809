// Regenerates the protobuf code and fails if it differs from what is committed.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const proto = fileURLToPath(new URL("../packages/proto", import.meta.url));
execFileSync("pnpm", ["exec", "buf", "generate"], { cwd: proto, stdio: "inherit" });
const diff = execFileSync("git", ["status", "--porcelain", "--", "src/gen"], { cwd: proto, encoding: "utf8" });
if (diff.trim() !== "") {
  console.error(`generated protobuf code is out of date: run \`pnpm generate\` and commit:\n${diff}`);
  process.exit(1);
}
