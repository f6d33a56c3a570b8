#!/usr/bin/env node
import { main } from "../dist/cli/create-bridge.js";

process.exitCode = await main(process.argv.slice(2));
