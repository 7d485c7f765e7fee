/**
 * The connect page as HTML: each service with its state for one user and a link that connects it,
 * then Done. Plain HTML, no script, every value escaped; the server serves it for connect links
 * (with the console's stylesheet) and `@everyauth/express` for `everyauth.connect()`.
 */
import type { IdentityStatus } from './broker.js';

/** One row of the page. */
export interface ConnectPageService {
  serviceId: string;
  /** What the user reads: the provider's name. */
  name: string;
  /** The user's identity's status on the service; undefined when not connected. */
  status?: IdentityStatus;
  /** The account at the provider (e-mail or name), when connected. */
  account?: string;
  /** Where the button goes: the flow for this service (a reconnect when the identity needs one). */
  href: string;
}

export interface ConnectPageInput {
  title?: string;
  services: ConnectPageService[];
  /** The Done button's target; no button when absent. */
  doneHref?: string;
  message?: { kind: 'ok' | 'error'; text: string };
  /** A same-origin stylesheet (the server's console.css). */
  stylesheet?: string;
}

export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STATE: Record<string, { label: string; badge: string; action: string }> = {
  active: { label: 'Connected', badge: 'active', action: 'Connect again' },
  needs_reauth: { label: 'Needs reconnect', badge: 'warn', action: 'Reconnect' },
  dead: { label: 'Needs reconnect', badge: 'warn', action: 'Reconnect' },
  revoked: { label: 'Not connected', badge: 'bad', action: 'Connect' },
  none: { label: 'Not connected', badge: 'revoked', action: 'Connect' },
};

/** A whole HTML document around `body`, phone-ready. */
export function htmlDocument(title: string, body: string, stylesheet?: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
${stylesheet ? `<link rel="stylesheet" href="${escapeHtml(stylesheet)}">` : ''}
</head>
<body>
<main class="narrow">
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>`;
}

export function renderConnectPage(input: ConnectPageInput): string {
  const rows = input.services
    .map((s) => {
      const state = STATE[s.status ?? 'none']!;
      return `<tr data-service="${escapeHtml(s.serviceId)}" data-state="${s.status ?? 'none'}">
<td data-label="Service"><div><strong>${escapeHtml(s.name)}</strong>${s.account ? `<div class="muted">${escapeHtml(s.account)}</div>` : ''}</div></td>
<td data-label="State"><span class="badge ${state.badge}">${state.label}</span></td>
<td data-label=""><span class="actions"><a class="button${s.status === 'active' ? ' secondary' : ''}" href="${escapeHtml(s.href)}">${state.action}</a></span></td>
</tr>`;
    })
    .join('\n');
  const note = input.message ? `<p class="message ${input.message.kind}" role="status">${escapeHtml(input.message.text)}</p>` : '';
  const done = input.doneHref ? `<p class="actions"><a class="button" id="done" href="${escapeHtml(input.doneHref)}">Done</a></p>` : '';
  return htmlDocument(
    input.title ?? 'Connect your accounts',
    `${note}
<div class="panel"><table class="stack">
<thead><tr><th>Service</th><th>State</th><th></th></tr></thead>
<tbody>
${rows}
</tbody></table></div>
${done}`,
    input.stylesheet,
  );
}
