/**
 * @module net/url-policy
 * Decides which URLs and which network addresses the server may contact on a client's behalf (SSRF defence).
 *
 * Two checks, both needed: `checkUrl` refuses what the URL alone gives away (scheme, credentials, port, an IP
 * literal in any notation) so a submission can be refused at once; `checkAddress` refuses every address a name
 * resolves to, and `safe-request.ts` runs it inside the socket's `lookup` so the connection goes to the very
 * address that was checked (no window for DNS rebinding).
 *
 * IP literals: WHATWG URL parsing already turns `2130706433`, `0x7f.1`, `0177.0.0.1` and `127.1` into
 * `127.0.0.1` and compresses IPv6, so the hostname we check is the one node's http client will dial. IPv6
 * forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo) are checked by that address too.
 */
import { BlockList, isIP } from 'node:net';

import { AppError } from '../errors.ts';

export interface UrlPolicyOptions {
  /** LAN deployments: allow private, CGNAT, unique-local and loopback addresses. Metadata and link-local stay refused. */
  allowPrivateNetworks: boolean;
  /** Ports that may be contacted; the scheme's default port counts as given. */
  allowedPorts: ReadonlySet<number>;
}

export interface UrlPolicy {
  readonly options: Readonly<UrlPolicyOptions>;
  /** Parses and checks a URL without any network access; throws `url_forbidden` (or `invalid_request` when it is not a URL). */
  checkUrl(raw: string | URL): URL;
  /** Whether the server may connect to this IP address (v4 or v6 text). */
  isAddressAllowed(address: string): boolean;
  /** Throws `url_forbidden` when `isAddressAllowed` is false. */
  checkAddress(address: string, hostname?: string): void;
}

export const DEFAULT_ALLOWED_PORTS: ReadonlySet<number> = new Set([80, 443, 8080, 8443]);
const MAX_URL_LENGTH = 2048;

type Family = 'ipv4' | 'ipv6';
type Range = readonly [address: string, prefix: number, family: Family];

/** Never contacted, whatever the operator allows: nothing legitimate serves audio there. */
const ALWAYS_BLOCKED: readonly Range[] = [
  ['0.0.0.0', 8, 'ipv4'], // "this network"; 0.0.0.0 reaches the local host on Linux
  ['169.254.0.0', 16, 'ipv4'], // link-local, including the cloud metadata endpoint 169.254.169.254
  ['100.100.100.200', 32, 'ipv4'], // Alibaba Cloud metadata, inside CGNAT space
  ['192.0.0.0', 24, 'ipv4'], // IETF protocol assignments
  ['192.0.2.0', 24, 'ipv4'], // TEST-NET-1
  ['192.88.99.0', 24, 'ipv4'], // 6to4 relay anycast
  ['198.18.0.0', 15, 'ipv4'], // benchmarking
  ['198.51.100.0', 24, 'ipv4'], // TEST-NET-2
  ['203.0.113.0', 24, 'ipv4'], // TEST-NET-3
  ['224.0.0.0', 4, 'ipv4'], // multicast
  ['240.0.0.0', 4, 'ipv4'], // reserved and broadcast
  ['::', 128, 'ipv6'], // unspecified
  ['fe80::', 10, 'ipv6'], // link-local
  ['fec0::', 10, 'ipv6'], // site-local (deprecated)
  ['ff00::', 8, 'ipv6'], // multicast
  ['fd00:ec2::254', 128, 'ipv6'], // AWS metadata over IPv6
  ['100::', 64, 'ipv6'], // discard-only
  ['2001:db8::', 32, 'ipv6'], // documentation
];

