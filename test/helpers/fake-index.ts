/**
 * A local stand-in for the Python package index's JSON API and its file
 * host: `<base>/<name>/<version>/json`, `<base>/<name>/json` and the wheels,
 * with HTTP Range support, and faults on request (a connection cut halfway
 * through a file, a wrong published sha256).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeWheel {
  filename: string;
  content: Buffer;
}

export interface FakeRelease {
  name: string;
  version: string;
  wheels: FakeWheel[];
  /** `info.requires_dist` when the versioned document is served. */
  requiresDist: string[] | null;
  /** Serve `<base>/<name>/<version>/json` (else only the project document, as some mirrors do). */
  versioned: boolean;
}

export interface FakeIndex {
  /** What ST_NATIVE_PYPI_URL is set to. */
  base: string;
  /** Every request: method, path and Range header. */
  requests: { path: string; range: string | null }[];
  /** Files whose next full download is cut after half its bytes. */
  cutOnce: Set<string>;
  /** Files whose published sha256 is wrong. */
  badHash: Set<string>;
  close(): Promise<void>;
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function startIndex(releases: FakeRelease[]): Promise<FakeIndex> {
  const files = new Map<string, FakeWheel>();
  for (const r of releases) for (const w of r.wheels) files.set(w.filename, w);
  const requests: FakeIndex['requests'] = [];
  const cutOnce = new Set<string>();
  const badHash = new Set<string>();
  const fileEntry = (w: FakeWheel) => ({
    filename: w.filename,
    // Relative, as some mirrors give them: resolved against the document's URL.
    url: `../../../files/${w.filename}`,
    digests: { sha256: badHash.has(w.filename) ? sha256(Buffer.from('something else')) : sha256(w.content) },
    size: w.content.length,
    packagetype: 'bdist_wheel',
    yanked: false,
  });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push({ path: url.pathname, range: req.headers.range ?? null });
    const json = (doc: unknown) => {
      const body = Buffer.from(JSON.stringify(doc));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    };
    const versioned = /^\/pypi\/([^/]+)\/([^/]+)\/json$/.exec(url.pathname);
    if (versioned) {
      const r = releases.find((x) => x.name === versioned[1] && x.version === versioned[2] && x.versioned);
      if (!r) return void res.writeHead(404).end('not found');
      return json({ info: { name: r.name, version: r.version, requires_dist: r.requiresDist }, urls: r.wheels.map(fileEntry) });
    }
    const project = /^\/pypi\/([^/]+)\/json$/.exec(url.pathname);
    if (project) {
      const rs = releases.filter((x) => x.name === project[1]);
      if (!rs.length) return void res.writeHead(404).end('not found');
      // `info` describes a newer version than any served: its requirements must not be used.
      return json({
        info: { name: project[1], version: '99.0', requires_dist: ['nvidia-not-this==1'] },
        releases: Object.fromEntries(rs.map((r) => [r.version, r.wheels.map(fileEntry)])),
      });
    }
    const file = /^\/files\/([^/]+)$/.exec(url.pathname);
    const w = file ? files.get(file[1]!) : undefined;
    if (!w) return void res.writeHead(404).end('not found');
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      if (start >= w.content.length) return void res.writeHead(416, { 'content-range': `bytes */${w.content.length}` }).end();
      res.writeHead(206, { 'content-length': w.content.length - start, 'content-range': `bytes ${start}-${w.content.length - 1}/${w.content.length}`, 'accept-ranges': 'bytes' });
      return void res.end(w.content.subarray(start));
    }
    res.writeHead(200, { 'content-length': w.content.length, 'accept-ranges': 'bytes' });
    if (cutOnce.delete(w.filename)) {
      res.write(w.content.subarray(0, w.content.length >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(w.content);
  });
  // Tests share one event loop with the server: a loop busy elsewhere must
  // not let an idle keep-alive socket expire just as the client reuses it.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}/pypi`,
    requests,
    cutOnce,
    badHash,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
