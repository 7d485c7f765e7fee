import { EveryAuthError, type ReauthorizationRequired } from '@everyauth/core';
import type { NextFunction, Request, Response } from 'express';
import type { EveryAuth } from './everyauth.js';

/** An Express error-handling middleware: four parameters, which is how Express tells it apart. */
export type ErrorHandler = (err: unknown, req: Request, res: Response, next: NextFunction) => void;

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A small page naming the error's code and saying what to do; EveryAuth's messages never carry a secret. */
function errorPage(err: EveryAuthError): string {
  return (
    `<!doctype html><html lang="en"><meta charset="utf-8"><title>${escapeHtml(err.code)}</title>` +
    `<h1>Something went wrong with a connected account</h1>` +
    `<p>${escapeHtml(err.message)}</p><p>Error code: <code>${escapeHtml(err.code)}</code></p></html>`
  );
}

/**
 * Turns EveryAuth's errors into answers a user can act on, for Express 4 and 5 alike. Install it
 * after your routes: `app.use(everyauth.errorHandler())`.
 *
 * - `ReauthorizationRequired` (the grant was revoked or expired): a redirect to the service's
 *   authorize route for that user, where the flow starts again. Without one (the service's
 *   authorize router is not mounted on a path naming `:userId`), a 409 page with the code.
 * - Any other EveryAuthError: its HTTP status and a page (or, for a client that prefers JSON, the
 *   error's JSON form) with its stable `code` and message, never a stack trace.
 * - Everything else goes on to the next error handler, untouched.
 *
 * Responses carry `Cache-Control: no-store`: they are about one user at one moment.
 */
export function errorHandler(everyauth: EveryAuth): ErrorHandler {
  return function everyauthErrorHandler(err, req, res, next) {
    if (!(err instanceof EveryAuthError) || res.headersSent) return next(err);
    res.set('Cache-Control', 'no-store');
    if (err.code === 'reauthorization_required') {
      const e = err as ReauthorizationRequired;
      const url = e.authorizeUrl ?? everyauth.reauthorizeUrl(e.serviceId, e.userId, e.tenantId);
      // 303: whatever the method of the request that failed, the browser follows with a GET.
      if (url) return res.redirect(303, url);
    }
    res.status(err.status);
    if (req.accepts(['html', 'json']) === 'json') return void res.json(err.toJSON());
    res.type('html').send(errorPage(err));
  };
}
