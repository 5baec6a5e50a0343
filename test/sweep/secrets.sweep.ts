import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A secret as it may be written: raw, URL-encoded (either hex case, + for spaces), JSON-escaped, base64, base64url. */
function encodedForms(secret: string): string[] {
  const url = encodeURIComponent(secret);
  const base64 = Buffer.from(secret).toString('base64');
  return [...new Set([secret, url, url.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase()), url.replace(/%20/g, '+'), JSON.stringify(secret).slice(1, -1), base64.replace(/=+$/, ''), Buffer.from(secret).toString('base64url')])].filter((form) => form.length >= 6);
}

// Runs after both passes (scripts/test.js): every password and token the suite used, searched for
// in every log line, CLI output, audit row and HTTP response the suite kept (responses that hand
// out a new token, once by design, are not kept).
const dir = process.env.MANDATE_TEST_ARTIFACTS;

test('no password or token used by the suite appears in any log line, audit row or HTTP response', { skip: dir ? false : 'run through npm test' }, () => {
  const files = readdirSync(dir!);
  const secrets = readFileSync(join(dir!, 'secrets.txt'), 'utf8').split('\n').filter(Boolean);
  const kept = files.filter((f) => f !== 'secrets.txt');
  assert.ok(secrets.length >= 10, `expected the suite to have used secrets, found ${secrets.length}`);
  assert.ok(kept.some((f) => f.startsWith('audit-')), 'expected audit rows to search');
  assert.ok(kept.some((f) => f.startsWith('log-')), 'expected log lines to search');
  assert.ok(kept.some((f) => f.startsWith('http-response-')), 'expected HTTP responses to search');
  let searched = 0;
  const forms = secrets.map((secret) => ({ secret, forms: encodedForms(secret) }));
  for (const file of kept) {
    const text = readFileSync(join(dir!, file), 'utf8');
    searched += text.length;
    // What base64 in the output says once decoded: a Basic header carries base64(user:secret).
    const decoded = (text.match(/[A-Za-z0-9+/_-]{12,}={0,2}/g) ?? []).map((run) => Buffer.from(run.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('latin1')).join('\n');
    for (const { secret, forms: written } of forms) {
      for (const form of written) assert.ok(!text.includes(form), `a secret used by the suite appears in ${file}${form === secret ? '' : ' (encoded)'}`);
      assert.ok(!decoded.includes(secret), `a secret used by the suite appears base64-encoded in ${file}`);
    }
  }
  assert.ok(searched > 10_000, `expected a substantial amount of output to search, got ${searched} characters`);
});
