import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uuidv7 } from '../lib/ids.ts';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('uuidv7: RFC 9562 layout with the creation time in its first 48 bits', () => {
  const now = Date.UTC(2026, 10, 22, 12, 0, 0);
  const id = uuidv7(now + 10_000);
  assert.match(id, V7);
  assert.equal(parseInt(id.replace(/-/g, '').slice(0, 12), 16), now + 10_000);
});

test('uuidv7: ids made in the same millisecond sort in creation order and never repeat', () => {
  const fixed = Date.now() + 60_000;
  const ids = Array.from({ length: 5000 }, () => uuidv7(fixed));
  for (const id of ids) assert.match(id, V7);
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(new Set(ids).size, ids.length);
});