/** Private networks: refused unless the operator allows them. */
const PRIVATE: readonly Range[] = [
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'], // carrier-grade NAT
  ['127.0.0.0', 8, 'ipv4'], // loopback
  ['172.16.0.0', 12, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['::1', 128, 'ipv6'], // loopback
  ['fc00::', 7, 'ipv6'], // unique local
];

function blockList(ranges: readonly Range[]): BlockList {
  const list = new BlockList();
  for (const [address, prefix, family] of ranges) {
    list.addSubnet(address, prefix, family);
  }
  return list;
}

const alwaysBlocked = blockList(ALWAYS_BLOCKED);
const privateNetworks = blockList(PRIVATE);

/** Expands an IPv6 text address to its eight 16-bit groups, or null when it is not one. */
function ipv6Groups(address: string): number[] | null {
  let text = address.replace(/^\[|\]$/g, '').toLowerCase();
  if (text.includes('%')) {
    text = text.slice(0, text.indexOf('%'));
  }
  if (isIP(text) !== 6) {
    return null;
  }
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1] !== undefined) {
    const octets = dotted[1].split('.').map(Number);
    const [a = 0, b = 0, c = 0, d = 0] = octets;
    text = `${text.slice(0, -dotted[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : new Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const groups = [...headGroups, ...fill, ...tailGroups].map((group) => parseInt(group, 16));
  return groups.length === 8 ? groups : null;
}

function ipv4FromBits(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/** The IPv4 addresses an IPv6 address carries, through which it may reach an IPv4 host. */
export function embeddedIpv4(address: string): string[] {
  const g = ipv6Groups(address);
  if (g === null) {
    return [];
  }
  const found: string[] = [];
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  const zeroPrefix = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  // ::1 is the IPv6 loopback, not the IPv4-compatible 0.0.0.1 (RFC 4291 §2.5.5.1); :: is refused on its own.
  const loopbackOrUnspecified = zeroPrefix && g5 === 0 && g6 === 0 && g7 <= 1;
  if (zeroPrefix && (g5 === 0xffff || g5 === 0) && !loopbackOrUnspecified) {
    found.push(ipv4FromBits(g6, g7)); // IPv4-mapped ::ffff:a.b.c.d and the old IPv4-compatible ::a.b.c.d
  }
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0xffff && g5 === 0) {
    found.push(ipv4FromBits(g6, g7)); // IPv4-translated ::ffff:0:a.b.c.d (SIIT)
  }
  if (g0 === 0x64 && g1 === 0xff9b) {
    found.push(ipv4FromBits(g6, g7)); // NAT64 64:ff9b::/96 and 64:ff9b:1::/48
  }
  if (g0 === 0x2002) {
    found.push(ipv4FromBits(g1, g2)); // 6to4
  }
  if (g0 === 0x2001 && g1 === 0) {
    found.push(ipv4FromBits(g6 ^ 0xffff, g7 ^ 0xffff)); // Teredo: the client address, inverted
  }
  return found;
}

function forbidden(detail: string): AppError {
  return new AppError('url_forbidden', detail);
}

export function createUrlPolicy(options: UrlPolicyOptions): UrlPolicy {
  const frozen = Object.freeze({ ...options, allowedPorts: new Set(options.allowedPorts) });

  const isAddressAllowed = (address: string): boolean => {
    const bare = address.replace(/^\[|\]$/g, '');
    const family = isIP(bare);
    if (family === 0) {
      return false;
    }
    const type: Family = family === 4 ? 'ipv4' : 'ipv6';
    if (alwaysBlocked.check(bare, type) || (!frozen.allowPrivateNetworks && privateNetworks.check(bare, type))) {
      return false;
    }
    return family === 4 || embeddedIpv4(bare).every((inner) => isAddressAllowed(inner));
  };

  return {
    options: frozen,
    checkUrl(raw) {
      const text = String(raw);
      if (text.length > MAX_URL_LENGTH) {
        throw new AppError('invalid_request', `The URL is longer than ${MAX_URL_LENGTH} characters.`);
      }
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        throw new AppError('invalid_request', 'The url is not an absolute URL.');
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw forbidden('Only http and https URLs can be fetched.');
      }
      if (url.username !== '' || url.password !== '') {
        throw forbidden('URLs with credentials are not fetched.');
      }
      const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
      if (!frozen.allowedPorts.has(port)) {
        throw forbidden(`The port ${port} is not allowed.`);
      }
      const host = url.hostname.replace(/^\[|\]$/g, '');
      if (host === '') {
        throw forbidden('The URL has no host.');
      }
      if (isIP(host) !== 0) {
        if (!isAddressAllowed(host)) {
          throw forbidden('The URL points at an address that is not allowed.');
        }
      } else if (!frozen.allowPrivateNetworks && /(^|\.)localhost\.*$/.test(host)) {
        throw forbidden('The URL points at the local host.');
      }
      return url;
    },
    isAddressAllowed,
    checkAddress(address, hostname) {
      if (!isAddressAllowed(address)) {
        throw forbidden(hostname === undefined ? 'The address is not allowed.' : `The host ${hostname} resolves to an address that is not allowed.`);
      }
    },
  };
}

/** Parses `80,443,8000-8100` into a set of ports; throws a plain Error naming the bad part. */
export function parsePortList(text: string): Set<number> {
  const ports = new Set<number>();
  for (const part of text.split(',').map((item) => item.trim()).filter(Boolean)) {
    const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    const low = Number(match?.[1]);
    const high = Number(match?.[2] ?? match?.[1]);
    if (!match || low < 1 || high > 65535 || low > high) {
      throw new Error(`not a port or port range: ${JSON.stringify(part)}`);
    }
    for (let port = low; port <= high; port++) {
      ports.add(port);
    }
  }
  return ports;
}
