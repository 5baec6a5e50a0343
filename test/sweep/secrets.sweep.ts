import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

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
  for (const file of kept) {
    const text = readFileSync(join(dir!, file), 'utf8');
    searched += text.length;
    for (const secret of secrets) {
      assert.ok(!text.includes(secret), `a secret used by the suite appears in ${file}`);
    }
  }
  assert.ok(searched > 10_000, `expected a substantial amount of output to search, got ${searched} characters`);
});
