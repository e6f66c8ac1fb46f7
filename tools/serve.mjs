// A static file server for dist/ with the headers the app needs (wasm MIME type, no
// third-party anything). Used by `./build.sh serve` and by the browser tests.
// Usage: node tools/serve.mjs DIR [PORT]   (binds 127.0.0.1; PORT 0 picks a free one)

import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
};

/**
 * Serves `dir` on 127.0.0.1:`port`, and each `mounts` entry (`{ '/prefix/': dir }`) under its
 * prefix; resolves to `{ url, close }` once listening.
 */
export function serve(dir, port = 0, mounts = {}) {
  const server = createServer(async (req, res) => {
    let path;
    try {
      path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      // A malformed escape (`/%E0%A4%A`) names no file: a bad request, not a crash.
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('bad request');
      return;
    }
    let root = resolve(dir);
    for (const [prefix, mounted] of Object.entries(mounts)) {
      if (path.startsWith(prefix)) {
        root = resolve(mounted);
        path = path.slice(prefix.length - 1);
      }
    }
    let file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403).end('forbidden');
      return;
    }
    try {
      let info = await stat(file);
      if (info.isDirectory()) {
        file = join(file, 'index.html');
        info = await stat(file);
      }
      const headers = {
        'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
        'Accept-Ranges': 'bytes',
        'Cache-Control': 'no-cache',
        'X-Content-Type-Options': 'nosniff',
      };
      // One range (`bytes=START-` or `START-END`), as static hosts answer it: the page takes
      // a broken-off model download up where it stopped.
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      let [start, end, status] = [0, info.size - 1, 200];
      if (range) {
        start = Number(range[1]);
        end = range[2] ? Math.min(Number(range[2]), info.size - 1) : info.size - 1;
        if (start > end) {
          res.writeHead(416, { 'Content-Range': `bytes */${info.size}` }).end();
          return;
        }
        status = 206;
        headers['Content-Range'] = `bytes ${start}-${end}/${info.size}`;
      }
      headers['Content-Length'] = end - start + 1;
      res.writeHead(status, headers);
      if (req.method === 'HEAD' || info.size === 0) res.end();
      else createReadStream(file, { start, end }).pipe(res);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
    }
  });
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}/`;
      done({ url, close: () => new Promise((ok) => server.close(ok)) });
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [dir = 'dist', port = process.env.PORT ?? '8080'] = process.argv.slice(2);
  const { url } = await serve(dir, Number(port));
  console.log(`clipag-web is served at ${url} (Ctrl-C stops it)`);
}
