import { describe, expect, it } from 'vitest';
import { loadBuiltInCatalog, type CatalogEntry, type Provider } from '../src/catalog/index.js';
import { CATEGORIES } from '../src/catalog/categories.js';

/**
 * Cross-field checks on every built-in entry, beyond what the schema can say about one field:
 * the endpoints belong to the organisation whose API the credential is for, the default scopes are
 * among the entry's own scopes, and every URL a credential may travel to is https.
 */

// Aliases (Fusebit's `sfdc`, say) are other ids for entries checked here under their own id.
const catalog = [...loadBuiltInCatalog().values()].filter((p) => !(p as CatalogEntry).aliasOf);

const ENTRA = { domains: ['microsoftonline.com'], why: 'the Microsoft identity platform (Entra ID) signs in for every Microsoft API' };

/**
 * Providers whose authorization server sits on another registrable domain than their API, each with
 * the domains allowed besides the API's and why. Anything else on a foreign domain is a mistake
 * (or a new exception to write down here).
 */
const FOREIGN_AUTH_DOMAINS: Record<string, { domains: string[]; why: string }> = {
  adobe: { domains: ['adobelogin.com'], why: 'Adobe IMS signs in for the adobe.io APIs' },
  'adobe-server': { domains: ['adobelogin.com'], why: 'Adobe IMS issues the tokens for the adobe.io APIs' },
  battlenet: { domains: ['battle.net'], why: 'Battle.net accounts, Blizzard game APIs' },
  brex: { domains: ['brex.com'], why: 'sign-in on brex.com, API on brexapis.com' },
  'constant-contact': { domains: ['constantcontact.com'], why: 'sign-in on constantcontact.com, API on cc.email' },
  deel: { domains: ['deel.com'], why: 'the app on deel.com, the API on letsdeel.com' },
  dropbox: { domains: ['dropbox.com'], why: 'consent on dropbox.com, API on dropboxapi.com' },
  'epic-games': { domains: ['epicgames.com'], why: 'Epic accounts on epicgames.com, Epic Online Services on epicgames.dev' },
  eventbrite: { domains: ['eventbrite.com'], why: 'sign-in on eventbrite.com, API on eventbriteapi.com' },
  google: { domains: ['google.com'], why: 'Google accounts on google.com, APIs on googleapis.com' },
  'google-ads': { domains: ['google.com'], why: 'Google accounts on google.com, APIs on googleapis.com' },
  'google-analytics': { domains: ['google.com'], why: 'Google accounts on google.com, APIs on googleapis.com' },
  youtube: { domains: ['google.com'], why: 'Google accounts on google.com, APIs on googleapis.com' },
  gotomeeting: { domains: ['logmeininc.com'], why: 'GoTo (formerly LogMeIn) sign-in, API on getgo.com' },
  highlevel: { domains: ['gohighlevel.com'], why: 'the marketplace on gohighlevel.com, the API on leadconnectorhq.com' },
  hubspot: { domains: ['hubspot.com'], why: 'consent in the HubSpot app, API on hubapi.com' },
  'hubspot-marketing': { domains: ['hubspot.com'], why: 'consent in the HubSpot app, API on hubapi.com' },
  intercom: { domains: ['intercom.com'], why: 'consent in the Intercom app, API on intercom.io' },
  microsoft: ENTRA,
  'microsoft-personal': ENTRA,
  'microsoft-graph-app': ENTRA,
  'microsoft-azure': ENTRA,
  'microsoft-azure-app': ENTRA,
  'microsoft-devops': ENTRA,
  'microsoft-dynamics': ENTRA,
  'microsoft-dynamics-app': ENTRA,
  'sage-accounting': { domains: ['sageone.com'], why: 'Sage ID sign-in on sageone.com, API on sage.com' },
  stackexchange: { domains: ['stackoverflow.com'], why: 'consent on stackoverflow.com, the API on api.stackexchange.com' },
  tiktok: { domains: ['tiktok.com'], why: 'consent on tiktok.com, API on tiktokapis.com' },
};

/** A URL with each `{variable}` that has a default (GitHub's `{apiUrl}`) replaced by it: the URL a service uses unless it says otherwise. */
const withDefaults = (p: Provider, url: string) => url.replace(/\{(\w+)\}/g, (whole, name: string) => p.variables[name]?.default ?? whole);

/** Providers without api.baseUrls, and why. */
const NO_API_HOSTS: Record<string, string> = {
  salesforce: 'the API host is each org’s instance_url, returned with the tokens',
  'salesforce-sandbox': 'the API host is each org’s instance_url, returned with the tokens',
};

/** Second-level labels under which a country code top-level domain registers names (example.co.uk). */
const SECOND_LEVEL = new Set(['co', 'com', 'net', 'org', 'gov', 'ac']);

