import { z } from 'zod';

/** Every kind of credential a provider may declare. `oauth2` is the authorization-code flow. */
export const KINDS = ['oauth2', 'oauth2_client_credentials', 'api_key', 'basic', 'oauth1', 'jwt'] as const;
/** One of {@link KINDS}. */
export type Kind = (typeof KINDS)[number];

const fieldName = z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]*$/, 'letters, digits and _ , starting with a letter');

/** A `{field}` template: a literal with placeholders filled from the form's fields. */
const template = z.string().max(512);

/** One input of an `api_key` or `basic` form. */
export const FieldSchema = z.object({
  name: fieldName,
  label: z.string().min(1),
  /** Secret fields are sealed, never echoed back, and rendered as password inputs. */
  secret: z.boolean().default(true),
  /** May be left empty (GitHub's impersonation subject, say). */
  optional: z.boolean().default(false),
  /** A text area rather than one line (a PEM key, a service-account JSON). */
  multiline: z.boolean().default(false),
  /** A regular expression the whole value must match (anchored). */
  pattern: z
    .string()
    .refine((p) => {
      try {
        return new RegExp(p) instanceof RegExp;
      } catch {
        return false;
      }
    }, 'a valid regular expression')
    .optional(),
  /** Where in the provider's console the user finds the value. */
  help: z.string().optional(),
});

/**
 * Where the credential goes on each request: headers (`Authorization: Bearer {apiKey}`, `X-Api-Key`),
 * query parameters, or HTTP Basic (RFC 7617) from two templates.
 */
export const ApplySchema = z
  .object({
    headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/), template).default({}),
    query: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), template).default({}),
    basic: z.object({ username: template, password: template }).optional(),
  })
  .refine((a) => a.basic || Object.keys(a.headers).length + Object.keys(a.query).length > 0, 'apply needs headers, query or basic');

/**
 * The request that checks a typed-in credential before anything is stored. It may only go to a
 * host of `api.baseUrls`; a non-2xx answer refuses the credential with the provider's message.
 */
export const TestRequestSchema = z.object({
  method: z.enum(['GET', 'POST']).default('GET'),
  /** May use `{variable}` placeholders, filled from the service's variables and non-secret fields. */
  url: z.string().regex(/^https?:\/\/[^\s]+$/, 'an absolute URL'),
  /** Where the provider's own error message sits in a refusal's JSON body. */
  errorPath: z.string().optional(),
  /** Where the account's id, name and email sit in the successful answer. */
  profile: z.object({ id: z.string(), name: z.string().optional(), email: z.string().optional() }).optional(),
});

/** OAuth 1.0a (RFC 5849) endpoints and signature method. */
export const OAuth1Schema = z.object({
  requestTokenUrl: z.string().url(),
  authorizeUrl: z.string().url(),
  accessTokenUrl: z.string().url(),
  signatureMethod: z.enum(['HMAC-SHA1', 'RSA-SHA1']).default('HMAC-SHA1'),
  /** Extra query parameters on the authorize redirect (Trello: name, expiration, scope). */
  authorizeParams: z.record(z.string(), z.string()).default({}),
});

/** Service-account assertions: Google's JWT bearer grant (RFC 7523) or a GitHub App installation token. */
export const JwtSchema = z.object({
  flavor: z.enum(['google_service_account', 'github_app']),
  /** GitHub: the installation access token URL, with `{installationId}`, the form field. */
  installationTokenUrl: z
    .string()
    .regex(/^https?:\/\/[^\s]+$/)
    .optional(),
  /** Lifetime of the signed assertion, seconds (Google: at most 3600; GitHub: at most 600). */
  assertionTtl: z.number().int().min(60).max(3600).default(600),
});

/** Placeholders of a template string. */
export const placeholders = (text: string | undefined): string[] => [...(text ?? '').matchAll(/\{([^}]*)\}/g)].map((m) => m[1] ?? '');

/** Placeholders in a URL template's scheme and authority: those that choose the host it goes to. */
export const hostPlaceholders = (url: string): string[] => placeholders(/^(?:https?:\/\/)?[^/?#]*/.exec(url)![0]);

/**
 * Whether `variables` (the service's own) fill every placeholder that chooses the hosts of `urls`,
 * and there is one: then the service's operator chose the hosts, not the catalog or a user's
 * typed value, and they may be on its private network (proxy/address.ts).
 */
export function variablesChooseHosts(urls: readonly string[], variables: Record<string, string>): boolean {
  const names = urls.flatMap(hostPlaceholders);
  return names.length > 0 && names.every((name) => Object.hasOwn(variables, name));
}

/** The parts of a provider whose URLs may hold `{name}` placeholders. */
export interface TemplatedUrls {
  issuer?: string | undefined;
  authorizationUrl?: string | undefined;
  tokenUrl?: string | undefined;
  refreshUrl?: string | undefined;
  revocationUrl?: string | undefined;
  registrationUrl?: string | undefined;
  userinfoUrl?: string | undefined;
  profile?: { url?: string | undefined } | undefined;
  api: { baseUrls: readonly string[] };
  test?: { url: string } | undefined;
  jwt?: { installationTokenUrl?: string | undefined } | undefined;
  fields: readonly { name: string }[];
}

/**
 * The placeholders of a provider's URLs, split by where their values come from. Those of the
 * endpoints (issuer … userinfoUrl, profile.url) are the service's variables: the flow that uses them
 * runs before any form is filled in. Those of the API's URLs (api.baseUrls, test.url, the GitHub App
 * token URL) are the value typed into the form where a field has that name (a Zendesk subdomain),
 * else a variable. The one rule behind the catalog's checks and the URL resolution.
 */
export function splitPlaceholders(p: TemplatedUrls): { variables: Set<string>; fields: Set<string> } {
  const variables = new Set(
    [p.issuer, p.authorizationUrl, p.tokenUrl, p.refreshUrl, p.revocationUrl, p.registrationUrl, p.userinfoUrl, p.profile?.url].flatMap(
      placeholders,
    ),
  );
  const fieldNames = new Set(p.fields.map((f) => f.name));
  const fields = new Set<string>();
  for (const name of [...p.api.baseUrls, p.test?.url, p.jwt?.installationTokenUrl].flatMap(placeholders)) {
    (fieldNames.has(name) ? fields : variables).add(name);
  }
  return { variables, fields };
}
