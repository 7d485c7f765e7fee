import type { Request, Response } from 'express';

/**
 * The cookie that binds an authorization flow to the browser that started it (RFC 9700 §4.7):
 * set when the flow starts, presented at the callback, checked there by the broker. One cookie per
 * service, so two flows started in two tabs for two services do not overwrite each other.
 */
export const bindingCookieName = (serviceId: string) => `everyauth_flow_${serviceId.replace(/[^a-z0-9_]/g, '_')}`;

export interface BindingCookieOptions {
  /** The callback's path: the only place the browser sends the cookie back to. */
  path: string;
  maxAgeMs: number;
  secure: boolean;
}

export function setBindingCookie(res: Response, serviceId: string, value: string, options: BindingCookieOptions): void {
  res.cookie(bindingCookieName(serviceId), value, {
    httpOnly: true,
    // Lax, not Strict: the provider's redirect back to the callback is a top-level cross-site navigation.
    sameSite: 'lax',
    secure: options.secure,
    path: options.path,
    maxAge: options.maxAgeMs,
  });
}

export function clearBindingCookie(res: Response, serviceId: string, path: string, secure: boolean): void {
  res.clearCookie(bindingCookieName(serviceId), { httpOnly: true, sameSite: 'lax', secure, path });
}

/** Reads one cookie from the request without needing cookie-parser in the app. */
export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const raw = part
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1');
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return undefined;
}
