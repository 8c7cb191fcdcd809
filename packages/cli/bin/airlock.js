#!/usr/bin/env node
// The `airlock` command line. Runs the built code (dist/); `pnpm build` (or scripts/bootstrap.sh) makes it.
import "../dist/bin.js";
