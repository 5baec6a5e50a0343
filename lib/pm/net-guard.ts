import { BlockList, isIP } from 'node:net';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { invalid, OpError } from '../errors.ts';

// Tracker base URLs come from users, so a connection must not become a way to reach the
// deployment's own network (SSRF). The URL is checked when it is added, and every connection's
// resolved address is checked again when the socket connects (DNS may change in between).

export const NETWORK_CLASSES = ['loopback', 'private', 'link-local'] as const;
export type NetworkClass = (typeof NETWORK_CLASSES)[number];

export interface NetworkPolicy {
  /** Address classes a deployment explicitly allows (tests: loopback). */
  allow: ReadonlySet<NetworkClass>;
  /** Plain http:// base URLs (otherwise https only). */
  allowHttp: boolean;
}

function blockList(v4: string[], v6: string[]): BlockList {
  const list = new BlockList();
  for (const cidr of v4) list.addSubnet(cidr.split('/')[0]!, Number(cidr.split('/')[1]), 'ipv4');
  for (const cidr of v6) list.addSubnet(cidr.split('/')[0]!, Number(cidr.split('/')[1]), 'ipv6');
  return list;
}

const CLASSES: Record<NetworkClass, BlockList> = {
  loopback: blockList(['127.0.0.0/8'], ['::1/128']),
  private: blockList(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10'], ['fc00::/7']),
  'link-local': blockList(['169.254.0.0/16'], ['fe80::/10']),
};
// Never a tracker: "this host", multicast, reserved and broadcast ranges.
const NEVER = blockList(
  ['0.0.0.0/8', '192.0.0.0/24', '192.0.2.0/24', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4'],
  ['::/128', '100::/64', '2001:db8::/32', 'ff00::/8'],
);

/** The eight 16-bit groups of an IPv6 address (a dotted IPv4 tail included). */
export function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase().replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((group) => parseInt(group, 16));
}

/**
 * IPv6 forms that carry an IPv4 address are judged as that address: IPv4-mapped (::ffff:0:0/96),
 * IPv4-compatible (::/96) and NAT64 (64:ff9b::/96, 64:ff9b:1::/48), in dotted or hex notation.
 */
export function normalise(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  if (isIP(address) !== 6) return { address, family: 'ipv4' };
  const g = ipv6Groups(address);
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  const embedded =
    (zeros(0, 5) && g[5] === 0xffff) ||
    (zeros(0, 6) && !(g[6] === 0 && (g[7] === 0 || g[7] === 1))) ||
    (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) ||
    (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1);
  if (!embedded) return { address, family: 'ipv6' };
  const v4 = [g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff].join('.');
  return { address: v4, family: 'ipv4' };
}

/** Why an address may not be reached under the policy, or null if it may. */
export function forbiddenAddress(address: string, policy: NetworkPolicy): string | null {
  const { address: ip, family } = normalise(address);
  if (NEVER.check(ip, family)) return `${ip} is not a routable address`;
  for (const name of NETWORK_CLASSES) {
    if (CLASSES[name].check(ip, family) && !policy.allow.has(name)) return `${ip} is a ${name} address`;
  }
  return null;
}

/**
 * Why a URL's host may not be reached, when the host is an IP literal (a socket's lookup is
 * skipped for literals, so they are judged here); null for names and allowed addresses.
 */
export function forbiddenLiteralHost(url: URL, policy: NetworkPolicy): { host: string; reason: string } | null {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!isIP(host)) return null;
  const reason = forbiddenAddress(host, policy);
  return reason ? { host, reason } : null;
}

/**
 * A tracker base URL as stored: https (http only if allowed), no credentials, query or fragment,
 * no trailing slash. An IP-literal host is judged at once; names are judged when resolved.
 */
export function checkBaseUrl(raw: string, policy: NetworkPolicy, field = 'base_url'): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(field, 'must be an absolute URL such as https://example.atlassian.net');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp)) {
    throw invalid(field, 'must use https://');
  }
  if (url.username || url.password) throw invalid(field, 'must not contain a user name or password; give credentials in their own fields');
  if (url.search || url.hash) throw invalid(field, 'must not contain a query or fragment');
  const literal = forbiddenLiteralHost(url, policy);
  if (literal) throw invalid(field, `${literal.reason}, which this deployment does not allow trackers on`);
  // "localhost." is localhost too (a fully qualified name).
  if (/(^|\.)localhost\.*$/i.test(url.hostname) && !policy.allow.has('loopback')) {
    throw invalid(field, `${url.hostname} is a loopback name, which this deployment does not allow trackers on`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for sockets: resolves as usual, then refuses if any address the name resolves to is
 * forbidden, so a name cannot point at the internal network after it was checked.
 */
export function guardedLookup(policy: NetworkPolicy) {
  return (hostname: string, options: object, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses as LookupAddress[];
      for (const entry of list) {
        const reason = forbiddenAddress(entry.address, policy);
        if (reason) return callback(new BlockedAddressError(hostname, reason), []);
      }
      if ((options as { all?: boolean }).all) return callback(null, list);
      return callback(null, list[0]!.address, list[0]!.family);
    });
  };
}

export class BlockedAddressError extends OpError {
  constructor(host: string, reason: string) {
    super('invalid_input', `the tracker host ${host} resolves to a forbidden address (${reason}); this deployment does not allow trackers there`, { field: 'base_url' });
    this.name = 'BlockedAddressError';
  }
}
