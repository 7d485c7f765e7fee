/**
 * The hosted connect page and its refusals: plain HTML with the console's stylesheet, no script,
 * readable on a phone. Every value is escaped; links carry the token in the query string, which
 * request logs never record.
 */
import type { FastifyReply } from 'fastify';
import type { IdentityStatus } from '@everyauth/core';
import type { ConnectRefusal } from './connect-sessions.js';

export interface ServiceState {
  serviceId: string;
  name: string;
  status?: IdentityStatus;
  account?: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** No script at all; styles from the console; no form, and no link or redirect may leak the URL (it holds the token). */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/console/assets/console.css">
</head>
<body>
<main class="narrow">
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>`;
}

export function sendPage(reply: FastifyReply, status: number, title: string, body: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .header('content-security-policy', CONTENT_SECURITY_POLICY)
    .send(layout(title, body));
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

const STATE: Record<string, { label: string; badge: string; action: string }> = {
  active: { label: 'Connected', badge: 'active', action: 'Connect again' },
  needs_reauth: { label: 'Needs reconnect', badge: 'warn', action: 'Reconnect' },
  dead: { label: 'Needs reconnect', badge: 'warn', action: 'Reconnect' },
  revoked: { label: 'Not connected', badge: 'bad', action: 'Connect' },
  none: { label: 'Not connected', badge: 'revoked', action: 'Connect' },
};

/** The page: each allowed service with its state for this user and a link to connect it; then Done. */
export function connectPage(
  reply: FastifyReply,
  token: string,
  services: ServiceState[],
  message?: { kind: 'ok' | 'error'; text: string },
): FastifyReply {
  const t = encodeURIComponent(token);
  const rows = services
    .map((s) => {
      const state = STATE[s.status ?? 'none']!;
      const href = `/connect/start?t=${t}&amp;service=${encodeURIComponent(s.serviceId)}`;
      return `<tr data-service="${escapeHtml(s.serviceId)}" data-state="${s.status ?? 'none'}">
<td data-label="Service"><div><strong>${escapeHtml(s.name)}</strong>${s.account ? `<div class="muted">${escapeHtml(s.account)}</div>` : ''}</div></td>
<td data-label="State"><span class="badge ${state.badge}">${state.label}</span></td>
<td data-label=""><span class="actions"><a class="button${s.status === 'active' ? ' secondary' : ''}" href="${href}">${state.action}</a></span></td>
</tr>`;
    })
    .join('\n');
  const note = message ? `<p class="message ${message.kind}" role="status">${escapeHtml(message.text)}</p>` : '';
  return sendPage(
    reply,
    200,
    'Connect your accounts',
    `${note}
<div class="panel"><table class="stack">
<thead><tr><th>Service</th><th>State</th><th></th></tr></thead>
<tbody>
${rows}
</tbody></table></div>
<p class="actions"><a class="button" id="done" href="/connect/finish?t=${t}">Done</a></p>`,
  );
}
