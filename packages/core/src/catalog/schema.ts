import { z } from 'zod';

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
  'userinfoUrl',
  'profileUrl',
] as const;
export type EndpointField = (typeof ENDPOINT_FIELDS)[number];

const variableName = z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]*$/);

export const ProviderSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes'),
    name: z.string().min(1),
    /** The provider's own OAuth documentation. */
    docs: z.url(),
    /** OpenID Connect / RFC 8414 issuer. Used for RFC 9207 `iss` checks and ID token validation. */
    issuer: templateUrl.optional(),
    authorizationUrl: templateUrl,
    tokenUrl: templateUrl,
    /** Where refresh-token requests go when that is not `tokenUrl` (Figma: /v1/oauth/refresh). */
    refreshUrl: templateUrl.optional(),
    revocationUrl: templateUrl.optional(),
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
  })
  .superRefine((p, ctx) => {
    const used = new Set<string>();
    for (const url of [p.issuer, p.authorizationUrl, p.tokenUrl, p.refreshUrl, p.revocationUrl, p.userinfoUrl, p.profile?.url]) {
      for (const m of url?.matchAll(/\{([^}]*)\}/g) ?? []) used.add(m[1] ?? '');
    }
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
  });

/** A catalog entry as written in a data file. */
export type ProviderInput = z.input<typeof ProviderSchema>;
/** A validated catalog entry, defaults filled in. */
export type Provider = z.output<typeof ProviderSchema>;
