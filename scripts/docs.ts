// The interface documents, generated from the registry: the README's tool tables and route table,
// and test/toolsnaps/<name>.json (each operation's interface, committed, so a change shows in
// review as a diff of that file). `npm run docs` writes them; `npm run docs -- --check` fails when
// they are stale.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ALL_OPERATIONS } from '../lib/ops/index.ts';
import { SERVERS } from '../lib/mcp/servers.ts';
import { toolDescriptor } from '../lib/mcp/toolset.ts';
import { outputJsonSchema, inputJsonSchema } from '../lib/ops/json-schema.ts';
import type { AnyOperation } from '../lib/ops/operation.ts';

const ROOT = new URL('../', import.meta.url);
export const README = new URL('README.md', ROOT);
export const TOOLSNAPS = new URL('test/toolsnaps/', ROOT);

/** Every operation's interface: what a review of an interface change should see. */
export function toolSnapshot(): Record<string, unknown> {
  return Object.fromEntries(
    ALL_OPERATIONS.map((op) => [
      op.name,
      {
        title: op.title,
        description: op.description,
        servers: op.servers,
        ...(op.toolset ? { toolset: op.toolset } : {}),
        permission: op.permission,
        effect: op.effect,
        route: `${op.route.method} ${op.route.path}`,
        annotations: toolDescriptor(op).annotations,
        input: inputJsonSchema(op),
        output: outputJsonSchema(op),
      },
    ]),
  );
}

/** The first sentence of a description: a table cell, not the model's whole briefing. */
function summary(op: AnyOperation): string {
  // A sentence ends at a full stop before a capital letter (so "e.g. x" does not end one).
  const first = /^(.+?[.!?])(?=\s+[A-Z(]|\s*$)/s.exec(op.description)?.[1] ?? op.description;
  return first.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

const code = (text: string) => `\`${text}\``;
const permissionOf = (op: AnyOperation) => (op.permission ? code(op.permission) : 'own');

function toolTables(): string {
  const parts: string[] = [];
  for (const [name, server] of Object.entries(SERVERS)) {
    parts.push(`**${code(name)}** — ${server.instructions.replace(/^Mandate \w+: /, '')}`, '');
    parts.push('| tool | needs | effect | what it does |', '|---|---|---|---|');
    for (const op of server.operations) {
      const toolset = op.toolset ? ` (${op.toolset})` : '';
      parts.push(`| ${code(op.name)}${toolset} | ${permissionOf(op)} | ${op.effect} | ${summary(op)} |`);
    }
    parts.push('');
  }
  return parts.join('\n').trimEnd();
}

function routeTable(): string {
  const rows = [...ALL_OPERATIONS].sort((a, b) => a.route.path.localeCompare(b.route.path) || a.route.method.localeCompare(b.route.method));
  return [
    '| route | operation | needs |',
    '|---|---|---|',
    ...rows.map((op) => `| ${code(`${op.route.method} ${op.route.path}`)} | ${code(op.name)} | ${permissionOf(op)} |`),
  ].join('\n');
}

const SECTIONS: Record<string, () => string> = { tools: toolTables, routes: routeTable };

/** The README with each generated section replaced by what the registry says now. */
export function generatedReadme(current: string): string {
  let text = current;
  for (const [name, render] of Object.entries(SECTIONS)) {
    const start = `<!-- generated: ${name} (npm run docs) -->`;
    const end = `<!-- end generated: ${name} -->`;
    const from = text.indexOf(start);
    const to = text.indexOf(end);
    if (from < 0 || to < from) throw new Error(`README.md has no "${start}" … "${end}" section`);
    text = `${text.slice(0, from + start.length)}\n${render()}\n${text.slice(to)}`;
  }
  return text;
}

/** Each operation's snapshot file, as it should be: name.json -> text. */
export function toolsnapFiles(): Record<string, string> {
  return Object.fromEntries(Object.entries(toolSnapshot()).map(([name, snap]) => [`${name}.json`, `${JSON.stringify(snap, null, 2)}\n`]));
}

/** The snapshot files that differ from the registry, are missing, or name no operation. */
export function staleToolsnaps(): string[] {
  const wanted = toolsnapFiles();
  let present: string[] = [];
  try {
    present = readdirSync(TOOLSNAPS).filter((file) => file.endsWith('.json'));
  } catch {}
  const read = (file: string) => readFileSync(new URL(file, TOOLSNAPS), 'utf8');
  return [...new Set([...Object.keys(wanted), ...present])].filter((file) => !present.includes(file) || wanted[file] !== read(file)).sort();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  const readme = readFileSync(README, 'utf8');
  const wantedReadme = generatedReadme(readme);
  const stale = [...(wantedReadme !== readme ? ['README.md'] : []), ...staleToolsnaps().map((file) => `test/toolsnaps/${file}`)];
  if (check) {
    if (stale.length) {
      process.stderr.write(`stale: ${stale.join(', ')}; run npm run docs\n`);
      process.exit(1);
    }
  } else {
    writeFileSync(README, wantedReadme);
    mkdirSync(TOOLSNAPS, { recursive: true });
    const wanted = toolsnapFiles();
    for (const file of readdirSync(TOOLSNAPS)) if (!(file in wanted)) rmSync(new URL(file, TOOLSNAPS));
    for (const [file, text] of Object.entries(wanted)) writeFileSync(new URL(file, TOOLSNAPS), text);
    process.stdout.write(stale.length ? `wrote ${stale.join(', ')}\n` : 'up to date\n');
  }
}
