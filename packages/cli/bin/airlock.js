#!/usr/bin/env node
// The `airlock` command line. Runs the built code (dist/); `pnpm build` makes it.
import { run } from "../dist/index.js";

process.exitCode = await run(process.argv.slice(2), process.env);
