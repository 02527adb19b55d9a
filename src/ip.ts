// IP address checks, with node:net loaded on first use: it brings Node's streams with it, ~7 ms
// of every `import 'outbound-pools'` otherwise, for checks that run only on address literals,
// ingress IPs and DNS server addresses.

type Net = typeof import('node:net');

let net: Net | undefined;

function load(): Net {
  net ??= process.getBuiltinModule('node:net');
  return net;
}

/** `net.isIPv4`. */
export function isIPv4(text: string): boolean {
  return load().isIPv4(text);
}

/** `net.isIPv6`. */
export function isIPv6(text: string): boolean {
  return load().isIPv6(text);
}

/** `net.isIP`: 4, 6, or 0 when `text` is not an IP address. */
export function isIP(text: string): number {
  return load().isIP(text);
}
