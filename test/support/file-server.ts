/** A local http server for media tests: files by path, redirects, a loop, chunked bodies, hits counted. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface FileServer {
  url: (path: string) => URL;
  /** Requests per path. */
  hits: Map<string, number>;
  /** Serves `data` at `path`; `chunked` leaves out Content-Length. */
  serve(path: string, data: Uint8Array, opts?: { contentType?: string; chunked?: boolean }): void;
  close(): Promise<void>;
}

export async function startFileServer(): Promise<FileServer> {
  const files = new Map<string, { data: Uint8Array; contentType?: string; chunked?: boolean }>();
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === "/loop") return void res.writeHead(302, { Location: "/loop" }).end();
    const hop = /^\/hop\/(\d+)\/(.*)$/.exec(path);
    if (hop) {
      const n = Number(hop[1]);
      return void res.writeHead(302, { Location: n > 1 ? `/hop/${n - 1}/${hop[2]}` : `/${hop[2]}` }).end();
    }
    if (path === "/ftp") return void res.writeHead(302, { Location: "ftp://127.0.0.1/x" }).end();
    const file = files.get(path);
    if (!file) return void res.writeHead(404).end("no");
    const headers: Record<string, string> = {};
    if (file.contentType !== undefined) headers["Content-Type"] = file.contentType;
    if (!file.chunked) headers["Content-Length"] = String(file.data.length);
    res.writeHead(200, headers);
    if (file.chunked) {
      for (let i = 0; i < file.data.length; i += 1000) res.write(file.data.subarray(i, i + 1000));
      res.end();
    } else res.end(file.data);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => new URL(path, `http://127.0.0.1:${port}`),
    hits,
    serve: (path, data, opts = {}) => files.set(path, { data, ...opts }),
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
