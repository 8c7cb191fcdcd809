import { loadModule, parseSync } from "libpg-query";
await loadModule();
const strip = (k, v) => (k === "location" || k === "stmt_location" || k === "stmt_len" ? undefined : v);
for (const q of process.argv.slice(2)) console.log(JSON.stringify(parseSync(q).stmts.map(s=>s.stmt), strip));
