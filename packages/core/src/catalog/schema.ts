import { z } from 'zod';
import { CATEGORIES } from './categories.js';
import { ApplySchema, FieldSchema, JwtSchema, KINDS, OAuth1Schema, TestRequestSchema, placeholders, splitPlaceholders } from './kinds.js';

/** A dotted path into a JSON document, e.g. `authed_user.access_token` or `data.email`. */
const jsonPath = z.string().regex(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/, 'a dotted path such as data.email');

/**
 * An absolute URL that may hold `{variable}` placeholders: in the host (`https://{subdomain}.zendesk.com`),
 * in the path, or as the whole origin (`{baseUrl}/oauth/authorize`, for self-hosted installs).
 */
const templateUrl = z
  .string()
  .regex(/^(https?:\/\/[^\s]+|\{[a-zA-Z][a-zA-Z0-9_]*\}(\/[^\s]*)?)$/, 'an absolute URL')
  .describe('absolute URL, may contain {variable} placeholders');

/**
 * The URL fields a service may override with a value of the same name (`tokenUrl=https://…`), for
 * staging or self-hosted installs; `profileUrl` overrides `profile.url`. A catalog variable may not
 * take one of these names.
 */
export const ENDPOINT_FIELDS = [
  'issuer',
  'authorizationUrl',
  'tokenUrl',
  'refreshUrl',
  'revocationUrl',
  'registrationUrl',
  'userinfoUrl',
  'profileUrl',
] as const;
export type EndpointField = (typeof ENDPOINT_FIELDS)[number];

/**
 * How an API says it refused the credential when it does not answer 401 (RFC 6750 §3.1): a status
 * and a JSON error field with known values. Graph API's `{"error":{"code":190}}` with 400, Stack
 * Exchange's `error_name: invalid_access_token` with 400, Slack's `error: token_expired` with 200.
 * The proxy treats such an answer as a 401: one renewal and one resend, then `needs_reauth`.
 */
export const AuthFailureSchema = z.object({
  /** The statuses it comes with; 401 always counts and is not listed. */
  status: z
    .array(
      z
        .number()
        .int()
        .min(200)
        .max(599)
        .refine((s) => s !== 401, '401 always counts as an auth failure; list only the other statuses'),
    )
    .min(1),
  /** Where the error sits in the JSON body. */
  field: jsonPath,
  /** The values of that field that mean the credential was refused (an expired, revoked or unknown token). */
  values: z.array(z.union([z.string().min(1), z.number()])).min(1),
});
export type AuthFailure = z.infer<typeof AuthFailureSchema>;

const variableName = z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]*$/);