/** The registrable domain ("organisation") of a template URL's host: `api.zoho.com.au` → `zoho.com.au`. */
export function organisationOf(url: string): string {
  const host = /^https?:\/\/([^/?#:]+)/.exec(url)?.[1] ?? '';
  const labels = host.split('.');
  const tld = labels.at(-1) ?? '';
  const take = tld.length === 2 && SECOND_LEVEL.has(labels.at(-2) ?? '') ? 3 : 2;
  return labels.slice(-take).join('.');
}

function endpoints(p: Provider): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const field of ['issuer', 'authorizationUrl', 'tokenUrl', 'refreshUrl', 'revocationUrl', 'userinfoUrl'] as const) {
    const value = p[field];
    if (value !== undefined) out.push([field, value]);
  }
  if (p.profile?.url) out.push(['profile.url', p.profile.url]);
  if (p.oauth1)
    for (const [field, value] of Object.entries(p.oauth1)) if (field.endsWith('Url')) out.push([`oauth1.${field}`, value as string]);
  if (p.jwt?.installationTokenUrl) out.push(['jwt.installationTokenUrl', p.jwt.installationTokenUrl]);
  return out;
}

describe('catalog consistency', () => {
  it('has at least 300 providers', () => {
    expect(catalog.length).toBeGreaterThanOrEqual(300);
  });

  it('gives every built-in entry a category', () => {
    expect(catalog.filter((p) => !p.category).map((p) => p.id)).toEqual([]);
    expect(new Set(catalog.map((p) => p.category))).toEqual(new Set(CATEGORIES));
  });

  it('names the API hosts of every entry, except where they are only known per account', () => {
    const missing = catalog.filter((p) => p.api.baseUrls.length === 0 && !(p.id in NO_API_HOSTS)).map((p) => p.id);
    expect(missing).toEqual([]);
    for (const id of Object.keys(NO_API_HOSTS)) expect(catalog.find((p) => p.id === id)?.api.baseUrls, id).toEqual([]);
  });

  it('sends credentials only over https: API hosts and test requests', () => {
    const insecure = catalog.flatMap((p) =>
      [...p.api.baseUrls, ...(p.test ? [p.test.url] : [])]
        .map((u) => withDefaults(p, u))
        .filter((u) => !u.startsWith('https://'))
        .map((u) => `${p.id}: ${u}`),
    );
    expect(insecure).toEqual([]);
  });

  it('keeps every endpoint on the organisation of its API hosts, or on a domain listed as an exception', () => {
    const stray: string[] = [];
    for (const p of catalog) {
      if (p.api.baseUrls.length === 0) continue;
      const allowed = new Set([...p.api.baseUrls.map(organisationOf), ...(FOREIGN_AUTH_DOMAINS[p.id]?.domains ?? [])]);
      for (const [field, url] of endpoints(p)) {
        if (!allowed.has(organisationOf(url))) stray.push(`${p.id}.${field}: ${organisationOf(url)} not in ${[...allowed].join(', ')}`);
      }
    }
    expect(stray).toEqual([]);
  });

  it('lists no exception that is not needed', () => {
    const unneeded = Object.entries(FOREIGN_AUTH_DOMAINS).flatMap(([id, { domains }]) => {
      const p = catalog.find((c) => c.id === id);
      if (!p) return [`${id}: no such provider`];
      const used = new Set(endpoints(p).map(([, url]) => organisationOf(url)));
      return domains.filter((d) => !used.has(d)).map((d) => `${id}: ${d}`);
    });
    expect(unneeded).toEqual([]);
  });

  it('asks by default only for scopes the entry lists', () => {
    const unknown = catalog.flatMap((p) =>
      p.scopes.examples.length === 0 ? [] : p.scopes.default.filter((s) => !p.scopes.examples.includes(s)).map((s) => `${p.id}: ${s}`),
    );
    expect(unknown).toEqual([]);
  });

  it('has an authorization-code shape only on the oauth2 kind, and a test request on every form kind', () => {
    for (const p of catalog) {
      if (p.kind !== 'oauth2') expect(p.authorizationUrl, p.id).toBeUndefined();
      if (p.kind === 'api_key' || p.kind === 'basic') expect(p.test, p.id).toBeDefined();
    }
  });

  it('has unique names', () => {
    const seen = new Map<string, string>();
    const dupes: string[] = [];
    for (const p of catalog) {
      const other = seen.get(p.name.toLowerCase());
      if (other) dupes.push(`${other} / ${p.id}: ${p.name}`);
      seen.set(p.name.toLowerCase(), p.id);
    }
    expect(dupes).toEqual([]);
  });
});
