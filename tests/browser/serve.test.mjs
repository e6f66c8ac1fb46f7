// The static server behind `./build.sh serve` and these tests: a malformed address is a bad
// request, and the server goes on serving (issue 35: one request for `/%E0%A4%A` crashed it);
// a range is answered.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '../../tools/serve.mjs';

// `fetch` refuses to send a malformed escape, so the request is written as it is.
function get(url, path) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('a malformed escape is a bad request and the server serves on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clipag-serve-'));
  writeFileSync(join(dir, 'index.html'), 'hello');
  const server = await serve(dir);
  try {
    assert.equal((await get(server.url, '/%E0%A4%A')).status, 400);
    const page = await get(server.url, '/');
    assert.deepEqual(page, { status: 200, body: 'hello' });
    assert.equal((await get(server.url, '/../../etc/passwd')).status, 404);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a range is answered as static hosts answer it (the page resumes downloads with it)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clipag-serve-'));
  writeFileSync(join(dir, 'weights.bin'), '0123456789');
  const server = await serve(dir);
  try {
    const tail = await fetch(new URL('weights.bin', server.url), { headers: { Range: 'bytes=4-' } });
    assert.equal(tail.status, 206);
    assert.equal(tail.headers.get('content-range'), 'bytes 4-9/10');
    assert.equal(await tail.text(), '456789');
    const middle = await fetch(new URL('weights.bin', server.url), { headers: { Range: 'bytes=2-3' } });
    assert.equal(await middle.text(), '23');
    const past = await fetch(new URL('weights.bin', server.url), { headers: { Range: 'bytes=10-' } });
    assert.equal(past.status, 416);
    const whole = await fetch(new URL('weights.bin', server.url));
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('accept-ranges'), 'bytes');
    assert.equal(await whole.text(), '0123456789');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