const ProviderObject = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes'),
  name: z.string().min(1),
  /** The provider's own OAuth documentation. */
  docs: z.url(),
  /** What the provider is for; see categories.ts. Custom providers may leave it out. */
  category: z.enum(CATEGORIES).optional(),
  /** How a credential is obtained and applied; see docs/kinds.md. */
  kind: z.enum(KINDS).default('oauth2'),
  /** OpenID Connect / RFC 8414 issuer. Used for RFC 9207 `iss` checks and ID token validation. */
  issuer: templateUrl.optional(),
  /** Required for `oauth2`. */
  authorizationUrl: templateUrl.optional(),
  /** Required for `oauth2`, `oauth2_client_credentials` and Google-style `jwt`. */
  tokenUrl: templateUrl.optional(),
  /** Where refresh-token requests go when that is not `tokenUrl` (Figma: /v1/oauth/refresh). */
  refreshUrl: templateUrl.optional(),
  revocationUrl: templateUrl.optional(),
  /** RFC 7591 client registration endpoint, where the issuer offers dynamic registration. */
  registrationUrl: templateUrl.optional(),
  userinfoUrl: templateUrl.optional(),
  /** Whether the provider sends `iss` in the authorization response (RFC 9207). */
  authorizationResponseIss: z.boolean().default(false),
  scopes: z
    .object({
      default: z.array(z.string()).default([]),
      separator: z.enum([' ', ',', '+']).default(' '),
      /** The authorization request parameter that carries the scopes when it is not `scope` (Slack user tokens: `user_scope`). */
      param: z
        .string()
        .regex(/^[a-z][a-z0-9_]*$/)
        .optional(),
      /** Scopes worth knowing about, for documentation and `provider get`. */
      examples: z.array(z.string()).default([]),
    })
    .prefault({}),
  pkce: z.boolean().default(true),
  clientAuth: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
  /** Extra query parameters on the authorization request, e.g. Google's access_type=offline. */
  authorizationParams: z.record(z.string(), z.string()).default({}),
  /** Extra form parameters on the token requests. */
  tokenParams: z.record(z.string(), z.string()).default({}),
  /** How the token requests are encoded when it is not RFC 6749's form body. */
  tokenRequest: z
    .object({
      /** `json`: the same parameters as a JSON object (Square's ObtainToken). */
      encoding: z.enum(['form', 'json']).default('form'),
    })
    .prefault({}),
  /**
   * The name the provider gives the client identifier in the authorization and token requests when
   * it is not RFC 6749's `client_id` (TikTok: `client_key`).
   */
  clientIdParam: z
    .string()
    .regex(/^[a-z][a-z0-9_]*$/)
    .default('client_id'),
  token: z
    .object({
      /** Where the token set sits in the token response when it is not at the top (Slack: authed_user). */
      path: jsonPath.optional(),
      /** The provider issues a new refresh token on every refresh. */
      refreshTokenRotates: z.boolean().default(false),
      /** The provider issues refresh tokens at all. */
      refreshToken: z.boolean().default(true),
      /** Access tokens never expire unless revoked (GitHub OAuth apps, Slack without rotation). */
      expires: z.boolean().default(true),
      /** Token type the provider returns, when it is not `bearer` (case-insensitive). */
      type: z.string().default('bearer'),
      /**
       * The Authorization scheme API calls (and the profile request) use with the access token, when
       * it is not RFC 6750's `Bearer`: Mailchimp's `OAuth`, Zoho's `Zoho-oauthtoken`.
       */
      scheme: z
        .string()
        .regex(/^[A-Za-z][A-Za-z0-9._~+/-]*$/, 'an HTTP auth-scheme token (RFC 9110 §11.1)')
        .default('Bearer'),
    })
    .prefault({}),
  profile: z
    .object({
      /** Where the account's identity is read: the ID token, the userinfo endpoint, the token response, or another URL. */
      source: z.enum(['id_token', 'userinfo', 'token_response', 'url']),
      url: templateUrl.optional(),
      id: jsonPath,
      name: jsonPath.optional(),
      email: jsonPath.optional(),
    })
    .optional(),
  /**
   * The API's base URLs: the only URLs a credential (a test request, the proxy's `broker.fetch` and
   * `/v1/proxy`) is sent to. A proxied request path is resolved against the first one.
   */
  api: z
    .object({
      baseUrls: z.array(templateUrl.refine((u) => !/[?#]/.test(u), 'a base URL without query or fragment')).default([]),
      authFailure: AuthFailureSchema.optional(),
    })
    .prefault({}),
  /** The form's inputs (`api_key`, `basic`, `jwt`). */
  fields: z.array(FieldSchema).default([]),
  /** Where the credential goes on a request (`api_key`, `basic`). */
  apply: ApplySchema.optional(),
  /** The request that checks a typed-in credential before it is stored (`api_key`, `basic`). */
  test: TestRequestSchema.optional(),
  oauth1: OAuth1Schema.optional(),
  jwt: JwtSchema.optional(),
  /**
   * Refresh-token lifetime facts, where the provider documents them. `idleDays`: a refresh token
   * unused for this many days stops working, so the keep-alive renews identities before then.
   */
  refreshToken: z.object({ idleDays: z.number().positive().max(3650) }).optional(),
  /** Template variables used by the URLs above, e.g. `subdomain` for `https://{subdomain}.zendesk.com`. */
  variables: z
    .record(
      variableName,
      z.object({
        description: z.string(),
        example: z.string().optional(),
        /** The value when a service gives none (gitlab.com for GitLab's `{baseUrl}`); without one, a service must. */
        default: z.string().optional(),
      }),
    )
    .default({}),
  notes: z.string().optional(),
});

/** The catalog schema: one provider, whatever its kind. */
export const ProviderSchema = ProviderObject.superRefine((p, ctx) => {
  const used = splitPlaceholders(p).variables;
  for (const name of used) {
    if (!(name in p.variables)) {
      ctx.addIssue({ code: 'custom', message: `URL placeholder {${name}} is not declared in variables`, path: ['variables'] });
    }
  }
  for (const name of Object.keys(p.variables)) {
    if ((ENDPOINT_FIELDS as readonly string[]).includes(name)) {
      ctx.addIssue({ code: 'custom', message: `variable ${name} has the name of an endpoint override`, path: ['variables', name] });
    }
    if (!used.has(name)) {
      ctx.addIssue({ code: 'custom', message: `variable ${name} is declared but no URL uses it`, path: ['variables', name] });
    }
  }
  if (p.profile?.source === 'url' && !p.profile.url) {
    ctx.addIssue({ code: 'custom', message: 'profile.source "url" needs profile.url', path: ['profile', 'url'] });
  }
  if (p.profile?.source === 'userinfo' && !p.userinfoUrl) {
    ctx.addIssue({ code: 'custom', message: 'profile.source "userinfo" needs userinfoUrl', path: ['userinfoUrl'] });
  }
  checkKind(p, ctx);
});

type Parsed = z.infer<typeof ProviderObject>;

/** What each kind needs declared, so a catalog file cannot describe a flow that cannot run. */
function checkKind(p: Parsed, ctx: z.RefinementCtx): void {
  const need = (ok: unknown, path: string, message: string) => ok || ctx.addIssue({ code: 'custom', message, path: [path] });
  const kind = p.kind;
  if (kind === 'oauth2') {
    need(p.authorizationUrl, 'authorizationUrl', 'kind "oauth2" needs authorizationUrl');
    need(p.tokenUrl, 'tokenUrl', 'kind "oauth2" needs tokenUrl');
  }
  if (kind === 'oauth2_client_credentials') need(p.tokenUrl, 'tokenUrl', `kind "${kind}" needs tokenUrl`);
  if (kind === 'api_key' || kind === 'basic') {
    need(p.fields.length > 0, 'fields', `kind "${kind}" needs the form's fields`);
    need(p.apply, 'apply', `kind "${kind}" needs apply: where the credential goes on a request`);
    need(p.test, 'test', `kind "${kind}" needs a test request that checks the credential before it is stored`);
    need(kind !== 'basic' || p.apply?.basic, 'apply', 'kind "basic" needs apply.basic');
  }
  if (kind === 'oauth1') need(p.oauth1, 'oauth1', 'kind "oauth1" needs the oauth1 endpoints');
  if (kind === 'jwt') need(p.jwt, 'jwt', 'kind "jwt" needs the jwt section');
  if (kind !== 'oauth2' && kind !== 'oauth2_client_credentials') {
    need(p.api.baseUrls.length > 0, 'api', `kind "${kind}" needs api.baseUrls: the hosts its credential may be sent to`);
  }
  const fields = new Set(p.fields.map((f) => f.name));
  const templates = [...Object.values(p.apply?.headers ?? {}), ...Object.values(p.apply?.query ?? {})];
  if (p.apply?.basic) templates.push(p.apply.basic.username, p.apply.basic.password);
  for (const name of templates.flatMap(placeholders)) {
    need(fields.has(name), 'apply', `apply uses {${name}}, which is not one of the fields`);
  }
  if (p.test) {
    const hosts = p.api.baseUrls.map((u) => hostOf(u));
    need(hosts.includes(hostOf(p.test.url)), 'test', `test.url must be on a host of api.baseUrls (${hosts.join(', ') || 'none'})`);
  }
}

/** The host part of a template URL, placeholders left in. */
const hostOf = (url: string) => /^https?:\/\/([^/?#]+)/.exec(url)?.[1] ?? '';

/** A catalog entry as written in a data file. */
export type ProviderInput = z.input<typeof ProviderSchema>;
/** A validated catalog entry, defaults filled in. */
export type Provider = z.output<typeof ProviderSchema>;
