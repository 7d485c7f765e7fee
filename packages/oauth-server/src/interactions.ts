/**
 * The sign-in and consent pages, in place of oidc-provider's development ones (which it says are
 * not for production): GET interaction/:uid shows the page the pending prompt needs; POST …/login,
 * …/consent and …/abort answer it. Any user name signs in, with no password.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { readBody, sendHtml } from './http.js';
import { consentPage, errorPage, loginPage } from './pages.js';

/** Answers the request if it is an interaction URL (path relative to the mount point); false otherwise. */
export type InteractionHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/** The interaction handler of `provider`, mounted at `basePath`; any other URL is left to oidc-provider. */
export function interactionHandlers(provider: Provider, basePath: string): InteractionHandler {
  return (req, res) => {
    const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|consent|abort))?$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
    if (!match) return false;
    const [, uid, step] = match;
    const action = step === undefined ? (req.method === 'GET' ? 'show' : undefined) : req.method === 'POST' ? step : undefined;
    if (!action) {
      sendHtml(res, 405, errorPage('This page only answers GET, and its forms POST.'));
      return true;
    }
    answerInteraction(provider, `${basePath}/interaction/${uid}`, action, req, res).catch((err: unknown) => {
      // An expired or unknown interaction (its cookie is gone): say so rather than a bare 500.
      const message = (err as { error_description?: string; message?: string }).error_description ?? (err as Error).message;
      if (!res.headersSent)
        sendHtml(
          res,
          (err as { statusCode?: number }).statusCode ?? 500,
          errorPage(`The sign-in could not continue: ${message}. Start again from the application.`),
        );
      else res.end();
    });
    return true;
  };
}

async function answerInteraction(
  provider: Provider,
  path: string,
  action: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  const client = await provider.Client.find(String(params.client_id));
  const clientName = String(client?.clientName ?? params.client_id);
  switch (action) {
    case 'show':
      if (prompt.name === 'login') {
        const loginHint = typeof params.login_hint === 'string' ? params.login_hint : undefined;
        return sendHtml(res, 200, loginPage({ action: `${path}/login`, abortAction: `${path}/abort`, clientName, loginHint }));
      }
      return sendHtml(
        res,
        200,
        consentPage({
          action: `${path}/consent`,
          abortAction: `${path}/abort`,
          clientName,
          accountId: String(details.session?.accountId ?? ''),
          scopes: String(params.scope ?? '')
            .split(' ')
            .filter(Boolean),
        }),
      );
    case 'login': {
      const login = new URLSearchParams(await readBody(req)).get('login')?.trim();
      if (prompt.name !== 'login' || !login || login.length > 100) {
        return sendHtml(res, 400, errorPage('Enter a user name of 1–100 characters.'));
      }
      return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    }
    case 'consent': {
      if (prompt.name !== 'consent') return sendHtml(res, 400, errorPage('There is no consent to give at this step.'));
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session!.accountId, clientId: String(params.client_id) });
      if (!grant) return sendHtml(res, 400, errorPage('The grant being extended no longer exists.'));
      const missing = prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {}))
        grant.addResourceScope(indicator, scopes.join(' '));
      return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
    }
    default:
      // RFC 6749 §4.1.2.1: the resource owner denied the request.
      return provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'The user denied the authorization at the sandbox.' },
        { mergeWithLastSubmission: false },
      );
  }
}
