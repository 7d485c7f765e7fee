import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverProvider } from '../src/catalog/discovery.js';
import {
  BUILT_IN_CATALOG_DIR,
  loadBuiltInCatalog,
  loadCatalogDirectory,
  parseProvider,
  providerPlaceholders,
  resolveProviderUrls,
  filterProviders,
  searchProviders,
  type CatalogEntry,
} from '../src/catalog/index.js';
import { ProviderSchema, type Provider, type ProviderInput } from '../src/catalog/schema.js';
import { InvalidInput, ProviderError, ProviderUnavailable } from '../src/errors.js';
import { PROVIDERS_DOC, refreshSummary, renderProvidersDoc } from '../../../scripts/gen-provider-docs.js';

const catalogDir = fileURLToPath(BUILT_IN_CATALOG_DIR);
const files = readdirSync(catalogDir)
  .filter((f) => f.endsWith('.json'))
  .sort();
const raw = new Map(files.map((f) => [f, JSON.parse(readFileSync(join(catalogDir, f), 'utf8')) as Record<string, unknown>]));

function urlsOf(p: Provider): Array<[string, string]> {
  const out: Array<[string, string]> = [['docs', p.docs]];
  for (const field of ['issuer', 'authorizationUrl', 'tokenUrl', 'refreshUrl', 'revocationUrl', 'userinfoUrl'] as const) {
    const value = p[field];
    if (value !== undefined) out.push([field, value]);
  }
  if (p.profile?.url) out.push(['profile.url', p.profile.url]);
  return out;
}

function provider(id: string): Provider {
  const p = loadBuiltInCatalog().get(id);
  if (!p) throw new Error(`no provider ${id}`);
  return p;
}

const minimal: ProviderInput = {
  id: 'acme',
  name: 'Acme',
  docs: 'https://acme.example/docs/oauth',
  authorizationUrl: 'https://acme.example/oauth/authorize',
  tokenUrl: 'https://acme.example/oauth/token',
};

