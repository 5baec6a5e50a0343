// The load generator the HTTP benchmarks share: servers started pinned to core 1 (load on core 0)
// when `taskset` exists, sessions that call one tool in a loop, the server's CPU time per request.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
// Every server gets the same warm-up: SERVER_WARMUP_SECONDS of load once after it starts, then
// WARMUP_SECONDS before each row. A fresh Mandate server keeps getting cheaper for about 15 s of
// load (JIT tiers; 680 us of CPU per request in its first seconds, 383 us after 18 s, at one
// session): without the long warm-up its first row measured the JIT rather than the server.
export const SERVER_WARMUP_SECONDS = Number(process.env.BENCH_SERVER_WARMUP_SECONDS ?? 15);
export const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 3);
export const IDLE_SESSIONS = Number(process.env.BENCH_IDLE_SESSIONS ?? 1000);
export const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const pinned = spawnSync('taskset', ['--version']).status === 0;
if (pinned) spawnSync('taskset', ['-cp', '0', String(process.pid)]);

export function start(args: string[], env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcess; url: string }> {
  const [command, ...rest] = pinned ? ['taskset', '-c', '1', process.execPath, ...args] : [process.execPath, ...args];
  const child = spawn(command!, rest, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    const onLine = (line: string) => {
      const match = ready.exec(line);
      if (match) resolve({ child, url: match[1]! });
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };

export async function initialize(url: string, auth: Record<string, string>): Promise<string> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { ...HEADERS, ...auth },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }),
  });
  await response.text();
  const session = response.headers.get('mcp-session-id');
  if (!session) throw new Error(`initialize failed: HTTP ${response.status}`);
  return session;
}

export async function load(url: string, auth: Record<string, string>, tool: string, sessions: number, pid: number, seconds = SECONDS) {
  const ids = await Promise.all(Array.from({ length: sessions }, () => initialize(url, auth)));
  const latencies: number[] = [];
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: {} } });
  const run = async (session: string, until: number, record: boolean) => {
    while (performance.now() < until) {
      const started = performance.now();
      const response = await fetch(url, { method: 'POST', headers: { ...HEADERS, ...auth, 'mcp-session-id': session }, body });
      const text = await response.text();
      if (response.status !== 200 || text.includes('"isError":true')) throw new Error(`${tool}: HTTP ${response.status} ${text.slice(0, 200)}`);
      if (record) latencies.push(performance.now() - started);
    }
  };
  await Promise.all(ids.map((id) => run(id, performance.now() + WARMUP_SECONDS * 1000, false))); // warm-up
  const cpuBefore = cpuTicks(pid);
  const started = performance.now();
  await Promise.all(ids.map((id) => run(id, started + seconds * 1000, true)));
  const elapsed = (performance.now() - started) / 1000;
  const cpuMs = ((cpuTicks(pid) - cpuBefore) * 1000) / TICKS_PER_SECOND;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!;
  return { rate: latencies.length / elapsed, p50: pct(0.5), p99: pct(0.99), cpuUs: (cpuMs * 1000) / latencies.length };
}

// utime + stime of a process, in clock ticks (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND = 100;
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

export async function idleMemory(url: string, auth: Record<string, string>, pid: number) {
  const before = rssKiB(pid);
  for (let i = 0; i < IDLE_SESSIONS; i += 50) await Promise.all(Array.from({ length: Math.min(50, IDLE_SESSIONS - i) }, () => initialize(url, auth)));
  await new Promise((resolve) => setTimeout(resolve, 500));
  return ((rssKiB(pid) - before) * 1024) / IDLE_SESSIONS;
}


/** wrk (Debian's `wrk`, installed by scripts/install-wrk.sh) costs far less CPU per request than a Node client. */
export const hasWrk = spawnSync('wrk', ['--version']).error === undefined;

// wrk's script: round-robin over the sessions (a session is not tied to a connection), and a
// count of answers that are not a tool result, printed as one line the caller reads.
const WRK_SCRIPT = `
local sessions, n, bad = {}, 0, 0
for id in string.gmatch(os.getenv("BENCH_SESSIONS"), "[^,]+") do sessions[#sessions + 1] = id end
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
request = function()
  n = n + 1
  wrk.headers["mcp-session-id"] = sessions[(n % #sessions) + 1]
  return wrk.format()
end
response = function(status, headers, body)
  if status ~= 200 or string.find(body, '"isError":true', 1, true) then bad = bad + 1 end
end
done = function() io.write("bad answers: " .. bad .. "\\n") end
`;

/** Like load(), with wrk as the client: `sessions` connections, one request at a time on each. */
export async function wrkLoad(url: string, auth: Record<string, string>, tool: string, sessions: number, pid: number, seconds = SECONDS) {
  const ids = await Promise.all(Array.from({ length: sessions }, () => initialize(url, auth)));
  const script = join(mkdtempSync(join(tmpdir(), 'mandate-wrk-')), 'load.lua');
  writeFileSync(script, WRK_SCRIPT);
  const headers = Object.entries({ ...HEADERS, ...auth }).flatMap(([name, value]) => ['-H', `${name}: ${value}`]);
  const env = { ...process.env, BENCH_SESSIONS: ids.join(','), BENCH_BODY: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: {} } }) };
  // Spawned, not spawnSync: whatever else this process runs meanwhile (the access changes) goes on.
  const run = (duration: number) =>
    new Promise<string>((resolve, reject) => {
      const wrk = spawn('wrk', ['-t1', `-c${sessions}`, `-d${duration}s`, '--latency', '-s', script, ...headers, url], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      wrk.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
      wrk.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
      wrk.on('error', reject);
      wrk.on('close', (code) => {
        const bad = Number(/bad answers: (\d+)/.exec(stdout)?.[1] ?? NaN);
        if (code !== 0) reject(new Error(`wrk: ${stderr || stdout}`));
        else if (bad !== 0) reject(new Error(`${tool}: ${bad} answers were not a tool result\n${stdout}`));
        else resolve(stdout);
      });
    });
  await run(WARMUP_SECONDS);
  const cpuBefore = cpuTicks(pid);
  const output = await run(seconds);
  const cpuTicksUsed = cpuTicks(pid) - cpuBefore;
  const requests = Number(/(\d+) requests in/.exec(output)?.[1]);
  const elapsed = Number(/requests in ([\d.]+)s/.exec(output)?.[1] ?? seconds);
  const latency = (percent: number) => {
    const [, value, unit] = new RegExp(`^\\s+${percent}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(output) ?? [];
    return Number(value) * ({ us: 0.001, ms: 1, s: 1000 }[unit as 'us' | 'ms' | 's'] ?? NaN);
  };
  return { rate: requests / elapsed, p50: latency(50), p99: latency(99), cpuUs: (((cpuTicksUsed * 1000) / TICKS_PER_SECOND) * 1000) / requests };
}
