import {
  CredentialRefused,
  FORM_CSRF_FIELD,
  formPageHeaders,
  InvalidInput,
  newFormCsrf,
  postedFields,
  renderCredentialForm,
  sameCsrf,
  withQuery,
  type Broker,
  type Provider,
  type Tags,
} from '@everyauth/core';
import type { Request, Response } from 'express';
import { readCookie } from './binding.js';

const MAX_BODY = 64 * 1024;
const csrfCookie = (serviceId: string) => `everyauth_form_${serviceId.replace(/[^a-z0-9_]/g, '_')}`;

/** Whose credential the form stores, and where the user goes once it is stored. */
export interface FormTarget {
  serviceId: string;
  userId: string;
  tenantId?: string;
  tags?: Tags;
  finishedUrl?: string;
}

/**
 * The embedded form flow at authorize()'s mount point: GET shows the provider's fields, POST
 * checks them with the provider's test request and stores them. The user id comes from the app's
 * own mapping on both requests, never from the form. Cross-site posts are refused by a
 * double-submit token (SameSite=Strict cookie + hidden field).
 */
export async function serveCredentialForm(
  broker: Broker,
  provider: Provider,
  target: FormTarget,
  req: Request,
  res: Response,
): Promise<boolean> {
  const action = req.originalUrl.split('?', 1)[0]!;
  const secure = req.protocol === 'https';
  const cookieName = csrfCookie(target.serviceId);
  const show = (status: number, csrf: string, values?: Record<string, string>, error?: string) =>
    res.status(status).set(formPageHeaders()).send(renderCredentialForm({ provider, action, csrf, values, error }));

  if (req.method === 'GET') {
    const csrf = newFormCsrf();
    res.cookie(cookieName, csrf, { httpOnly: true, sameSite: 'strict', secure, path: action });
    show(200, csrf);
    return true;
  }
  const body = await readForm(req);
  const csrf = readCookie(req, cookieName);
  if (!sameCsrf(csrf, body.get(FORM_CSRF_FIELD) ?? undefined)) {
    res
      .status(403)
      .set(formPageHeaders())
      .send(
        '<!doctype html><title>Form expired</title><p>This form expired or was not sent from this site. Reload the page and try again.</p>',
      );
    return true;
  }
  const fields = postedFields(provider, body);
  try {
    await broker.putIdentity({ ...target, fields });
  } catch (err) {
    if (!(err instanceof CredentialRefused || err instanceof InvalidInput)) throw err;
    // The form again, with the provider's words; only non-secret values are filled back in.
    show(400, csrf!, fields, err instanceof CredentialRefused ? err.providerMessage : err.message);
    return true;
  }
  res.clearCookie(cookieName, { httpOnly: true, sameSite: 'strict', secure, path: action });
  if (target.finishedUrl) {
    res.redirect(303, withQuery(target.finishedUrl, { userId: target.userId, tenantId: target.tenantId, serviceId: target.serviceId }));
    return true;
  }
  res.status(200).set(formPageHeaders()).send('<!doctype html><title>Connected</title><p>Connected. You can close this window.</p>');
  return true;
}

/** The urlencoded body, whether or not the app mounted express.urlencoded(). */
async function readForm(req: Request): Promise<URLSearchParams> {
  if (req.body && typeof req.body === 'object' && Object.keys(req.body as object).length > 0) {
    return new URLSearchParams(
      Object.entries(req.body as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'),
    );
  }
  if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    throw new InvalidInput('The form must be posted as application/x-www-form-urlencoded.', 'body');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new InvalidInput(`The form is larger than ${MAX_BODY} bytes.`, 'body');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