describe('built-in catalog files', () => {
  it('has at least 300 providers', () => {
    expect(files.length).toBeGreaterThanOrEqual(300);
  });

  it.each(files)('%s validates and its id equals the file name', (file) => {
    const p = parseProvider(raw.get(file), file);
    expect(p.id).toBe(file.replace(/\.json$/, ''));
  });

  it('has no unknown fields (zod would silently drop a misspelt one)', () => {
    const shape = ProviderSchema.shape;
    const nested: Record<string, string[]> = {
      scopes: Object.keys(shape.scopes.unwrap().shape),
      token: Object.keys(shape.token.unwrap().shape),
      profile: Object.keys(shape.profile.unwrap().shape),
      api: Object.keys(shape.api.unwrap().shape),
    };
    const problems: string[] = [];
    for (const [file, json] of raw) {
      for (const [key, value] of Object.entries(json)) {
        if (!(key in shape)) problems.push(`${file}: ${key}`);
        else if (nested[key] && value && typeof value === 'object') {
          for (const k of Object.keys(value)) if (!nested[key].includes(k)) problems.push(`${file}: ${key}.${k}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('uses https for every URL, a templated origin included (its default or example)', () => {
    const withOrigins = (p: Provider) =>
      resolveProviderUrls(p, Object.fromEntries(Object.entries(p.variables).map(([k, v]) => [k, v.default ?? v.example ?? 'example'])));
    const insecure = [...loadBuiltInCatalog().values()].map(withOrigins).flatMap((p) =>
      urlsOf(p)
        .filter(([, url]) => !url.startsWith('https://'))
        .map(([field, url]) => `${p.id}.${field}: ${url}`),
    );
    expect(insecure).toEqual([]);
  });

  it('declares every template placeholder and uses every declared variable', () => {
    for (const p of loadBuiltInCatalog().values()) {
      expect(providerPlaceholders(p).sort(), p.id).toEqual(Object.keys(p.variables).sort());
      for (const [, url] of urlsOf(p)) expect(url.replace(/\{[a-zA-Z][a-zA-Z0-9_]*\}/g, 'x'), p.id).not.toMatch(/[{}]/);
    }
  });

  it('has a name, docs and, for id_token profiles, an issuer to validate the ID token against', () => {
    for (const p of loadBuiltInCatalog().values()) {
      expect(p.name.length, p.id).toBeGreaterThan(0);
      if (p.profile?.source === 'id_token') expect(p.issuer, p.id).toBeDefined();
      if (p.authorizationResponseIss) expect(p.issuer, p.id).toBeDefined();
    }
  });

  it('resolves with example values for every templated provider', () => {
    for (const p of loadBuiltInCatalog().values()) {
      const values = Object.fromEntries(Object.entries(p.variables).map(([k, v]) => [k, v.example ?? 'example']));
      const resolved = resolveProviderUrls(p, values);
      for (const [, url] of urlsOf(resolved)) {
        expect(url, p.id).not.toMatch(/[{}]/);
        expect(() => new URL(url)).not.toThrow();
      }
    }
  });

  it('models the providers the rest of EveryAuth depends on', () => {
    const google = provider('google');
    expect(google.authorizationParams).toEqual({ access_type: 'offline', prompt: 'consent' });
    expect(google.scopes.default).toEqual(['openid', 'email', 'profile']);
    expect(google.issuer).toBe('https://accounts.google.com');
    expect(google.revocationUrl).toBe('https://oauth2.googleapis.com/revoke');
    expect(google.profile?.source).toBe('id_token');
    expect(google.scopes.examples.some((s) => s.includes('gmail'))).toBe(true);
    expect(google.scopes.examples.some((s) => s.includes('calendar'))).toBe(true);
    expect(google.scopes.examples.some((s) => s.includes('drive'))).toBe(true);

    expect(provider('asana').profile).toEqual({ source: 'token_response', id: 'data.gid', name: 'data.name', email: 'data.email' });
    expect(provider('asana').scopes.examples.slice(0, 4)).toEqual(['openid', 'email', 'profile', 'default']);

    const github = provider('github');
    expect(github.token).toMatchObject({ expires: false, refreshToken: false });
    expect(resolveProviderUrls(github, {}).profile).toMatchObject({ source: 'url', url: 'https://api.github.com/user', id: 'id' });

    const slack = provider('slack');
    expect(slack.authorizationUrl).toBe('https://slack.com/oauth/v2/authorize');
    expect(slack.tokenUrl).toBe('https://slack.com/api/oauth.v2.access');
    expect(slack.scopes.separator).toBe(',');
    expect(slack.clientAuth).toBe('client_secret_post');
    expect(slack.token.path).toBe('authed_user');
    expect(slack.profile).toMatchObject({ source: 'token_response', id: 'authed_user.id' });
    expect(provider('slack-bot').token.path).toBeUndefined();

    expect(provider('microsoft').variables).toHaveProperty('tenant');
    expect(provider('microsoft').issuer).toContain('{tenant}');
    expect(provider('salesforce-sandbox').authorizationUrl).toContain('test.salesforce.com');
    expect(provider('atlassian').authorizationParams).toEqual({ audience: 'api.atlassian.com', prompt: 'consent' });
    expect(provider('atlassian').token.refreshTokenRotates).toBe(true);
    expect(provider('atlassian').profile?.url).toBe('https://api.atlassian.com/me');
    expect(provider('atlassian').notes).toMatch(/accessible-resources/);
    expect(provider('notion').clientAuth).toBe('client_secret_basic');
    expect(provider('notion').token.expires).toBe(false);
    expect(provider('dropbox').authorizationParams).toEqual({ token_access_type: 'offline' });
    expect(provider('zendesk').variables).toHaveProperty('subdomain');
    expect(provider('shopify').variables).toHaveProperty('shop');
    expect(provider('xero').token.refreshTokenRotates).toBe(true);
    expect(provider('airtable').pkce).toBe(true);
    expect(provider('x').pkce).toBe(true);
    expect(provider('reddit').authorizationParams).toEqual({ duration: 'permanent' });
    expect(provider('reddit').clientAuth).toBe('client_secret_basic');
    expect(provider('okta').variables).toHaveProperty('domain');
    expect(provider('auth0').variables).toHaveProperty('domain');
    expect(Object.keys(provider('keycloak').variables).sort()).toEqual(['host', 'realm']);
    expect(provider('figma').refreshUrl).toBe('https://api.figma.com/v1/oauth/refresh');
  });
});

describe('loadBuiltInCatalog', () => {
  it('loads every file once and caches the result', () => {
    const catalog = loadBuiltInCatalog();
    expect([...catalog.values()].filter((p) => !p.aliasOf)).toHaveLength(files.length);
    expect(loadBuiltInCatalog()).toBe(catalog);
  });

  it("resolves Fusebit EveryAuth's 14 service ids, through aliases where our id differs", () => {
    const fusebit = ['asana', 'atlassian', 'discord', 'githuboauth', 'gitlab', 'google', 'hubspot', 'linear', 'pagerduty'];
    fusebit.push('quickbooks-online', 'reddit', 'sfdc', 'slack', 'stackoverflow');
    const catalog = loadBuiltInCatalog();
    for (const id of fusebit) expect(catalog.get(id)?.id, id).toBe(id);
    const aliases = Object.fromEntries([...catalog.values()].filter((p) => p.aliasOf).map((p) => [p.id, p.aliasOf]));
    expect(aliases).toEqual({
      githuboauth: 'github',
      'quickbooks-online': 'quickbooks',
      sfdc: 'salesforce',
      stackoverflow: 'stackexchange',
    });
    const { id: _id, aliasOf: _aliasOf, ...sfdc } = catalog.get('sfdc')!;
    const { id: _sid, ...salesforce } = catalog.get('salesforce')!;
    expect(sfdc).toEqual(salesforce);
  });

  it('models Stack Exchange: a token that never expires (no_expiry) and no refresh token', () => {
    const se = provider('stackexchange');
    expect(se.scopes.default).toEqual(['no_expiry']);
    expect(se.token).toMatchObject({ expires: false, refreshToken: false });
    expect(se.tokenUrl).toBe('https://stackoverflow.com/oauth/access_token/json');
  });
});

describe('loadCatalogDirectory', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'everyauth-catalog-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, body: string) => {
    for (const f of readdirSync(dir)) rmSync(join(dir, f));
    writeFileSync(join(dir, name), body);
  };

  it('names the file and the field of an invalid provider', () => {
    write('acme.json', JSON.stringify({ ...minimal, tokenUrl: 'not a url' }));
    expect(() => loadCatalogDirectory(dir)).toThrowError(InvalidInput);
    expect(() => loadCatalogDirectory(dir)).toThrowError(/acme\.json[\s\S]*tokenUrl: an absolute URL/);
  });

  it('refuses an id that is not the file name', () => {
    write('other.json', JSON.stringify(minimal));
    expect(() => loadCatalogDirectory(dir)).toThrowError(/other\.json[\s\S]*id: "acme" must equal the file name "other"/);
  });

  it('reports a file that is not JSON', () => {
    write('acme.json', '{ nope');
    expect(() => loadCatalogDirectory(dir)).toThrowError(/acme\.json: not valid JSON/);
  });

  it('loads a valid directory', () => {
    write('acme.json', JSON.stringify(minimal));
    expect([...loadCatalogDirectory(dir).keys()]).toEqual(['acme']);
  });
});

describe('parseProvider', () => {
  it('fills in the defaults', () => {
    const p = parseProvider(minimal, 'test');
    expect(p).toMatchObject({ pkce: true, clientAuth: 'client_secret_basic', authorizationResponseIss: false });
    expect(p.scopes).toEqual({ default: [], separator: ' ', examples: [] });
    expect(p.token).toMatchObject({ refreshToken: true, expires: true, refreshTokenRotates: false, type: 'bearer' });
  });

  it('lists each issue as path: message, with the first path as the field', () => {
    let error: unknown;
    try {
      parseProvider({ ...minimal, id: 'Bad Id', scopes: { separator: ';' } }, 'the test input');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidInput);
    const e = error as InvalidInput;
    expect(e.message).toMatch(/^Invalid provider in the test input:/);
    expect(e.message).toMatch(/\n {2}id: lowercase letters, digits and dashes/);
    expect(e.message).toMatch(/\n {2}scopes\.separator: /);
    expect(e.field).toBe('id');
    expect(e.status).toBe(400);
  });

  it('catches a URL placeholder that is not declared', () => {
    expect(() => parseProvider({ ...minimal, tokenUrl: 'https://{tenant}.acme.example/token' }, 'fixture')).toThrowError(
      /variables: URL placeholder \{tenant\} is not declared in variables/,
    );
  });

  it('catches a declared variable that no URL uses', () => {
    expect(() => parseProvider({ ...minimal, variables: { region: { description: 'Region' } } }, 'fixture')).toThrowError(
      /variables\.region: variable region is declared but no URL uses it/,
    );
  });

  it('catches a profile read from a URL that is missing, and from userinfo without userinfoUrl', () => {
    expect(() => parseProvider({ ...minimal, profile: { source: 'url', id: 'id' } }, 'fixture')).toThrowError(/profile\.url/);
    expect(() => parseProvider({ ...minimal, profile: { source: 'userinfo', id: 'sub' } }, 'fixture')).toThrowError(/userinfoUrl/);
  });

  it('checks a declared auth failure: statuses other than 401, a JSON path, at least one value', () => {
    const api = (authFailure: unknown) => ({ ...minimal, api: { baseUrls: ['https://api.acme.example'], authFailure } });
    const ok = parseProvider(api({ status: [400], field: 'error.code', values: [190] }), 'fixture');
    expect(ok.api.authFailure).toEqual({ status: [400], field: 'error.code', values: [190] });
    expect(() => parseProvider(api({ status: [401], field: 'error', values: ['x'] }), 'fixture')).toThrowError(/401 always counts/);
    expect(() => parseProvider(api({ status: [400], field: 'error[0]', values: ['x'] }), 'fixture')).toThrowError(
      /api\.authFailure\.field/,
    );
    expect(() => parseProvider(api({ status: [400], field: 'error', values: [] }), 'fixture')).toThrowError(/api\.authFailure\.values/);
  });
});

describe('resolveProviderUrls', () => {
  it('substitutes every URL field, the profile URL included', () => {
    const zendesk = resolveProviderUrls(provider('zendesk'), { subdomain: 'acme' });
    expect(zendesk.authorizationUrl).toBe('https://acme.zendesk.com/oauth/authorizations/new');
    expect(zendesk.tokenUrl).toBe('https://acme.zendesk.com/oauth/tokens');
    expect(zendesk.profile?.url).toBe('https://acme.zendesk.com/api/v2/users/me');

    const keycloak = resolveProviderUrls(provider('keycloak'), { host: 'sso.example.com', realm: 'main' });
    expect(keycloak.issuer).toBe('https://sso.example.com/realms/main');
    expect(keycloak.revocationUrl).toBe('https://sso.example.com/realms/main/protocol/openid-connect/revoke');

    const microsoft = resolveProviderUrls(provider('microsoft'), { tenant: 'contoso.onmicrosoft.com' });
    expect(microsoft.issuer).toBe('https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0');
  });

  it('URL-encodes values and leaves the original provider alone', () => {
    const original = provider('keycloak');
    const resolved = resolveProviderUrls(original, { host: 'sso.example.com', realm: 'a+b[c]' });
    expect(resolved.tokenUrl).toBe('https://sso.example.com/realms/a%2Bb%5Bc%5D/protocol/openid-connect/token');
    expect(original.tokenUrl).toContain('{realm}');
  });

  it('returns an equal provider when there is nothing to substitute', () => {
    expect(resolveProviderUrls(provider('google'), {})).toEqual(provider('google'));
  });

  it('names a missing variable', () => {
    expect(() => resolveProviderUrls(provider('zendesk'), {})).toThrowError(InvalidInput);
    expect(() => resolveProviderUrls(provider('zendesk'), {})).toThrowError(/variable "subdomain"/);
    expect(() => resolveProviderUrls(provider('keycloak'), { host: 'sso.example.com' })).toThrowError(/variable "realm"/);
    expect(() => resolveProviderUrls(provider('zendesk'), { subdomain: '' })).toThrowError(/variable "subdomain"/);
  });

  it.each([
    'evil.com/',
    'evil.com#',
    'evil.com?',
    'user@evil.com',
    'evil.com:443',
    'a\\b',
    'a b',
    '%2F',
    '..',
    '.',
    'a\u0000b',
    'evil\uFF0Fx',
    'évil',
    'a_b',
  ])('rejects the host value %j, which could move the URL elsewhere', (value) => {
    let error: unknown;
    try {
      resolveProviderUrls(provider('zendesk'), { subdomain: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidInput);
    expect((error as InvalidInput).field).toBe('variables.subdomain');
  });
});

describe('self-hosted installs and endpoint overrides', () => {
  it('fills an origin variable from its default, or from the service (GitLab self-managed, Salesforce sandboxes, GitHub Enterprise)', () => {
    expect(resolveProviderUrls(provider('gitlab'), {}).tokenUrl).toBe('https://gitlab.com/oauth/token');
    const selfManaged = resolveProviderUrls(provider('gitlab'), { baseUrl: 'https://gitlab.example.com/' });
    expect(selfManaged.authorizationUrl).toBe('https://gitlab.example.com/oauth/authorize');
    expect(selfManaged.issuer).toBe('https://gitlab.example.com');
    expect(selfManaged.profile?.url).toBe('https://gitlab.example.com/api/v4/user');
    // A relative URL root (GitLab under /gitlab) stays part of the origin.
    expect(resolveProviderUrls(provider('gitlab'), { baseUrl: 'https://example.com/gitlab' }).tokenUrl).toBe(
      'https://example.com/gitlab/oauth/token',
    );
    expect(resolveProviderUrls(provider('salesforce'), { loginUrl: 'https://test.salesforce.com' }).tokenUrl).toBe(
      'https://test.salesforce.com/services/oauth2/token',
    );
    const ghes = resolveProviderUrls(provider('github'), {
      baseUrl: 'https://github.example.com',
      apiUrl: 'https://github.example.com/api/v3',
    });
    expect([ghes.authorizationUrl, ghes.profile?.url]).toEqual([
      'https://github.example.com/login/oauth/authorize',
      'https://github.example.com/api/v3/user',
    ]);
  });

  it('overrides any endpoint of any provider for one service, https or loopback http only', () => {
    const staging = resolveProviderUrls(provider('google'), {
      tokenUrl: 'https://oauth2.staging.example.com/token',
      authorizationUrl: 'http://127.0.0.1:8080/auth',
    });
    expect(staging.tokenUrl).toBe('https://oauth2.staging.example.com/token');
    expect(staging.authorizationUrl).toBe('http://127.0.0.1:8080/auth');
    expect(staging.userinfoUrl).toBe(provider('google').userinfoUrl);
    const zendesk = resolveProviderUrls(provider('zendesk'), { subdomain: 'acme', profileUrl: 'https://acme.example/me' });
    expect(zendesk.profile?.url).toBe('https://acme.example/me');
  });

  it.each([
    ['tokenUrl', 'http://auth.example.com/token', /must use https/],
    ['tokenUrl', 'https://user:pw@auth.example.com/token', /user name or password/],
    ['tokenUrl', 'https://auth.example.com/token#x', /fragment/],
    ['tokenUrl', 'not a url', /not an absolute URL/],
    ['baseUrl', 'https://gitlab.example.com?x=1', /query/],
    ['baseUrl', 'http://gitlab.example.com', /must use https/],
    ['baseurl', 'https://gitlab.example.com', /has no variable "baseurl"; it takes: baseUrl, issuer/],
  ])('refuses %s=%s, saying why', (name, value, message) => {
    expect(() => resolveProviderUrls(provider('gitlab'), { [name]: value })).toThrowError(message);
  });

  it('keeps catalog variables and endpoint override names apart', () => {
    const clash = { ...minimal, tokenUrl: 'https://{tokenUrl}/token', variables: { tokenUrl: { description: 'x' } } };
    expect(() => parseProvider(clash, 'fixture')).toThrowError(
      /variables\.tokenUrl: variable tokenUrl has the name of an endpoint override/,
    );
  });
});

describe('resolveProviderUrls in a path', () => {
  it.each(['a/b', '..', '.', 'a?b', 'a#b', 'a:b', 'a%2Fb', 'a\\b', 'a\nb'])('rejects the path value %j', (value) => {
    let error: unknown;
    try {
      resolveProviderUrls(provider('keycloak'), { host: 'sso.example.com', realm: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidInput);
    expect((error as InvalidInput).field).toBe('variables.realm');
  });

  it('encodes other characters in a path value', () => {
    const resolved = resolveProviderUrls(provider('keycloak'), { host: 'sso.example.com', realm: 'réalm' });
    expect(resolved.issuer).toBe('https://sso.example.com/realms/r%C3%A9alm');
  });
});

describe('searchProviders', () => {
  it('ranks an exact id first and matches case-insensitively', () => {
    const found = searchProviders(loadBuiltInCatalog(), 'SLACK').map((p) => p.id);
    expect(found.slice(0, 2)).toEqual(['slack', 'slack-bot']);
  });

  it('finds providers by scope and by notes', () => {
    expect(searchProviders(loadBuiltInCatalog(), 'calendar.events').map((p) => p.id)).toContain('google');
    expect(searchProviders(loadBuiltInCatalog(), 'accessible-resources').map((p) => p.id)).toEqual(['atlassian', 'confluence']);
  });

  it('returns everything, by id, for empty text, and nothing for no match', () => {
    const all = searchProviders(loadBuiltInCatalog(), '  ');
    expect(all.length).toBe(loadBuiltInCatalog().size);
    expect(all.map((p) => p.id)).toEqual([...all.map((p) => p.id)].sort());
    expect(searchProviders(loadBuiltInCatalog().values(), 'no-such-provider-anywhere')).toEqual([]);
  });
});

// ---- discovery against tiny local servers ----

interface TestServer {
  origin: string;
  requests: string[];
  close(): Promise<void>;
}

async function serve(routes: (origin: string) => Record<string, unknown>): Promise<TestServer> {
  const requests: string[] = [];
  let origin = '';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(req.url ?? '');
    const body = routes(origin)[req.url ?? ''];
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    requests,
    close: () => new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
  };
}

function oidcMetadata(issuer: string, extra: Record<string, unknown> = {}) {
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    revocation_endpoint: `${issuer}/revoke`,
    userinfo_endpoint: `${issuer}/userinfo`,
    jwks_uri: `${issuer}/jwks`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    scopes_supported: ['openid', 'email', 'offline_access'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic', 'private_key_jwt'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    authorization_response_iss_parameter_supported: true,
    ...extra,
  };
}

describe('discoverProvider', () => {
  it('maps OpenID Connect discovery metadata', async () => {
    const server = await serve((origin) => ({ '/.well-known/openid-configuration': oidcMetadata(origin) }));
    try {
      const p = await discoverProvider('local-oidc', server.origin, { name: 'Local OIDC' });
      expect(p).toMatchObject({
        id: 'local-oidc',
        name: 'Local OIDC',
        issuer: server.origin,
        authorizationUrl: `${server.origin}/authorize`,
        tokenUrl: `${server.origin}/token`,
        revocationUrl: `${server.origin}/revoke`,
        userinfoUrl: `${server.origin}/userinfo`,
        pkce: true,
        clientAuth: 'client_secret_basic',
        authorizationResponseIss: true,
        profile: { source: 'userinfo', id: 'sub', name: 'name', email: 'email' },
      });
      // profile is not in scopes_supported, so it is left out of the defaults.
      expect(p.scopes.default).toEqual(['openid', 'email']);
      expect(p.scopes.examples).toEqual(['openid', 'email', 'offline_access']);
      expect(p.token.refreshToken).toBe(true);
      expect(server.requests).toEqual(['/.well-known/openid-configuration']);
    } finally {
      await server.close();
    }
  });

  it('reads the profile from the ID token when there is no userinfo endpoint', async () => {
    const server = await serve((origin) => ({
      '/.well-known/openid-configuration': oidcMetadata(origin, {
        userinfo_endpoint: undefined,
        scopes_supported: undefined,
        token_endpoint_auth_methods_supported: ['client_secret_post'],
        code_challenge_methods_supported: ['plain'],
        authorization_response_iss_parameter_supported: undefined,
      }),
    }));
    try {
      const p = await discoverProvider('idt', server.origin);
      expect(p.profile).toEqual({ source: 'id_token', id: 'sub', name: 'name', email: 'email' });
      expect(p.scopes.default).toEqual(['openid', 'email', 'profile']);
      expect(p.clientAuth).toBe('client_secret_post');
      expect(p.pkce).toBe(false);
      expect(p.authorizationResponseIss).toBe(false);
      expect(p.name).toBe(new URL(server.origin).host);
    } finally {
      await server.close();
    }
  });

  it('falls back to RFC 8414 metadata, inserting the well-known segment before the issuer path', async () => {
    const server = await serve((origin) => ({
      '/.well-known/oauth-authorization-server/tenant-a': {
        issuer: `${origin}/tenant-a`,
        authorization_endpoint: `${origin}/tenant-a/authorize`,
        token_endpoint: `${origin}/tenant-a/token`,
        response_types_supported: ['code'],
        scopes_supported: ['read', 'write'],
        grant_types_supported: ['authorization_code'],
      },
    }));
    try {
      const p = await discoverProvider('plain-oauth', `${server.origin}/tenant-a`);
      expect(server.requests).toEqual(['/tenant-a/.well-known/openid-configuration', '/.well-known/oauth-authorization-server/tenant-a']);
      expect(p).toMatchObject({
        issuer: `${server.origin}/tenant-a`,
        authorizationUrl: `${server.origin}/tenant-a/authorize`,
        tokenUrl: `${server.origin}/tenant-a/token`,
        pkce: false,
        clientAuth: 'client_secret_basic',
        authorizationResponseIss: false,
      });
      expect(p.scopes.default).toEqual([]);
      expect(p.scopes.examples).toEqual(['read', 'write']);
      expect(p.profile).toBeUndefined();
      expect(p.revocationUrl).toBeUndefined();
      expect(p.token.refreshToken).toBe(false);
    } finally {
      await server.close();
    }
  });

  it('fails clearly when the metadata names another issuer', async () => {
    const server = await serve(() => ({ '/.well-known/openid-configuration': oidcMetadata('https://elsewhere.example') }));
    try {
      const err = await discoverProvider('mixup', server.origin).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as Error).message).toMatch(/issuer/);
    } finally {
      await server.close();
    }
  });

  it('fails clearly when the metadata lacks the token endpoint', async () => {
    const server = await serve((origin) => ({ '/.well-known/openid-configuration': oidcMetadata(origin, { token_endpoint: undefined }) }));
    try {
      await expect(discoverProvider('broken', server.origin)).rejects.toThrowError(/has no token_endpoint/);
    } finally {
      await server.close();
    }
  });

  it('fails clearly when the server has no metadata at all', async () => {
    const server = await serve(() => ({}));
    try {
      const err = await discoverProvider('nothing', server.origin).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as Error).message).toMatch(/openid-configuration answered HTTP 404/);
      expect((err as Error).message).toMatch(/oauth-authorization-server answered HTTP 404/);
    } finally {
      await server.close();
    }
  });

  it('reports an unreachable issuer', async () => {
    const server = await serve(() => ({}));
    const origin = server.origin;
    await server.close();
    const err = await discoverProvider('gone', origin).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailable);
    expect((err as Error).message).toMatch(/could not reach http:\/\/127\.0\.0\.1:\d+\/\.well-known\/openid-configuration/);
  });

  it('refuses a plain-http issuer that is not loopback unless allowInsecure is set', async () => {
    const err = await discoverProvider('insecure', 'http://idp.example.com').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInput);
    expect((err as InvalidInput).field).toBe('issuer');
    expect((err as Error).message).toMatch(/allowInsecure/);
  });

  it('refuses a malformed id or issuer before any request', async () => {
    await expect(discoverProvider('Not OK', 'https://idp.example.com')).rejects.toThrowError(InvalidInput);
    await expect(discoverProvider('ok', 'not a url')).rejects.toThrowError(InvalidInput);
    await expect(discoverProvider('ok', 'ftp://idp.example.com')).rejects.toThrowError(InvalidInput);
  });
});

describe('filterProviders', () => {
  const all = () => loadBuiltInCatalog().values();

  it('keeps one kind and one category, then ranks the search as searchProviders does', () => {
    const mail = filterProviders(all(), { kind: 'api_key', search: 'mail' });
    expect(mail.every((p) => p.kind === 'api_key')).toBe(true);
    expect(mail.map((p) => p.id)).toEqual(
      searchProviders(all(), 'mail')
        .filter((p) => p.kind === 'api_key')
        .map((p) => p.id),
    );
    expect(mail.map((p) => p.id)).toContain('mailerlite');
    const ai = filterProviders(all(), { category: 'ai' });
    expect(ai.length).toBeGreaterThan(20);
    expect(new Set(ai.map((p) => p.category))).toEqual(new Set(['ai']));
    expect(filterProviders(all(), { kind: 'jwt', category: 'ai' })).toEqual([]);
  });

  it('returns everything by id without a filter, and leaves a custom provider without a category out of a category filter', () => {
    // Every entry, and each alias under its own id.
    expect(filterProviders(all()).length).toBe([...all()].length);
    expect([...all()].filter((p) => !(p as CatalogEntry).aliasOf).length).toBe(files.length);
    const custom = parseProvider(minimal, 'test');
    expect(filterProviders([custom], { kind: 'oauth2' })).toEqual([custom]);
    expect(filterProviders([custom], { category: 'crm' })).toEqual([]);
  });
});

describe('docs/providers.md', () => {
  it('is up to date with the catalog (npx tsx scripts/gen-provider-docs.ts)', () => {
    expect(readFileSync(PROVIDERS_DOC, 'utf8')).toBe(renderProvidersDoc(loadBuiltInCatalog()));
  });

  it('groups providers by kind and category, indexes them all, and lists what is not supported yet with the reason', () => {
    const doc = renderProvidersDoc(loadBuiltInCatalog());
    for (const p of loadBuiltInCatalog().values()) expect(doc, p.id).toContain(`| \`${p.id}\` |`);
    expect(doc).toContain('### API keys: ai');
    expect(doc).toContain('### OAuth 2 authorization code: crm');
    const apiKeys = doc.slice(doc.indexOf('## API keys'), doc.indexOf('## HTTP Basic'));
    expect(apiKeys).toContain('(`openai`)');
    expect(apiKeys).not.toContain('(`mailgun`)'); // a Basic provider
    const unsupported = doc.slice(doc.indexOf('## Not supported yet'));
    expect(unsupported).toMatch(/\| \[Contentful\]\(https:\/\/[^)]+\) \| [^|]*implicit grant/);
    for (const id of ['basecamp', 'withings', 'deezer']) expect(loadBuiltInCatalog().has(id), id).toBe(false);
  });

  it('summarises refresh behaviour', () => {
    expect(refreshSummary(provider('github'))).toBe('no expiry');
    expect(refreshSummary(provider('linkedin'))).toBe('no');
    expect(refreshSummary(provider('xero'))).toBe('rotating');
    expect(refreshSummary(provider('google'))).toBe('yes');
  });
});
