/**
 * create-bridge's prompts on a real terminal: the bin runs under a pseudo-terminal made by
 * util-linux `script`, the test answers each question when it appears, and the generated
 * files must carry the answers. (scripts/ci/create-bridge-check.sh installs util-linux if
 * `script` is missing.)
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load } from "js-yaml";
import { assertBuilt, BIN, tail } from "./support.js";

/** `script -qfec CMD /dev/null`: runs CMD with a pty as its terminal, relaying our stdin/stdout. */
function underPty(command: string, cwd: string) {
  const child = spawn("script", ["-qfec", command, "/dev/null"], { cwd, stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  const onData = (c: Buffer) => {
    output += c.toString();
    for (const w of [...waiters]) {
      if (output.includes(w.text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  return {
    get output() {
      return output;
    },
    /** Resolves once `text` appeared in the output; rejects after 30 s naming what was seen. */
    waitFor(text: string): Promise<void> {
      if (output.includes(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no "${text}" within 30 s; output:\n${tail(output)}`)),
          30_000,
        );
        waiters.push({
          text,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    type(line: string): void {
      child.stdin.write(`${line}\n`);
    },
    async exit(): Promise<number | null> {
      const code = await exited;
      child.stdin.end();
      return code;
    },
    kill(): void {
      child.kill();
    },
  };
}

describe("create-bridge on a terminal", { timeout: 120_000 }, () => {
  let cwd: string;
  before(async () => {
    assertBuilt();
    const found = spawnSync("script", ["--version"], { encoding: "utf8" });
    if (found.status !== 0) {
      throw new Error("util-linux `script` is needed for the terminal test: apt-get install util-linux");
    }
    cwd = await mkdtemp(join(tmpdir(), "cb-pty-"));
  });
  after(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  it("asks each question, re-asks a bad answer, and writes the answers into the project", async () => {
    const pty = underPty(`${process.execPath} ${BIN} tty-proj --framework ^0.1.0`, cwd);
    try {
      await pty.waitFor("? Package name (tty-proj): ");
      pty.type("matrix-tty-bridge");
      await pty.waitFor("? Network id (adapter name, registration id) (tty): ");
      pty.type("teletype");
      await pty.waitFor("? Ghost and portal prefix (teletype_): ");
      pty.type("teletype"); // would make the bot a ghost: must be asked again
      await pty.waitFor("would make the bridge bot @teletypebot a ghost too");
      pty.type("tt_");
      await pty.waitFor("? Homeserver URL (http://127.0.0.1:8008): ");
      pty.type("https://hs.tty.test");
      await pty.waitFor("? Homeserver domain (server name) (localhost): ");
      pty.type(""); // the default
      const code = await pty.exit();
      assert.equal(code, 0, tail(pty.output));
    } finally {
      pty.kill();
    }
    assert.match(pty.output, /Creating matrix-tty-bridge in tty-proj: copying \d+ files/);

    const project = join(cwd, "tty-proj");
    const pkg = JSON.parse(await readFile(join(project, "package.json"), "utf8")) as {
      name: string;
      dependencies: Record<string, string>;
    };
    assert.equal(pkg.name, "matrix-tty-bridge");
    assert.equal(pkg.dependencies["matrix-bridgekit"], "^0.1.0");
    const config = load(await readFile(join(project, "config.example.yaml"), "utf8")) as {
      homeserver: { url: string; domain: string };
      bridge: { ghosts: string; portals: string };
      store: string;
    };
    assert.deepEqual(config.homeserver, { url: "https://hs.tty.test", domain: "localhost" });
    assert.deepEqual(config.bridge.ghosts, "tt_{id}");
    assert.equal(config.store, "sqlite://data/teletype.db");
    assert.match(await readFile(join(project, "src", "adapter.ts"), "utf8"), /NETWORK = "teletype"/);
    assert.match(await readFile(join(project, "README.md"), "utf8"), /#tt_lobby:localhost/);
  });
});
