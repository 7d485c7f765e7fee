import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  CredentialRefused,
  FORM_CSRF_FIELD,
  formPageHeaders,
  InvalidInput,
  isFormKind,
  newFormCsrf,
  postedFields,
  renderCredentialForm,
  sameCsrf,
  withQuery,
  type Tags,
} from '@everyauth/core';
import type { ServerContext } from '../context.js';

/** What a form link carries, sealed by the vault: who the credential is for and where the user goes next. */
interface FormTicket {
  serviceId: string;
  userId: string;
  tenantId?: string;
  tags?: Tags;
  finishedUrl?: string;
  /** Expiry, epoch ms. */
  e: number;
}

const TICKET_AAD = 'hosted-form';
const FORM_PATH = '/v1/sessions/form';
const CSRF_COOKIE = 'everyauth_form';
const TTL_MS = 10 * 60_000;

/** One cookie of a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/**
 * For a service whose provider takes a form (`api_key`, `basic`, `jwt`), POST /v1/sessions hands
 * out a link to the form instead of the provider's authorization URL; undefined for other kinds.
 */
export async function formSession(
  ctx: ServerContext,
  input: { serviceId: string; userId: string; tenantId?: string; tags?: Tags; finishedUrl?: string },
): Promise<{ url: string; expiresAt: string } | undefined> {
  const service = await ctx.broker.getService(input.serviceId);
  if (!isFormKind((await ctx.broker.getProvider(service.providerId)).kind)) return undefined;
  const finishedUrl = input.finishedUrl === undefined ? undefined : ctx.broker.checkFinishedUrl(input.finishedUrl);
  const e = Date.now() + TTL_MS;
  const ticket: FormTicket = { ...input, finishedUrl, e };
  return {
    url: `${ctx.publicUrl}${FORM_PATH}?t=${ctx.vault.seal(JSON.stringify(ticket), TICKET_AAD)}`,
    expiresAt: new Date(e).toISOString(),
  };
}

/**
 * The hosted credential form: GET shows the provider's fields, POST checks them with the
 * provider's test request and stores them. Cross-site posts are refused by a double-submit token
 * (a SameSite=Strict cookie and a hidden field).
 */
export function hostedFormRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const secure = ctx.publicUrl.startsWith('https:');
  const cookie = (value: string, maxAge: number) =>
    `${CSRF_COOKIE}=${value}; Path=${FORM_PATH}; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;

  const open = (sealed: string | undefined): FormTicket | undefined => {
    try {
      const ticket = JSON.parse(ctx.vault.open(sealed ?? '', TICKET_AAD)) as FormTicket;
      return ticket.e > Date.now() ? ticket : undefined;
    } catch {
      return undefined;
    }
  };
  const message = (reply: FastifyReply, status: number, text: string) =>
    reply.code(status).headers(formPageHeaders()).send(`<!doctype html><meta charset="utf-8"><title>EveryAuth</title><p>${text}</p>`);
  const show = async (
    reply: FastifyReply,
    status: number,
    sealed: string,
    ticket: FormTicket,
    csrf: string,
    values?: Record<string, string>,
    error?: string,
  ) => {
    const provider = await ctx.broker.getProvider((await ctx.broker.getService(ticket.serviceId)).providerId);
    return reply
      .code(status)
      .headers(formPageHeaders(ticket.finishedUrl))
      .send(renderCredentialForm({ provider, action: FORM_PATH, csrf, hidden: { t: sealed }, values, error }));
  };

  app.get<{ Querystring: { t: string } }>(
    FORM_PATH,
    {
      config: { access: 'public' },
      schema: {
        tags: ['authorization'],
        summary: 'Hosted: the credential form of an api_key, basic or jwt service',
        querystring: { type: 'object', required: ['t'], properties: { t: { type: 'string', maxLength: 8192 } } },
      },
    },
    async (request, reply) => {
      const ticket = open(request.query.t);
      if (!ticket) return message(reply, 400, 'This link expired or was not made by this server. Start again from the application.');
      const csrf = newFormCsrf();
      reply.header('set-cookie', cookie(csrf, Math.floor((ticket.e - Date.now()) / 1000)));
      return show(reply, 200, request.query.t, ticket, csrf);
    },
  );

  app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) =>
      done(null, new URLSearchParams(body as string)),
    );
    scope.post<{ Body: URLSearchParams }>(
      FORM_PATH,
      { config: { access: 'public' }, schema: { tags: ['authorization'], summary: 'Hosted: the credential form posted' } },
      async (request, reply) => {
        const body = request.body instanceof URLSearchParams ? request.body : new URLSearchParams();
        const sealed = body.get('t') ?? '';
        const ticket = open(sealed);
        if (!ticket) return message(reply, 400, 'This form expired. Start again from the application.');
        const csrf = readCookie(request.headers.cookie, CSRF_COOKIE);
        if (!sameCsrf(csrf, body.get(FORM_CSRF_FIELD) ?? undefined)) {
          return message(reply, 403, 'This form was not sent from this page. Reload it and try again.');
        }
        const { e: _expiry, finishedUrl, ...target } = ticket;
        const provider = await ctx.broker.getProvider((await ctx.broker.getService(ticket.serviceId)).providerId);
        const fields = postedFields(provider, body);
        try {
          await ctx.broker.putIdentity({ ...target, fields });
        } catch (err) {
          if (!(err instanceof CredentialRefused || err instanceof InvalidInput)) throw err;
          return show(reply, 400, sealed, ticket, csrf!, fields, err instanceof CredentialRefused ? err.providerMessage : err.message);
        }
        reply.header('set-cookie', cookie('', 0));
        if (!finishedUrl) return message(reply, 200, 'Connected. You can close this window and return to the application.');
        return reply.redirect(
          withQuery(finishedUrl, { userId: ticket.userId, tenantId: ticket.tenantId, serviceId: ticket.serviceId }),
          303,
        );
      },
    );
  });
}
