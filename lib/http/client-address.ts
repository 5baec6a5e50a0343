import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

// Which address a request comes from, for the failed-login limiter and the session record. Behind
// proxies the client is the right-most X-Forwarded-For entry the deployment does not trust: every
// entry left of it was written by the client itself and proves nothing.

export type TrustProxy = { kind: 'none' } | { kind: 'hops'; hops: number } | { kind: 'addresses'; list: BlockList; text: string };

/** Entries of X-Forwarded-For considered at most (the right-most ones; the rest is the client's). */
const MAX_ENTRIES = 32;

/** MANDATE_TRUST_PROXY: false, true (one proxy), a hop count, or trusted addresses and CIDRs. */
export function parseTrustProxy(raw: string): TrustProxy {
  const value = raw.trim().toLowerCase();
  if (value === '' || value === 'false' || value === '0') return { kind: 'none' };
  if (value === 'true') return { kind: 'hops', hops: 1 };
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops > MAX_ENTRIES) throw new Error(`must be at most ${MAX_ENTRIES} hops`);
    return { kind: 'hops', hops };
  }
  const list = new BlockList();
  for (const item of value.split(',').map((part) => part.trim()).filter(Boolean)) {
    const [address, bits] = item.split('/');
    const family = isIP(address ?? '');
    if (!family) throw new Error(`"${item}" is not an IP address or CIDR range`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address!, type);
    else {
      const prefix = Number(bits);
      if (!/^\d+$/.test(bits) || prefix > (family === 6 ? 128 : 32)) throw new Error(`"${item}" has a bad prefix length`);
      list.addSubnet(address!, prefix, type);
    }
  }
  return { kind: 'addresses', list, text: value };
}

/** An address as written in a header or by the socket: brackets, a port and IPv4-mapping removed. */
function plainAddress(entry: string): string | null {
  let value = entry.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(value);
  if (bracketed) value = bracketed[1]!;
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(value)) value = value.slice(0, value.lastIndexOf(':'));
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(value);
  if (mapped) value = mapped[1]!;
  return isIP(value) ? value : null;
}

function trusted(list: BlockList, address: string): boolean {
  return list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

export function clientAddress(req: IncomingMessage, trust: TrustProxy): string {
  const peer = plainAddress(req.socket.remoteAddress ?? '') ?? 'unknown';
  if (trust.kind === 'none') return peer;
  const header = req.headers['x-forwarded-for'];
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  // Hops, right to left: the socket's peer first, then what each proxy appended.
  const chain = [...text.split(',').slice(-MAX_ENTRIES).map(plainAddress).reverse()];
  if (trust.kind === 'hops') {
    // The peer is the first trusted hop; the client is the entry the last trusted proxy wrote.
    if (trust.hops === 0) return peer;
    const entry = chain[trust.hops - 1];
    if (entry === undefined) return chain.length ? (chain[chain.length - 1] ?? peer) : peer;
    return entry ?? peer;
  }
  if (peer === 'unknown' || !trusted(trust.list, peer)) return peer;
  let nearest = peer;
  for (const entry of chain) {
    // Not an address: nothing further left can be believed; the last trusted hop answers for it.
    if (entry === null) return nearest;
    if (!trusted(trust.list, entry)) return entry;
    nearest = entry;
  }
  return nearest;
}
