#!/usr/bin/env bash
# Installs what Airlock needs on a fresh machine (pnpm from the npm registry, the workspace's
# dependencies) and builds it. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
want="$(node -p 'require("./package.json").packageManager.split("@")[1]')"
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "$want" ]; then
  echo "bootstrap: installing pnpm $want" >&2
  npm install --global --no-fund --no-audit "pnpm@$want" >&2
fi
# Native addons (better-sqlite3) compile from source against the local Node headers: nothing
# downloads a prebuilt binary.
npm_config_build_from_source=true pnpm install --frozen-lockfile >&2
pnpm run build >&2
