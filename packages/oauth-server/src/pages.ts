/** The sandbox's sign-in and consent pages: plain HTML forms, no script, readable on a phone. */

const escapeHtml = (value: string) =>
  value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const STYLE = `
  *{box-sizing:border-box}
  body{margin:0;font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2330;display:flex;justify-content:center;padding:2rem 1rem}
  main{background:#fff;border:1px solid #dde1e8;border-radius:12px;padding:1.5rem;width:100%;max-width:24rem}
  h1{font-size:1.25rem;margin:0 0 .25rem} p{margin:.5rem 0;color:#4a5263}
  .badge{display:inline-block;font-size:.75rem;font-weight:600;letter-spacing:.04em;text-transform:uppercase;color:#8a4b00;background:#fff1dc;border-radius:4px;padding:.1rem .4rem}
  label{display:block;margin:1rem 0 .25rem;font-weight:600}
  input{width:100%;padding:.6rem .7rem;font:inherit;border:1px solid #b8bfcc;border-radius:8px}
  ul{padding-left:1.2rem} code{background:#f0f2f5;border-radius:4px;padding:0 .25rem}
  .actions{display:flex;gap:.5rem;margin-top:1.25rem;flex-wrap:wrap}
  button{flex:1;padding:.65rem 1rem;font:inherit;font-weight:600;border-radius:8px;border:1px solid #2f5bd3;background:#2f5bd3;color:#fff;cursor:pointer}
  button.secondary{background:#fff;color:#2f5bd3}
`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>${escapeHtml(title)} · EveryAuth sandbox</title><style>${STYLE}</style></head>
<body><main><span class="badge">EveryAuth sandbox</span>${body}</main></body></html>`;
}

export function loginPage(input: { action: string; abortAction: string; clientName: string; loginHint?: string }): string {
  return page(
    'Sign in',
    `<h1>Sign in</h1>
<p>to continue to <strong>${escapeHtml(input.clientName)}</strong>. This is a local test authorization server: any user name works and there is no password.</p>
<form method="post" action="${escapeHtml(input.action)}">
  <label for="login">User name</label>
  <input id="login" name="login" autocomplete="username" required maxlength="100" value="${escapeHtml(input.loginHint ?? '')}" autofocus>
  <div class="actions"><button type="submit" id="sign-in">Sign in</button></div>
</form>
<form method="post" action="${escapeHtml(input.abortAction)}"><div class="actions"><button type="submit" class="secondary" id="cancel">Cancel</button></div></form>`,
  );
}

export function consentPage(input: {
  action: string;
  abortAction: string;
  clientName: string;
  accountId: string;
  scopes: string[];
}): string {
  const scopes = input.scopes.map((s) => `<li><code>${escapeHtml(s)}</code></li>`).join('');
  return page(
    'Allow access',
    `<h1>Allow access?</h1>
<p><strong>${escapeHtml(input.clientName)}</strong> asks to act for <strong>${escapeHtml(input.accountId)}</strong> with:</p>
<ul>${scopes || '<li>no particular scope</li>'}</ul>
<div class="actions">
  <form method="post" action="${escapeHtml(input.abortAction)}" style="flex:1;display:flex"><button type="submit" class="secondary" id="deny">Deny</button></form>
  <form method="post" action="${escapeHtml(input.action)}" style="flex:1;display:flex"><button type="submit" id="allow">Allow</button></form>
</div>`,
  );
}

export function errorPage(message: string): string {
  return page('Error', `<h1>Something went wrong</h1><p>${escapeHtml(message)}</p>`);
}
