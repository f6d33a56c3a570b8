// Runs the bridgekit CLI from source, for development and tests:
//   node --import tsx src/cli/main-entry.ts start --config config.yaml
// The installed bin (bin/bridgekit.js) runs the compiled dist/ instead; this entry cannot be
// stale, because it is the source.
import { main } from "./bridgekit.js";

process.exitCode = await main(process.argv.slice(2));
