/**
 * Runs a real ngircd for tests: installs it if missing (scripts/services/ensure-ngircd.sh),
 * writes a config into a temp dir and runs `ngircd -n -f <conf>` in the foreground on a free
 * 127.0.0.1 port. Fails with a clear message when ngircd cannot be installed or started.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { canConnect, freePort } from "../../../test/support/net.js";

const ENSURE = join(import.meta.dirname, "..", "..", "..", "scripts", "services", "ensure-ngircd.sh");

/** Installs ngircd if needed; resolves with the binary path or rejects naming the failure. */
export function ensureNgircd(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", [ENSURE], { timeout: 600_000 }, (err, stdout, stderr) => {
      const bin = stdout.trim().split("\n").pop() ?? "";
      if (err || bin === "") {
        reject(
          new Error(
            `ngircd is required for the IRC tests and could not be installed: ${stderr.trim() || err?.message}`,
          ),
        );
      } else resolve(bin);
    });
  });
}

export class Ngircd {
  private proc: ChildProcess | null = null;
  private output = "";

  private constructor(
    readonly bin: string,
    readonly dir: string,
    readonly port: number,
  ) {}

  /** Installs (if needed) and starts ngircd; resolves once it accepts connections. */
  static async start(): Promise<Ngircd> {
    const bin = await ensureNgircd();
    const dir = await mkdtemp(join(tmpdir(), "bridgekit-ngircd-"));
    const server = new Ngircd(bin, dir, await freePort());
    await mkdir(join(dir, "conf.d"));
    await writeFile(
      join(dir, "ngircd.conf"),
      [
        "[Global]",
        "Name = irc.bridgekit.test",
        "Info = bridgekit test server",
        "AdminInfo1 = bridgekit tests",
        "AdminInfo2 = localhost",
        "AdminEMail = nobody@localhost",
        "Listen = 127.0.0.1",
        `Ports = ${server.port}`,
        'MotdPhrase = "bridgekit test"',
        "[Limits]",
        "MaxConnectionsIP = 0",
        "MaxNickLength = 30",
        "MaxJoins = 0",
        // No server-side flood penalties, so tests are not slowed down by the server.
        "MaxPenaltyTime = 0",
        // An IRC operator, for tests that KILL a connection (`OPER oper oper-password`).
        "[Operator]",
        "Name = oper",
        "Password = oper-password",
        "[Options]",
        `IncludeDir = ${join(dir, "conf.d")}`,
        "PAM = no",
        "Ident = no",
        "DNS = no",
        "",
      ].join("\n"),
    );
    await server.run();
    return server;
  }

  private async run(): Promise<void> {
    this.output = "";
    const proc = spawn(this.bin, ["-n", "-f", join(this.dir, "ngircd.conf")], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    const collect = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-8000);
    };
    proc.stdout?.on("data", collect);
    proc.stderr?.on("data", collect);
    let exited = false;
    proc.once("exit", () => (exited = true));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`ngircd exited at start (port ${this.port}):\n${this.output}`);
      if (await canConnect(this.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    proc.kill("SIGKILL");
    throw new Error(`ngircd did not listen on 127.0.0.1:${this.port} within 15 s:\n${this.output}`);
  }

  /** Kills the server (SIGKILL: its clients see the connection drop) and waits for it to exit. */
  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, "exit");
    proc.kill("SIGKILL");
    await exited;
  }

  /** Starts the server again on the same port. */
  async restart(): Promise<void> {
    await this.kill();
    await this.run();
  }

  async stop(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}
