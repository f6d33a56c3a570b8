// The smallest matrix-appservice 2.0.0 application service, for the start-up benchmark:
// node bench/servers/anchor-min.mjs <port> <hs_token>. Plain JavaScript, no tsx, like the
// compiled bridgekit bin it is compared with.
import { AppService } from "matrix-appservice";

const [port, hsToken] = process.argv.slice(2);
const as = new AppService({ homeserverToken: hsToken });
let count = 0;
as.on("event", () => {
  count++;
});
await as.listen(Number(port), "127.0.0.1", 511);
process.on("SIGTERM", () => {
  void as.close().then(() => process.exit(count >= 0 ? 0 : 1));
});
