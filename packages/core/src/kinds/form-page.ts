import type { Provider } from '../catalog/schema.js';
import { equalInConstantTime, randomToken } from '../ids.js';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Whether a provider kind's credential is typed into a form (served by EveryAuth) rather than a redirect flow. */
export const isFormKind = (kind: Provider['kind']): boolean => kind === 'api_key' || kind === 'basic' || kind === 'jwt';

/** The name of the form's anti-CSRF field, and of the cookie that must hold the same value. */
export const FORM_CSRF_FIELD = 'everyauth_csrf';

/** What the credential form shows: where it posts, hidden values, what the user typed (non-secret only), the last refusal. */
export interface CredentialForm {
  provider: Provider;
  action: string;
  csrf: string;
  hidden?: Record<string, string>;
  /** Values to fill in again after a refusal; secret fields are never filled in. */
  values?: Record<string, string>;
  error?: string;
}

/**
 * The page an `api_key`, `basic` or `jwt` provider's form is typed into, served alike by the
 * express middleware and the server's hosted flow. Every text is escaped; a secret field is a
 * password input (or a text area) that is never pre-filled, so no page ever echoes a secret.
 */
export function renderCredentialForm(form: CredentialForm): string {
  const { provider } = form;
  const inputs = provider.fields.map((field) => {
    const id = `f_${field.name}`;
    const value = field.secret ? '' : (form.values?.[field.name] ?? '');
    const required = field.optional ? '' : ' required';
    const pattern = field.pattern && !field.multiline ? ` pattern="${escapeHtml(field.pattern)}"` : '';
    const control = field.multiline
      ? `<textarea id="${id}" name="${field.name}" rows="6" autocomplete="off" spellcheck="false"${required}>${escapeHtml(value)}</textarea>`
      : `<input id="${id}" name="${field.name}" type="${field.secret ? 'password' : 'text'}" value="${escapeHtml(value)}" autocomplete="off"${pattern}${required}>`;
    const help = field.help ? `<small>${escapeHtml(field.help)}</small>` : '';
    return `<p><label for="${id}">${escapeHtml(field.label)}</label><br>${control}<br>${help}</p>`;
  });
  const hidden = Object.entries({ ...form.hidden, [FORM_CSRF_FIELD]: form.csrf }).map(
    ([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`,
  );
  const error = form.error ? `<p role="alert" class="error">${escapeHtml(form.error)}</p>` : '';
  const title = `Connect ${provider.name}`;
  return (
    `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title>` +
    `<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto}input,textarea{width:100%}.error{color:#b00020}</style></head>` +
    `<body><h1>${escapeHtml(title)}</h1>${error}<form method="post" action="${escapeHtml(form.action)}">${hidden.join('')}${inputs.join('')}` +
    `<p><button type="submit">Connect</button></p></form><p><small>Checked with ${escapeHtml(provider.name)} before it is stored, encrypted. ` +
    `<a href="${escapeHtml(provider.docs)}" rel="noreferrer">Where to find these</a></small></p></body></html>`
  );
}

/**
 * Response headers for the form page: never cached, no scripts, not framed (clickjacking), posts
 * only to itself. Browsers apply `form-action` to the redirect that follows the post too, so the
 * origin of an absolute `finishedUrl` (the app, when the server hosts the form) is allowed as well.
 */
export function formPageHeaders(finishedUrl?: string): Record<string, string> {
  const next = finishedUrl && /^https?:\/\//.test(finishedUrl) ? ` ${new URL(finishedUrl).origin}` : '';
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; form-action 'self'${next}; frame-ancestors 'none'`,
    'referrer-policy': 'no-referrer',
  };
}

/** A fresh anti-CSRF value: set as a SameSite=Strict HttpOnly cookie and as the hidden field. */
export const newFormCsrf = () => randomToken();

/** Double-submit check: the posted field equals the cookie the form's page set (constant time). */
export function sameCsrf(cookie: string | undefined, posted: string | undefined): boolean {
  return !!cookie && !!posted && equalInConstantTime(cookie, posted);
}

/** The declared fields of a posted form, nothing else (hidden inputs and unknown names stay out). */
export function postedFields(provider: Provider, body: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const field of provider.fields) {
    const value = body.get(field.name);
    if (value !== null && value !== '') out[field.name] = field.multiline ? value.replace(/\r\n/g, '\n') : value;
  }
  return out;
}
