#!/usr/bin/env node
// Summarises a V8 .cpuprofile (node --cpu-prof): the functions with the most self time, mapped
// back to TypeScript sources through the dist/ source maps, and self time by package.
// Usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N] [--json]
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { relative, resolve } from "node:path";
import { parseArgs } from "node:util";

const ROOT = resolve(import.meta.dirname, "..");

/** Summary of one profile: { wallMs, busyMs, idleMs, top[], byPackage[], inclusive[] }. */
export function summarizeProfile(file, { top = 25 } = {}) {
  const profile = JSON.parse(readFileSync(file, "utf8"));
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  // Self time per node from the sample timeline (more exact than hitCount x interval).
  const self = new Map();
  const { samples, timeDeltas } = profile;
  for (let index = 0; index < samples.length; index++) {
    // timeDeltas[i] is the time before sample i; attribute the following delta to sample i.
    const delta = timeDeltas[index + 1] ?? 0;
    self.set(samples[index], (self.get(samples[index]) ?? 0) + delta);
  }
  const wallUs = profile.endTime - profile.startTime;
  const keyOf = (node) => {
    const frame = node.callFrame;
    return `${frame.functionName || "(anonymous)"}\u0000${frame.url}\u0000${frame.lineNumber}\u0000${frame.columnNumber}`;
  };
  const byFunction = new Map();
  let idleUs = 0;
  let totalUs = 0;
  for (const [id, microseconds] of self) {
    const node = nodes.get(id);
    if (node === undefined) continue;
    totalUs += microseconds;
    if (node.callFrame.functionName === "(idle)") {
      idleUs += microseconds;
      continue;
    }
    const key = keyOf(node);
    const entry = byFunction.get(key) ?? { frame: node.callFrame, selfUs: 0 };
    entry.selfUs += microseconds;
    byFunction.set(key, entry);
  }
  const children = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) children.set(child, node.id);
  // Who calls the functions with the most self time: the nearest caller that is not a native or
  // node-internal frame, with the self time it accounts for.
  const callers = new Map();
  for (const [id, microseconds] of self) {
    const node = nodes.get(id);
    if (node === undefined || node.callFrame.functionName === "(idle)") continue;
    let parent = nodes.get(children.get(id));
    while (parent && (parent.callFrame.url === "" || parent.callFrame.url.startsWith("node:")) && children.has(parent.id)) parent = nodes.get(children.get(parent.id));
    if (parent === undefined) continue;
    const key = keyOf(node);
    const byCaller = callers.get(key) ?? new Map();
    const callerKey = keyOf(parent);
    const entry = byCaller.get(callerKey) ?? { frame: parent.callFrame, us: 0 };
    entry.us += microseconds;
    byCaller.set(callerKey, entry);
    callers.set(key, byCaller);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us) => (busyUs > 0 ? (100 * us) / busyUs : 0);
  const described = [...byFunction.entries()].map(([key, entry]) => ({
    ...describe(entry.frame),
    selfMs: entry.selfUs / 1000,
    selfPct: pct(entry.selfUs),
    callers: [...(callers.get(key)?.values() ?? [])]
      .sort((a, b) => b.us - a.us)
      .slice(0, 3)
      .map((caller) => {
        const where = describe(caller.frame);
        return { function: where.function, location: where.location, selfPct: pct(caller.us) };
      }),
  }));
  described.sort((a, b) => b.selfMs - a.selfMs);
  const packages = new Map();
  for (const entry of described) packages.set(entry.package, (packages.get(entry.package) ?? 0) + entry.selfMs);
  const byPackage = [...packages.entries()].map(([name, ms]) => ({ package: name, selfMs: ms, selfPct: (100 * ms * 1000) / busyUs })).sort((a, b) => b.selfMs - a.selfMs);

  // Inclusive time of Airlock's own functions (each function counted once per stack).
  const inclusive = new Map();
  const root = profile.nodes.find((node) => !children.has(node.id));
  const subtotal = new Map();
  const visit = (node, onPath) => {
    let sum = self.get(node.id) ?? 0;
    if (node.callFrame.functionName === "(idle)") sum = 0;
    const key = keyOf(node);
    const fresh = !onPath.has(key);
    if (fresh) onPath.add(key);
    for (const childId of node.children ?? []) sum += visit(nodes.get(childId), onPath);
    if (fresh) {
      onPath.delete(key);
      if (node.callFrame.url.includes("/packages/")) inclusive.set(key, { frame: node.callFrame, us: (inclusive.get(key)?.us ?? 0) + sum });
    }
    subtotal.set(node.id, sum);
    return sum;
  };
  if (root) visit(root, new Set());
  const inclusiveList = [...inclusive.values()].map((entry) => ({ ...describe(entry.frame), totalMs: entry.us / 1000, totalPct: pct(entry.us) })).sort((a, b) => b.totalMs - a.totalMs);

  return {
    file,
    wallMs: wallUs / 1000,
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    busyPctOfWall: (100 * busyUs) / wallUs,
    top: described.slice(0, top),
    byPackage,
    inclusive: inclusiveList.slice(0, top),
  };
}

// ---- where a frame comes from ------------------------------------------------------------------

const sourceMaps = new Map();

