/**
 * Express 4 calls a route handler and drops what it returns, so an `async` handler that rejects
 * (code written as the tutorials show it, `app.get(path, async (req, res) => { await
 * everyauth.getIdentity(…) })`, with no `next`) reaches no error handler: the request is never
 * answered and the rejection is unhandled, which ends the process by default. Express 5 hands the
 * rejection to `next(err)`. This module gives an Express 4 app that one rule of Express 5, so
 * `everyauth.errorHandler()` sees EveryAuth's errors (a revoked grant above all) under both.
 */

type Next = (err?: unknown) => void;

/** Express 4's router layer (lib/router/layer.js): one handler of a route or a `use`. */
interface Express4Layer {
  handle: (...args: unknown[]) => unknown;
  handle_request(req: unknown, res: unknown, next: Next): void;
  handle_error(err: unknown, req: unknown, res: unknown, next: Next): void;
}

const FORWARDING = Symbol.for('everyauth.express4.forwardsRejections');

/**
 * Makes the Express 4 that `app` runs on pass a handler's rejected promise to `next(err)`, as
 * Express 5 does. Express 5 (whose layers have `handleRequest`, not `handle_request`) and anything
 * else is left alone. The change is to Express 4's Layer, shared by every app and router of that
 * copy of Express: the same rule for all of them, applied once.
 */
export function forwardRejections(app: unknown): void {
  const first = (app as { _router?: { stack?: unknown[] } } | undefined)?._router?.stack?.[0];
  if (!first) return;
  const proto = Object.getPrototypeOf(first) as Partial<Express4Layer> & { [FORWARDING]?: true };
  if (typeof proto.handle_request !== 'function' || typeof proto.handle_error !== 'function' || proto[FORWARDING]) return;
  proto[FORWARDING] = true;
  // As Express 4's own, but for the promise: a handler with four parameters is an error handler
  // and is skipped by handle_request; one with fewer is skipped by handle_error.
  proto.handle_request = function handleRequest(this: Express4Layer, req: unknown, res: unknown, next: Next) {
    if (this.handle.length > 3) return next();
    settle(() => this.handle(req, res, next), next);
  };
  proto.handle_error = function handleError(this: Express4Layer, err: unknown, req: unknown, res: unknown, next: Next) {
    if (this.handle.length !== 4) return next(err);
    settle(() => this.handle(err, req, res, next), next);
  };
}

/** Runs a handler; a throw or a rejection goes to next (a rejection with no reason as an Error, as in Express 5). */
function settle(run: () => unknown, next: Next): void {
  let result: unknown;
  try {
    result = run();
  } catch (err) {
    return next(err);
  }
  if (result && typeof (result as PromiseLike<unknown>).then === 'function') {
    (result as PromiseLike<unknown>).then(undefined, (err: unknown) => next(err ?? new Error('Rejected promise')));
  }
}
