import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { ProxyRefused } from '../errors.js';

const blockList = (ranges: string[]): BlockList => {
  const list = new BlockList();
  for (const range of ranges) {
    const [address, prefix] = range.split('/');
    const type = isIP(address!) === 6 ? 'ipv6' : 'ipv4';
    list.addSubnet(address!, Number(prefix ?? (type === 'ipv6' ? 128 : 32)), type);
  }
  return list;
};

/**
 * Never an API: unspecified, link-local (where clouds serve instance metadata and its credentials,
 * 169.254.169.254 and AWS's fd00:ec2::254), multicast, reserved, broadcast (RFC 6890 registries),
 * and Alibaba Cloud's metadata address. BlockList matches IPv4-mapped IPv6 (`::ffff:a.b.c.d`) too.
 */
const NEVER = blockList([
  '0.0.0.0/8',
  '169.254.0.0/16',
  '100.100.100.200',
  '224.0.0.0/3', // multicast 224/4 and reserved 240/4 with broadcast
  '::/128',
  'fe80::/10',
  'fd00:ec2::254',
  'ff00::/8',
]);
const LOOPBACK = blockList(['127.0.0.0/8', '::1/128']);
/** Private networks: RFC 1918, shared address space (RFC 6598), unique local IPv6 (RFC 4193), benchmarking (RFC 2544). */
const PRIVATE = blockList(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '198.18.0.0/15', 'fc00::/7']);

/** `localhost` and names under it resolve to the loopback interface (RFC 6761 §6.3). */
const isLocalhost = (host: string) => host === 'localhost' || host.endsWith('.localhost');

/**
 * Why the proxy must not connect to `address` for `host`, or undefined when it may. A name may
 * resolve to a loopback address only when it is `localhost`, which the base URL names explicitly;
 * to a private address only when the service's operator chose the host (`privateNetwork`: its own
 * apiBaseUrls or variables, for a self-hosted API on its own network), never when it comes from the
 * catalog or a user's typed value; to a link-local, metadata, multicast or unspecified address never.
 */
export function addressRefusal(host: string, address: string, privateNetwork: boolean): string | undefined {
  const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  if (NEVER.check(address, type)) return 'a link-local, metadata, multicast or unspecified address';
  if (LOOPBACK.check(address, type))
    return isLocalhost(host) ? undefined : 'a loopback address (name the local machine localhost in the base URL)';
  if (PRIVATE.check(address, type) && !privateNetwork) {
    return 'a private-network address (allowed only for hosts the service itself names, in its apiBaseUrls or variables)';
  }
  return undefined;
}

/**
 * A `lookup` for the sockets the proxy opens (undici passes its connect options to `net.connect`):
 * it resolves with `resolve` and refuses an answer `addressRefusal` forbids, so the check applies to
 * the very address connected to. A name that resolved to a public address for an earlier check and
 * to an internal one now (DNS rebinding) is caught here. Answers are filtered one by one: the socket
 * connects only to addresses that passed.
 */
export function checkedLookup(resolve: LookupFunction = dnsLookup, privateNetwork = false): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, answers) => {
      if (err) return callback(err, '', 0);
      const all = (Array.isArray(answers) ? answers : [{ address: answers, family: isIP(answers) }]) as LookupAddress[];
      const allowed = all.filter((a) => addressRefusal(hostname, a.address, privateNetwork) === undefined);
      if (allowed.length === 0) {
        const why = all.length > 0 ? addressRefusal(hostname, all[0]!.address, privateNetwork) : 'no address';
        return callback(new ProxyRefused('target', `The API host ${hostname} resolves to ${why}; no credential is sent there.`), '', 0);
      }
      // net.connect asks for every address when it races IPv4 and IPv6 (autoSelectFamily), else for one.
      if (options.all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, allowed);
      else callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}
