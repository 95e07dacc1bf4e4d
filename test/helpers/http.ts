/**
 * A local HTTP file server for download tests (127.0.0.1, a free port):
 * honours `Range: bytes=N-` (206 / 416) unless told not to, and can cut the
 * connection mid-body to stand in for a dropped download.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Served {
  body: Buffer;
  /** Honour Range requests (default true); false answers 200 with the whole file. */
  ranges?: boolean;
  /** For the k-th request of this file, send only this many body bytes, then drop the connection. */
  cuts?: (number | undefined)[];
}

export interface Request {
  path: string;
  range: string | null;
  status: number;
}

export interface TestServer {
  url(name: string): string;
  requests: Request[];
  close(): Promise<void>;
}

export async function serve(files: Record<string, Served>): Promise<TestServer> {
  const requests: Request[] = [];
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').slice(1));
    const file = Object.hasOwn(files, name) ? files[name] : undefined;
    const range = req.headers.range ?? null;
    const record = (status: number) => requests.push({ path: name, range, status });
    if (!file) {
      record(404);
      res.writeHead(404).end('not found');
      return;
    }
    const k = counts.get(name) ?? 0;
    counts.set(name, k + 1);
    const len = file.body.length;
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(range ?? '');
    if (m && file.ranges !== false) {
      start = Number(m[1]);
      if (start >= len) {
        record(416);
        res.writeHead(416, { 'content-range': `bytes */${len}` }).end();
        return;
      }
      record(206);
      res.writeHead(206, { 'content-range': `bytes ${start}-${len - 1}/${len}`, 'content-length': String(len - start), 'accept-ranges': 'bytes' });
    } else {
      record(200);
      res.writeHead(200, { 'content-length': String(len), 'accept-ranges': file.ranges === false ? 'none' : 'bytes' });
    }
    const body = file.body.subarray(start);
    const cut = file.cuts?.[k];
    if (cut === undefined) {
      res.end(body);
      return;
    }
    res.write(body.subarray(0, cut), () => {
      // Give the bytes a moment to leave, then drop the connection mid-body.
      setTimeout(() => res.socket?.destroy(), 100);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (name) => `http://127.0.0.1:${port}/${encodeURIComponent(name)}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on (bound, then released): connections to it are refused. */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
