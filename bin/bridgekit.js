#!/usr/bin/env node
// Runs the compiled CLI (dist/ is built by `npm run build`, which `npm ci` runs via prepare).
import { main } from "../dist/cli/bridgekit.js";

process.exitCode = await main(process.argv.slice(2));