function describe(frame) {
  const name = frame.functionName || "(anonymous)";
  const url = frame.url;
  if (url === "") {
    const special = name.startsWith("(");
    return { function: name, location: special ? "" : "(native)", package: special ? name : "(native: V8 builtins, C++ bindings)" };
  }
  if (url.startsWith("wasm:") || url.includes("wasm:/")) return { function: name, location: "(WebAssembly)", package: "WebAssembly (libpg-query's parser)" };
  if (url.startsWith("node:")) return { function: name, location: `${url}:${frame.lineNumber + 1}`, package: "node (internals)" };
  let path = url;
  try {
    if (url.startsWith("file:")) path = fileURLToPath(url);
  } catch {}
  const modules = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)\//.exec(path);
  if (modules && !/\/packages\/[^/]+\/dist\//.test(path.slice(path.lastIndexOf("node_modules")))) {
    const pkg = modules[1];
    const inPackage = path.slice(path.lastIndexOf(`node_modules/${pkg}/`) + `node_modules/${pkg}/`.length);
    return { function: name, location: `${pkg}/${inPackage}:${frame.lineNumber + 1}`, package: pkg.startsWith("@airlock/") ? `airlock ${pkg.slice(9)}` : pkg };
  }
  const ours = /\/packages\/([^/]+)\/dist\//.exec(path);
  if (ours) {
    const original = mapToSource(path, frame.lineNumber, frame.columnNumber);
    return { function: name, location: original ?? `${relative(ROOT, path)}:${frame.lineNumber + 1}`, package: `airlock ${ours[1]}` };
  }
  return { function: name, location: `${relative(ROOT, path)}:${frame.lineNumber + 1}`, package: "other" };
}

/** dist/x.js line/column (0-based) -> packages/.../src/x.ts:line through x.js.map. */
function mapToSource(path, line, column) {
  let map = sourceMaps.get(path);
  if (map === undefined) {
    map = null;
    const file = `${path}.map`;
    if (existsSync(file)) {
      try {
        const raw = JSON.parse(readFileSync(file, "utf8"));
        map = { sources: raw.sources.map((source) => resolve(path, "..", raw.sourceRoot ?? "", source)), lines: decodeMappings(raw.mappings) };
      } catch {
        map = null;
      }
    }
    sourceMaps.set(path, map);
  }
  if (!map) return undefined;
  const segments = map.lines[line];
  if (!segments || segments.length === 0) return undefined;
  let best = segments[0];
  for (const segment of segments) {
    if (segment[0] <= column) best = segment;
    else break;
  }
  if (best.length < 4) return undefined;
  return `${relative(ROOT, map.sources[best[1]])}:${best[2] + 1}`;
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Source map v3 mappings -> per generated line, [column, source, originalLine, originalColumn]. */
function decodeMappings(mappings) {
  const lines = [];
  let source = 0;
  let originalLine = 0;
  let originalColumn = 0;
  for (const lineText of mappings.split(";")) {
    const segments = [];
    let column = 0;
    for (const segmentText of lineText.split(",")) {
      if (segmentText === "") continue;
      const values = [];
      let value = 0;
      let shift = 0;
      for (const char of segmentText) {
        const digit = BASE64.indexOf(char);
        value += (digit & 31) << shift;
        if (digit & 32) shift += 5;
        else {
          values.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      column += values[0];
      if (values.length >= 4) {
        source += values[1];
        originalLine += values[2];
        originalColumn += values[3];
        segments.push([column, source, originalLine, originalColumn]);
      } else segments.push([column]);
    }
    lines.push(segments);
  }
  return lines;
}

// ---- Markdown ------------------------------------------------------------------------------------

/** A Markdown rendering of a summary. */
export function renderSummary(summary, title, top = 15) {
  const lines = [];
  lines.push(`#### ${title}`, "");
  lines.push(`Profiled ${(summary.wallMs / 1000).toFixed(1)} s; busy (not idle) ${(summary.busyMs / 1000).toFixed(1)} s = ${summary.busyPctOfWall.toFixed(0)}% of one core. Percentages are of the busy time.`, "");
  lines.push("| Self % | Self ms | Function | Where |", "|---:|---:|---|---|");
  for (const entry of summary.top.slice(0, top)) {
    const from = entry.callers.length > 0 && (entry.location === "(native)" || entry.location.startsWith("node:") || !entry.location.startsWith("packages/")) ? ` ← ${entry.callers.slice(0, 2).map((caller) => `\`${caller.function}\` ${caller.location} (${caller.selfPct.toFixed(1)})`).join("; ")}` : "";
    lines.push(`| ${entry.selfPct.toFixed(1)} | ${entry.selfMs.toFixed(0)} | \`${entry.function}\` | ${entry.location || entry.package}${from} |`);
  }
  lines.push("", "| Self time by package | % |", "|---|---:|");
  for (const entry of summary.byPackage.slice(0, 12)) lines.push(`| ${entry.package} | ${entry.selfPct.toFixed(1)} |`);
  lines.push("", "| Inclusive % (Airlock's own functions) | Function | Where |", "|---:|---|---|");
  for (const entry of summary.inclusive.slice(0, 12)) lines.push(`| ${entry.totalPct.toFixed(1)} | \`${entry.function}\` | ${entry.location} |`);
  return lines.join("\n");
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string", default: "25" }, json: { type: "boolean", default: false } } });
  if (positionals.length === 0) {
    console.error("usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N] [--json]");
    process.exit(2);
  }
  for (const file of positionals) {
    const summary = summarizeProfile(file, { top: Number(values.top) });
    console.log(values.json ? JSON.stringify(summary, null, 2) : `${renderSummary(summary, file, Number(values.top))}\n`);
  }
}
