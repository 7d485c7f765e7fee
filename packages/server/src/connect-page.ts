/**
 * The hosted connect page and its refusals: plain HTML with the console's stylesheet, no script,
 * readable on a phone. Every value is escaped; links carry the token in the query string, which
 * request logs never record.
 */
import type { FastifyReply } from 'fastify';
import { escapeHtml, htmlDocument, renderConnectPage, type ConnectPageService } from '@everyauth/core';
import type { ConnectRefusal } from './connect-sessions.js';

/** No script at all; styles from the console; no form, and no link or redirect may leak the URL (it holds the token). */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

const CONSOLE_CSS = '/console/assets/console.css';

function headers(reply: FastifyReply, status: number): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .header('content-security-policy', CONTENT_SECURITY_POLICY);
}

export function sendPage(reply: FastifyReply, status: number, title: string, body: string): FastifyReply {
  return headers(reply, status).send(htmlDocument(title, body, CONSOLE_CSS));
}

const REFUSALS: Record<ConnectRefusal, { status: number; title: string; detail: string }> = {
  unknown: { status: 404, title: 'Unknown link', detail: 'This connect link does not exist. Ask the application for a new one.' },
  expired: {
    status: 410,
    title: 'This link has expired',
    detail: 'Connect links work for a short time only. Ask the application for a new one.',
  },
  finished: {
    status: 410,
    title: 'This link was already used',
    detail: 'Each connect link works once. Ask the application for a new one.',
  },
  other_browser: {
    status: 403,
    title: 'This link was opened in another browser',
    detail:
      'A connect link works only in the browser that opened it first, so a forwarded link cannot be used. Ask the application for a link of your own.',
  },
};

export function sendRefusal(reply: FastifyReply, reason: ConnectRefusal): FastifyReply {
  const r = REFUSALS[reason];
  return sendPage(reply, r.status, r.title, `<p class="message error" data-refusal="${reason}">${escapeHtml(r.detail)}</p>`);
}

/** The page: each allowed service with its state for this user and a link to connect it; then Done. */
export function connectPage(
  reply: FastifyReply,
  token: string,
  services: Omit<ConnectPageService, 'href'>[],
  message?: { kind: 'ok' | 'error'; text: string },
): FastifyReply {
  const t = encodeURIComponent(token);
  const html = renderConnectPage({
    services: services.map((s) => ({ ...s, href: `/connect/start?t=${t}&service=${encodeURIComponent(s.serviceId)}` })),
    doneHref: `/connect/finish?t=${t}`,
    message,
    stylesheet: CONSOLE_CSS,
  });
  return headers(reply, 200).send(html);
}
