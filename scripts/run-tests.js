#!/usr/bin/env node
// Runs named test suites with node's own runner. Node 20 expands no globs, so every test
// file is listed by name in test/suites.json; this script also fails when a *.test.ts file
// exists that no suite lists, so a new test can never be silently left out.
//
//   node scripts/run-tests.js unit http      run those suites in one node --test process
//   node scripts/run-tests.js test/e2e/echo.test.ts   run one file that a suite lists
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { join, relative } from "node:path";

const root = join(import.meta.dirname, "..");
const suites = JSON.parse(readFileSync(join(root, "test", "suites.json"), "utf8"));

function findTests(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist" || name.startsWith(".")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) findTests(path, out);
    else if (name.endsWith(".test.ts")) out.push(relative(root, path));
  }
  return out;
}

const listed = new Set(Object.values(suites).flat());
const unlisted = ["test", "examples"]
  .filter((d) => existsSync(join(root, d)))
  .flatMap((d) => findTests(join(root, d)))
  .filter((f) => !listed.has(f));
if (unlisted.length > 0) {
  console.error(`test files not listed in test/suites.json:\n  ${unlisted.join("\n  ")}`);
  process.exit(1);
}

const names = process.argv.slice(2);
if (names.length === 0) {
  console.error(`usage: run-tests.js SUITE...  (suites: ${Object.keys(suites).join(", ")})`);
  process.exit(2);
}
const files = [];
for (const name of names) {
  if (listed.has(name)) {
    files.push(name);
    continue;
  }
  if (!suites[name]) {
    console.error(`unknown suite or listed test file "${name}" (suites: ${Object.keys(suites).join(", ")})`);
    process.exit(2);
  }
  files.push(...suites[name]);
}
const missing = files.filter((f) => !existsSync(join(root, f)));
if (missing.length > 0) {
  console.error(`test/suites.json lists files that do not exist:\n  ${missing.join("\n  ")}`);
  process.exit(1);
}

const extra = (process.env.BRIDGEKIT_TEST_ARGS ?? "").split(" ").filter(Boolean);
// A hung test fails after this long instead of holding CI until its limit.
const timeout = extra.some((a) => a.startsWith("--test-timeout")) ? [] : ["--test-timeout=300000"];
const result = spawnSync(process.execPath, ["--import", "tsx", "--test", ...timeout, ...extra, ...files], {
  cwd: root,
  stdio: "inherit",
});
process.exit(result.status ?? 1);
