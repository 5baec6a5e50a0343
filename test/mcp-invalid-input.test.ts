import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { z } from 'zod';
import type { Runtime } from '../lib/runtime.ts';
import { OPERATIONS } from '../lib/ops/index.ts';
import { peopleForRoles } from './helpers/people.ts';
import { ok, startServer, stdioBackend, STDIO_MODES, type ProcessDatabase, type StdioMode } from './helpers/stdio.ts';
import { errorOfToolResult } from '../lib/mcp/server.ts';

// Every tool, called over a real stdio process with inputs generated from its own zod schema to
// be invalid: each answer must be a tool error naming the field, the process must survive, and
// nothing may change in the database. In both modes: local database, and remote (MANDATE_URL).

// Rows the call path legitimately touches: audit events (invalid calls are audited; the audit
// table's monthly partitions too), the server's own session row (its end is an access change),
// and a token's last-used time.
const IGNORED_TABLES = new Set(['audit_event', 'mcp_session', 'access_change', 'mandate_migrations']);
const isIgnored = (table: string) => IGNORED_TABLES.has(table) || table.startsWith('audit_event_');
const IGNORED_COLUMNS = new Set(['api_token.last_used_at']);

async function digest(runtime: Runtime): Promise<Record<string, string>> {
  const em = runtime.db.orm.em.fork();
  const columns = await em.execute<{ table_name: string; column_name: string }[]>(
    `select table_name, column_name from information_schema.columns where table_schema = current_schema() order by table_name, ordinal_position`,
  );
  const byTable = new Map<string, string[]>();
  for (const { table_name, column_name } of columns) {
    if (isIgnored(table_name) || IGNORED_COLUMNS.has(`${table_name}.${column_name}`)) continue;
    byTable.set(table_name, [...(byTable.get(table_name) ?? []), `"${column_name}"`]);
  }
  const out: Record<string, string> = {};
  for (const [table, cols] of byTable) {
    const row = await em.execute<{ digest: string; n: number }>(
      `select md5(coalesce(string_agg(x::text, '|' order by x::text), '')) as digest, count(*)::int as n from (select ${cols.join(', ')} from "${table}") x`,
      [],
      'get',
    );
    out[table] = `${row!.n}:${row!.digest}`;
  }
  return out;
}

function shapeOf(schema: z.ZodType): Record<string, z.ZodType> {
  const shape = (schema as unknown as { shape?: Record<string, z.ZodType> }).shape;
  assert.ok(shape, 'every operation takes an object');
  return shape;
}

const jsonValue = fc.jsonValue({ maxDepth: 2 });

// Whether the schema refuses the value. Zod throws on some values (an object whose `length` cannot
// be compared, e.g. {"length": {"toString": 0}}): the server must refuse those too, naming the field.
function refuses(schema: z.ZodType, value: unknown): boolean {
  try {
    return !schema.safeParse(value).success;
  } catch {
    return true;
  }
}

for (const mode of STDIO_MODES) describe(`${mode} stdio server`, () => suite(mode));

function suite(mode: StdioMode) {
  let db: ProcessDatabase;
  let adminToken: string;
  before(async () => {
    db = await stdioBackend(mode);
    adminToken = (await db.use((runtime) => peopleForRoles(runtime))).admin.token;
  });
  after(() => db.dispose());

  test('generated invalid inputs to every tool: a tool error naming the field, the process survives, the database is unchanged', async () => {
    const before = await db.use(digest);
    const server = await startServer(['bin/mandate.js', 'stdio', '--role', 'admin'], db.env, adminToken);
    let calls = 0;
    try {
      const tools = await server.toolNames();
      assert.ok(tools.length >= 49);
      for (const name of tools) {
        const op = OPERATIONS[name]!;
        const shape = shapeOf(op.input);
        const expectField = async (input: Record<string, unknown>, field: string) => {
          const result = await server.call(name, input);
          calls++;
          assert.equal(result.isError, true, `${name}(${JSON.stringify(input)}) must fail`);
          const error = errorOfToolResult(result) as { code: string; message: string; issues?: { field: string }[] };
          assert.equal(error.code, 'invalid_input', `${name}: ${error.message}`);
          const fields = (error.issues ?? []).map((issue) => issue.field);
          assert.ok(fields.some((f) => f === field || f.startsWith(`${field}.`)), `${name}: issues ${fields.join(', ')} should name ${field}`);
          assert.ok(error.message.includes(field), `${name}: the message names ${field}`);
        };

        // A property with a value its own schema rejects.
        for (const [key, schema] of Object.entries(shape)) {
          await fc.assert(
            fc.asyncProperty(jsonValue.filter((value) => value !== undefined && refuses(schema, value)), async (value) => {
              await expectField({ [key]: value }, key);
            }),
            { numRuns: 4 },
          );
        }
        // A property the tool does not take.
        await fc.assert(
          fc.asyncProperty(fc.stringMatching(/^[a-z][a-z_]{2,12}$/).filter((key) => !(key in shape)), jsonValue, async (key, value) => {
            await expectField({ [key]: value }, key);
          }),
          { numRuns: 2 },
        );
        // A required property left out.
        for (const [key, schema] of Object.entries(shape)) {
          if (!schema.safeParse(undefined).success) await expectField({}, key);
        }
      }
      assert.equal(ok<{ status: string }>(await server.call('health')).status, 'ok', 'the server survived');
    } finally {
      await server.close();
    }
    assert.ok(calls > 150, `made ${calls} invalid calls`);
    assert.deepEqual(await db.use(digest), before, 'the database is unchanged');
  });
}
