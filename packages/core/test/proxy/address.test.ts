import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProxyRefused, UpstreamFailed, type LocalBroker } from '@everyauth/core';
import { addressRefusal, checkedLookup } from '../../src/proxy/address.js';
import { CLIENT_ID, CLIENT_SECRET, authorizeUser } from '../support/broker.js';
import { startProxyTestbed, type ProxyTestbed } from '../support/proxy-testbed.js';
import type { Upstream } from '../support/upstream.js';

describe('addressRefusal', () => {
  it.each([
    ['169.254.169.254', true],
    ['::ffff:169.254.169.254', true],
    ['fd00:ec2::254', true],
    ['fe80::1', true],
    ['0.0.0.0', true],
    ['::', true],
    ['224.0.0.1', true],
    ['255.255.255.255', true],
    ['100.100.100.200', true],
  ])('never connects to %s, whoever declared the host', (address) => {
    expect(addressRefusal('api.example.test', address, true)).toMatch(/link-local, metadata/);
    expect(addressRefusal('localhost', address, true)).toMatch(/link-local, metadata/);
  });

  it.each(['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1'])('lets only localhost resolve to the loopback address %s', (address) => {
    expect(addressRefusal('localhost', address, false)).toBeUndefined();
    expect(addressRefusal('api.example.test', address, false)).toMatch(/loopback/);
    expect(addressRefusal('api.example.test', address, true)).toMatch(/loopback/);
  });

  it.each(['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', 'fd12:3456::1', 'fc00::1', '::ffff:10.0.0.1'])(
    "lets %s, a private-network address, through only for the service's own base URLs",
    (address) => {
      expect(addressRefusal('api.example.test', address, false)).toMatch(/private-network/);
      expect(addressRefusal('api.example.test', address, true)).toBeUndefined();
    },
  );

  it.each(['8.8.8.8', '172.32.0.1', '2606:4700::1111', '100.128.0.1'])('lets the public address %s through', (address) => {
    expect(addressRefusal('api.example.test', address, false)).toBeUndefined();
  });
});

describe('checkedLookup', () => {
  const resolver =
    (answers: LookupAddress[]): LookupFunction =>
    (_host, options, callback) =>
      options.all
        ? (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, answers)
        : callback(null, answers[0]!.address, answers[0]!.family);
  const run = (lookup: LookupFunction, all: boolean) =>
    new Promise<unknown>((resolve, reject) =>
      lookup('api.example.test', { all }, (err, address) => (err ? reject(err) : resolve(address))),
    );

  it('keeps only the allowed answers, in the form net.connect asked for', async () => {
    const lookup = checkedLookup(
      resolver([
        { address: '10.0.0.1', family: 4 },
        { address: '93.184.215.14', family: 4 },
      ]),
    );
    expect(await run(lookup, true)).toEqual([{ address: '93.184.215.14', family: 4 }]);
    expect(await run(lookup, false)).toBe('93.184.215.14');
  });

  it('refuses with proxy_refused when no answer is allowed', async () => {
    const lookup = checkedLookup(resolver([{ address: '127.0.0.1', family: 4 }]));
    await expect(run(lookup, false)).rejects.toBeInstanceOf(ProxyRefused);
  });
});

describe('broker.fetch connects only to allowed addresses', () => {
  let bed: ProxyTestbed;
  let upstream: Upstream;
  let broker: LocalBroker;
  /** Where the stand-in DNS sends api.example.test; everything else resolves as usual. */
  let answer = '127.0.0.1';
  const lookups: string[] = [];
  const lookup: LookupFunction = (hostname, options, callback) => {
    lookups.push(hostname);
    if (hostname !== 'api.example.test') return dnsLookup(hostname, options, callback);
    const family = answer.includes(':') ? 6 : 4;
    return options.all
      ? (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, [{ address: answer, family }])
      : callback(null, answer, family);
  };

  beforeAll(async () => {
    bed = await startProxyTestbed(['catalog', 'selfhosted'], { proxy: { lookup, connectTimeoutMs: 300 } });
    ({ upstream, broker } = bed);
    // A provider that declares the host, as a catalog entry (or a template filled from a user's value) would.
    const idp = await broker.getProvider('local-idp');
    await broker.putProvider({ ...idp, id: 'local-catalog', api: { baseUrls: ['https://api.example.test/v1'] } });
    await broker.putService({ id: 'catalog', providerId: 'local-catalog', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
    // A self-hosted install: the service's variable names the host, as for GitLab's {baseUrl}.
    const variables = { host: { description: 'The API host' } };
    await broker.putProvider({ ...idp, id: 'local-selfhosted', api: { baseUrls: ['https://{host}/v1'] }, variables });
    const selfhosted = { providerId: 'local-selfhosted', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET };
    await broker.putService({ id: 'selfhosted', ...selfhosted, variables: { host: 'api.example.test' } });
    for (const serviceId of ['local', 'catalog', 'selfhosted']) await authorizeUser(broker, bed.server, 'alice', { serviceId });
  });
  afterAll(() => bed?.close());
  beforeEach(() => {
    upstream.seen.length = 0;
    lookups.length = 0;
  });

  const outcome = (serviceId: string) =>
    broker.fetch(serviceId, 'alice', '/things').then(
      (r) => r.status,
      (err: Error) => err,
    );

  it('refuses a declared name that resolves to a loopback address, whoever declared it', async () => {
    answer = '127.0.0.1';
    await broker.putService({ id: 'local', apiBaseUrls: ['https://api.example.test/v1'] });
    for (const serviceId of ['local', 'catalog']) {
      const err = await outcome(serviceId);
      expect(err).toBeInstanceOf(ProxyRefused);
      expect((err as ProxyRefused).reason).toBe('target');
      expect((err as ProxyRefused).message).toContain('api.example.test resolves to a loopback address');
    }
    expect(lookups).toContain('api.example.test'); // refused at connect time, by the address looked up
    expect(upstream.seen).toHaveLength(0);
  });

  it('refuses the metadata address, and a private one unless the service names the host itself', async () => {
    answer = '169.254.169.254';
    expect(((await outcome('local')) as ProxyRefused).message).toContain('link-local, metadata');
    answer = '10.255.255.1';
    expect(((await outcome('catalog')) as ProxyRefused).message).toContain('private-network address');
    // The service's own apiBaseUrls or variables may name a host on a private network: the proxy
    // connects (here to an address where nothing answers, so the connection fails, but not by the rule).
    expect(await outcome('local')).toBeInstanceOf(UpstreamFailed);
    expect(await outcome('selfhosted')).toBeInstanceOf(UpstreamFailed);
    answer = '127.0.0.1';
    expect(((await outcome('selfhosted')) as ProxyRefused).message).toContain('loopback');
  });

  it('connects to localhost named in the base URL', async () => {
    await broker.putService({ id: 'local', apiBaseUrls: [`${upstream.origin}/api`] });
    expect(await outcome('local')).toBe(200);
    expect(lookups).toContain('localhost');
    expect(upstream.seen).toHaveLength(1);
  });
});
