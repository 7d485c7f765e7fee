// The EveryAuth console: a single page over the /v1 API. Views are functions that build DOM and
// return nothing; the timers they start are stopped when the route changes.
import { api, ApiError, forgetKey, SessionEnded, signIn, storedKey } from './api.js';
import { refreshChart } from './chart.js';
import { ago, countdown, h, message, time, toast } from './dom.js';

const viewRoot = document.getElementById('view');
const nav = document.getElementById('nav');
const signOut = document.getElementById('sign-out');

const state = {
  /** Bumped on every route change, so a slow load never paints over the next view. */
  generation: 0,
  timers: [],
  /** Shown on the sign-in form: why the session ended. */
  notice: undefined,
  /** What a connect flow came back with (read from the URL once, at load). */
  flowResult: readFlowResult(),
  identityService: '',
  /** Events seen so far, oldest first; `after` is the cursor for the next poll. */
  events: [],
  eventsAfter: undefined,
};

// ---- routing ----------------------------------------------------------------------------------

const VIEWS = { identities: identitiesView, services: servicesView, connect: connectView, events: eventsView, webhooks: webhooksView };

function currentRoute() {
  const [name = '', ...rest] = window.location.hash.replace(/^#\/?/, '').split('/');
  return { name: VIEWS[name] ? name : 'identities', rest: rest.map(decodeURIComponent) };
}

function navigate(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

function route() {
  for (const stop of state.timers) stop();
  state.timers = [];
  const generation = ++state.generation;
  if (!storedKey()) return signInView();
  const { name, rest } = currentRoute();
  nav.hidden = false;
  signOut.hidden = false;
  for (const link of nav.querySelectorAll('a[data-route]')) link.classList.toggle('active', link.dataset.route === name);
  VIEWS[name](generation, ...rest).catch((error) => failed(generation, error));
}

/** Puts a view's content on the page, unless the user has moved on meanwhile. */
function mount(generation, ...content) {
  if (generation !== state.generation) return false;
  viewRoot.replaceChildren(...content.flat(Infinity).filter((part) => part !== undefined && part !== null && part !== false));
  return true;
}

function every(ms, fn) {
  const id = setInterval(fn, ms);
  state.timers.push(() => clearInterval(id));
}

/** Any failure of a view or an action: an ended session goes back to sign-in, the rest is shown. */
function failed(generation, error) {
  if (error instanceof SessionEnded) {
    state.notice = error.message;
    route();
    return;
  }
  const detail = error instanceof ApiError ? error.message : 'Something went wrong in the console; reload the page.';
  if (!(error instanceof ApiError)) console.warn(error); // a bug of ours: keep the details for the developer tools
  mount(generation, message('error', 'This page could not be loaded.', detail));
}

/** Runs a button's action with the button disabled; errors become a toast (or sign-in). */
async function act(button, action) {
  button.disabled = true;
  try {
    await action();
  } catch (error) {
    if (error instanceof SessionEnded) {
      state.notice = error.message;
      route();
    } else {
      toast(error instanceof ApiError ? error.message : 'The action failed; reload the page and try again.', 'error');
      if (!(error instanceof ApiError)) console.warn(error);
    }
  } finally {
    button.disabled = false;
  }
}

// ---- sign-in ----------------------------------------------------------------------------------

function signInView() {
  nav.hidden = true;
  signOut.hidden = true;
  const input = h('input', {
    id: 'api-key',
    name: 'api-key',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    placeholder: 'ea_…',
  });
  const status = h('div', { id: 'sign-in-status' });
  const button = h('button', { type: 'submit', id: 'sign-in' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'panel narrow',
      id: 'sign-in-form',
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        status.replaceChildren();
        try {
          await signIn(input.value);
          state.notice = undefined;
          navigate(state.flowResult ? '#/connect' : window.location.hash || '#/identities');
        } catch (error) {
          const title = error instanceof ApiError && error.status === 401 ? 'That API key was not accepted.' : 'Could not sign in.';
          status.replaceChildren(message('error', title, error.message));
          input.select();
        } finally {
          button.disabled = false;
        }
      },
    },
    h('h1', {}, 'Sign in to the console'),
    h(
      'p',
      { class: 'muted' },
      'Paste an API key of this server. ',
      h('code', {}, 'everyauth serve'),
      ' printed an admin key when it first started; ',
      h('code', {}, 'everyauth apikey create'),
      ' makes more.',
    ),
    state.notice && message('info', 'Signed out', state.notice),
    h('label', { for: 'api-key' }, 'API key'),
    input,
    status,
    h('div', { class: 'row' }, button),
  );
  mount(state.generation, form);
  input.focus();
}

signOut.addEventListener('click', () => {
  forgetKey();
  state.notice = 'You signed out.';
  navigate('#/identities');
});

// ---- identities -------------------------------------------------------------------------------

async function identitiesView(generation) {
  const services = await api('GET', 'services');
  const select = h(
    'select',
    {
      id: 'identity-service',
      'aria-label': 'Service',
      onchange: () => {
        state.identityService = select.value;
        reload().catch((error) => failed(generation, error));
      },
    },
    h('option', { value: '' }, 'All services'),
    services.map((s) => h('option', { value: s.id, selected: s.id === state.identityService }, s.id)),
  );
  const tableHolder = h('div', { id: 'identities' }, h('p', { class: 'muted' }, 'Loading…'));
  const updated = h('span', { class: 'muted' });

  async function reload() {
    const query = new URLSearchParams({ count: '200' });
    if (state.identityService) query.set('serviceId', state.identityService);
    const page = await api('GET', `identities?${query}`);
    if (generation !== state.generation) return;
    tableHolder.replaceChildren(identityTable(page.items, reload));
    if (page.next) tableHolder.append(h('p', { class: 'muted' }, 'Showing the first 200 identities; filter by service to see others.'));
    updated.textContent = `updated ${time(new Date().toISOString())}`;
    tick();
  }

  if (
    !mount(
      generation,
      h('div', { class: 'row spread' }, h('h1', {}, 'Identities'), h('a', { href: '#/connect' }, 'Connect a test user →')),
      h('div', { class: 'row' }, h('div', { class: 'grow' }, select), updated),
      h('div', { class: 'panel' }, tableHolder),
    )
  )
    return;
  await reload();
  every(1000, tick);
  every(10_000, () => reload().catch((error) => failed(generation, error)));
}

/** Moves every countdown and "ago" on the page along by a second. */
function tick() {
  const now = Date.now();
  for (const element of viewRoot.querySelectorAll('[data-expires]')) {
    const { text, kind } = countdown(element.dataset.expires, now);
    element.textContent = text;
    element.className = kind;
  }
  for (const element of viewRoot.querySelectorAll('[data-ago]')) element.textContent = ago(element.dataset.ago, now);
}

function identityTable(identities, reload) {
  if (identities.length === 0) {
    return h(
      'p',
      { class: 'muted', id: 'no-identities' },
      'No identities yet. ',
      h('a', { href: '#/connect' }, 'Connect a test user'),
      ' to make one.',
    );
  }
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'stack' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['User', 'Service', 'Status', 'Token expires', 'Last refresh', 'Tags', 'Health', ''].map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        identities.map((identity) => identityRow(identity, reload)),
      ),
    ),
  );
}

function identityRow(identity, reload) {
  const who = [identity.tenantId && `tenant ${identity.tenantId}`, identity.profile?.email ?? identity.profile?.name]
    .filter(Boolean)
    .join(' · ');
  const refresh = h(
    'button',
    { class: 'small secondary', 'data-action': 'refresh', disabled: identity.status !== 'active' },
    'Refresh now',
  );
  const revoke = h('button', { class: 'small danger', 'data-action': 'revoke' }, 'Revoke');
  const remove = h('button', { class: 'small danger', 'data-action': 'delete' }, 'Delete');
  const label = `${identity.userId} on ${identity.serviceId}`;
  // A grant that needs re-authorization cannot be refreshed; the way out is a reconnect: the flow
  // again for this same identity (same id, tags and metadata), back to the console afterwards.
  const reconnect = identity.status !== 'active' && h('button', { class: 'small', 'data-action': 'reconnect' }, 'Reconnect');
  if (reconnect)
    reconnect.addEventListener('click', () =>
      act(reconnect, async () => {
        const link = await api('POST', `identities/${encodeURIComponent(identity.id)}/reconnect`, {
          finishedUrl: `${window.location.pathname}?flow=done#/connect`,
        });
        window.location.assign(link.url);
      }),
    );
  const check = h('button', { class: 'small secondary', 'data-action': 'check' }, 'Check');
  check.addEventListener('click', () =>
    act(check, async () => {
      try {
        const result = await api('POST', `identities/${encodeURIComponent(identity.id)}/check`);
        toast(result.healthy ? `${label} is healthy.` : `${label} is unhealthy (${result.reason ?? 'the test request failed'}).`);
      } finally {
        await reload().catch(() => undefined);
      }
    }),
  );
  refresh.addEventListener('click', () =>
    act(refresh, async () => {
      try {
        const fresh = await api(
          'GET',
          `services/${encodeURIComponent(identity.serviceId)}/identities/${encodeURIComponent(identity.id)}/token?force=true`,
        );
        toast(`Refreshed ${label}: the new token expires ${fresh.expiresAt ? `at ${time(fresh.expiresAt)}` : 'never'}.`);
      } finally {
        // A failed refresh changes the identity too (needs_reauth), so the row is reloaded either way.
        await reload().catch(() => undefined);
      }
    }),
  );
  revoke.addEventListener('click', () =>
    act(revoke, async () => {
      if (!window.confirm(`Revoke the grant of ${label} at the provider and remove the identity?`)) return;
      await api('DELETE', `identities/${encodeURIComponent(identity.id)}?revoke=true`);
      toast(`Revoked ${label}.`);
      await reload();
    }),
  );
  remove.addEventListener('click', () =>
    act(remove, async () => {
      if (!window.confirm(`Delete ${label} here, without telling the provider?`)) return;
      await api('DELETE', `identities/${encodeURIComponent(identity.id)}`);
      toast(`Deleted ${label}.`);
      await reload();
    }),
  );
  return h(
    'tr',
    { 'data-identity': identity.id, 'data-user': identity.userId },
    h('td', { 'data-label': 'User' }, h('div', {}, h('strong', {}, identity.userId), who && h('div', { class: 'muted' }, who))),
    h('td', { 'data-label': 'Service' }, identity.serviceId),
    h(
      'td',
      { 'data-label': 'Status' },
      h('span', { class: `badge ${identity.status}`, 'data-status': identity.status }, identity.status.replace('_', ' ')),
    ),
    h('td', { 'data-label': 'Token expires' }, h('span', { dataset: { expires: identity.expiresAt ?? '' } })),
    h(
      'td',
      { 'data-label': 'Last refresh' },
      h('span', { dataset: { ago: identity.lastRefreshAt ?? '' }, title: identity.lastRefreshAt ?? '' }),
    ),
    h(
      'td',
      { 'data-label': 'Tags' },
      Object.keys(identity.tags).length
        ? Object.entries(identity.tags).map(([k, v]) => h('span', { class: 'tag' }, `${k}=${v}`))
        : h('span', { class: 'muted' }, '—'),
    ),
    h('td', { 'data-label': 'Health' }, healthOf(identity)),
    h('td', { 'data-label': 'Actions' }, h('div', { class: 'actions' }, reconnect || refresh, check, revoke, remove)),
  );
}

/** The last health check, or a dash before the first. */
function healthOf(identity) {
  if (identity.healthy === undefined) return h('span', { class: 'muted' }, '—');
  return h(
    'span',
    { class: `badge ${identity.healthy ? 'active' : 'bad'}`, 'data-healthy': String(identity.healthy), title: identity.lastCheckedAt },
    identity.healthy ? 'healthy' : 'unhealthy',
  );
}

// ---- services ---------------------------------------------------------------------------------

async function servicesView(generation, mode, id) {
  if (mode === 'new') return addServiceView(generation);
  if (mode === 'edit' && id) return editServiceView(generation, id);
  const services = await api('GET', 'services');
  const highlight = mode === 'saved' ? id : undefined;
  mount(
    generation,
    h(
      'div',
      { class: 'row spread' },
      h('h1', {}, 'Services'),
      h('button', { type: 'button', id: 'add-service', onclick: () => navigate('#/services/new') }, 'Add a service'),
    ),
    highlight &&
      message(
        'ok',
        `Service ${highlight} saved.`,
        'Register its redirect URL (below) at the provider, in the app whose client id you entered.',
      ),
    services.length === 0
      ? h('div', { class: 'panel muted' }, 'No services yet: add one from the catalog.')
      : services.map((service) => serviceCard(service, generation)),
  );
}

function serviceCard(service, generation) {
  const remove = h('button', { class: 'small danger', type: 'button' }, 'Delete');
  remove.addEventListener('click', () =>
    act(remove, async () => {
      if (!window.confirm(`Delete service ${service.id} and every identity on it?`)) return;
      await api('DELETE', `services/${encodeURIComponent(service.id)}`);
      toast(`Deleted service ${service.id}.`);
      if (generation === state.generation) route();
    }),
  );
  return h(
    'section',
    { class: 'panel', 'data-service': service.id },
    h(
      'div',
      { class: 'row spread' },
      h('h2', {}, service.id, ' ', h('span', { class: 'badge' }, service.providerId)),
      h(
        'div',
        { class: 'actions' },
        h('a', { href: `#/connect/${encodeURIComponent(service.id)}` }, 'Connect'),
        h(
          'button',
          { class: 'small secondary', type: 'button', onclick: () => navigate(`#/services/edit/${encodeURIComponent(service.id)}`) },
          'Edit',
        ),
        remove,
      ),
    ),
    h(
      'p',
      {},
      'Client id ',
      h('code', {}, service.clientId),
      ' · secret ',
      service.hasClientSecret ? h('span', { class: 'badge active' }, 'set') : h('span', { class: 'badge warn' }, 'not set'),
    ),
    service.scopes.length > 0 && h('p', { class: 'muted' }, 'Scopes: ', service.scopes.join(' ')),
    h('label', { for: `redirect-${service.id}` }, 'Redirect URL ', h('span', { class: 'hint' }, '— register this at the provider')),
    copyField(`redirect-${service.id}`, service.redirectUrl),
  );
}

function copyField(id, value) {
  const input = h('input', { id, value, readonly: true, onfocus: () => input.select() });
  const button = h('button', { type: 'button', class: 'secondary small', 'data-copy': id }, 'Copy');
  button.addEventListener('click', async () => {
    try {
      await window.navigator.clipboard.writeText(value);
      toast('Copied the redirect URL.');
    } catch {
      // No clipboard access (plain http on another host, or denied): leave it selected to copy by hand.
      input.focus();
      input.select();
      toast('Select and copy the URL by hand (the browser refused clipboard access).');
    }
  });
  return h('div', { class: 'copy' }, input, button);
}

async function addServiceView(generation) {
  const search = h('input', {
    id: 'catalog-search',
    type: 'search',
    placeholder: 'Search the catalog: google, asana, github…',
    autocomplete: 'off',
  });
  const results = h('ul', { class: 'catalog', id: 'catalog-results' });
  const formHolder = h('div');
  let pending;

  async function find() {
    const providers = await api('GET', `providers?${new URLSearchParams({ search: search.value.trim() })}`);
    if (generation !== state.generation) return;
    results.replaceChildren(
      ...(providers.length === 0
        ? [h('li', { class: 'muted' }, h('span', {}, `No provider matches "${search.value}".`))]
        : providers.map((p) =>
            h(
              'li',
              {},
              h(
                'button',
                { type: 'button', 'data-provider': p.id, onclick: () => choose(p.id).catch((error) => failed(generation, error)) },
                h('span', {}, p.name),
                h('span', { class: 'muted mono' }, p.custom ? `${p.id} · custom` : p.id),
              ),
            ),
          )),
    );
  }

  async function choose(providerId) {
    const provider = await api('GET', `providers/${encodeURIComponent(providerId)}`);
    if (generation !== state.generation) return;
    formHolder.replaceChildren(serviceForm(generation, { provider, service: undefined }));
    formHolder.querySelector('input')?.focus();
  }

  search.addEventListener('input', () => {
    clearTimeout(pending);
    pending = setTimeout(() => find().catch((error) => failed(generation, error)), 200);
  });
  state.timers.push(() => clearTimeout(pending));
  mount(
    generation,
    h('h1', {}, 'Add a service'),
    h('div', { class: 'panel' }, h('label', { for: 'catalog-search' }, 'Provider'), search, results),
    formHolder,
  );
  await find();
  search.focus();
}

async function editServiceView(generation, id) {
  const service = await api('GET', `services/${encodeURIComponent(id)}`);
  const provider = await api('GET', `providers/${encodeURIComponent(service.providerId)}`);
  mount(generation, h('h1', {}, `Edit ${service.id}`), serviceForm(generation, { provider, service }));
}

/** Create (no `service`) or edit: id, client id and secret, scopes, the provider's template variables. */
function serviceForm(generation, { provider, service }) {
  const idInput = h('input', {
    id: 'service-id',
    required: true,
    pattern: '[a-z0-9][a-z0-9_\\-]{0,62}',
    value: service?.id ?? provider.id,
    readonly: Boolean(service),
  });
  // API keys, Basic and service accounts are each user's own, typed in on Connect: no client of the app's.
  const clientless = ['api_key', 'basic', 'jwt'].includes(provider.kind);
  const clientId = h('input', { id: 'client-id', required: !clientless, autocomplete: 'off', value: service?.clientId ?? '' });
  const secret = h('input', {
    id: 'client-secret',
    type: 'password',
    autocomplete: 'new-password',
    placeholder: service?.hasClientSecret ? 'set — leave empty to keep it' : '',
  });
  const scopes = h('input', {
    id: 'scopes',
    value: service?.scopes.join(' ') ?? '',
    placeholder: provider.scopes?.default?.join(' ') || 'the provider’s defaults',
  });
  const variables = Object.entries(provider.variables ?? {}).map(([name, spec]) => ({
    name,
    input: h('input', { id: `var-${name}`, required: true, value: service?.variables?.[name] ?? '', placeholder: spec.example ?? '' }),
    spec,
  }));
  const status = h('div');
  const save = h('button', { type: 'submit', id: 'save-service' }, service ? 'Save' : 'Add service');
  return h(
    'form',
    {
      class: 'panel',
      id: 'service-form',
      onsubmit: (event) => {
        event.preventDefault();
        status.replaceChildren();
        void act(save, async () => {
          const body = {
            providerId: provider.id,
            ...(clientless ? {} : { clientId: clientId.value.trim() }),
            scopes: scopes.value.split(/[\s,]+/).filter(Boolean),
            ...(secret.value ? { clientSecret: secret.value } : {}),
            ...(variables.length ? { variables: Object.fromEntries(variables.map((v) => [v.name, v.input.value.trim()])) } : {}),
          };
          try {
            const saved = await api('PUT', `services/${encodeURIComponent(idInput.value.trim())}`, body);
            if (generation === state.generation) navigate(`#/services/saved/${encodeURIComponent(saved.id)}`);
          } catch (error) {
            if (!(error instanceof ApiError)) throw error;
            status.replaceChildren(message('error', 'The service was not saved.', error.message));
          }
        });
      },
    },
    h('h2', {}, provider.name, ' ', h('a', { href: provider.docs, target: '_blank', rel: 'noopener noreferrer' }, 'provider docs')),
    provider.notes && h('p', { class: 'muted' }, provider.notes),
    h('label', { for: 'service-id' }, 'Service id ', h('span', { class: 'hint' }, '— how your app names it; also in the redirect URL')),
    idInput,
    clientless
      ? h(
          'p',
          { class: 'muted', id: 'clientless' },
          `Kind ${provider.kind}: each user types their own credential on the Connect page; there is no client to set up.`,
        )
      : [h('label', { for: 'client-id' }, 'Client id'), clientId, h('label', { for: 'client-secret' }, 'Client secret'), secret],
    h('label', { for: 'scopes' }, 'Scopes ', h('span', { class: 'hint' }, '— space-separated; empty for the defaults')),
    scopes,
    variables.map((v) => [
      h('label', { for: `var-${v.name}` }, v.name, ' ', h('span', { class: 'hint' }, `— ${v.spec.description}`)),
      v.input,
    ]),
    status,
    h('div', { class: 'row' }, save, h('a', { href: '#/services' }, 'Cancel')),
  );
}

// ---- connect ----------------------------------------------------------------------------------

async function connectView(generation, preselected, presetUser, presetTenant) {
  const services = await api('GET', 'services');
  const result = state.flowResult;
  state.flowResult = undefined;
  const chosen = preselected ?? result?.serviceId ?? (services.some((s) => s.id === 'sandbox') ? 'sandbox' : services[0]?.id);
  const select = h(
    'select',
    { id: 'connect-service', required: true },
    services.map((s) => h('option', { value: s.id, selected: s.id === chosen }, `${s.id} (${s.providerId})`)),
  );
  const userId = h('input', {
    id: 'connect-user',
    required: true,
    maxlength: 256,
    value: presetUser ?? result?.userId ?? 'test-user',
    autocomplete: 'off',
  });
  const tenantId = h('input', { id: 'connect-tenant', maxlength: 256, value: presetTenant ?? '', autocomplete: 'off' });
  const tags = h('input', { id: 'connect-tags', placeholder: 'plan=trial, team=ops', autocomplete: 'off' });
  const status = h('div');
  const go = h('button', { type: 'submit', id: 'connect' }, 'Connect');
  const form = h(
    'form',
    {
      class: 'panel',
      id: 'connect-form',
      onsubmit: (event) => {
        event.preventDefault();
        status.replaceChildren();
        let parsedTags;
        try {
          parsedTags = parseTags(tags.value);
        } catch (error) {
          status.replaceChildren(message('error', 'Check the tags.', error.message));
          return;
        }
        void act(go, async () => {
          try {
            const session = await api('POST', 'sessions', {
              serviceId: select.value,
              userId: userId.value.trim(),
              ...(tenantId.value.trim() ? { tenantId: tenantId.value.trim() } : {}),
              ...(parsedTags ? { tags: parsedTags } : {}),
              // Back to this page; the server appends the outcome (userId, serviceId, or error) to the query.
              finishedUrl: `${window.location.pathname}?flow=done#/connect`,
            });
            window.location.assign(session.url);
          } catch (error) {
            if (!(error instanceof ApiError)) throw error;
            status.replaceChildren(message('error', 'The authorization could not start.', error.message));
          }
        });
      },
    },
    h(
      'p',
      { class: 'muted' },
      'Runs the authorization flow in this window for a test user, then comes back here. ',
      services.some((s) => s.id === 'sandbox') && 'The sandbox service needs no account: sign in there with any name.',
    ),
    h('label', { for: 'connect-service' }, 'Service'),
    select,
    h('label', { for: 'connect-user' }, 'User id ', h('span', { class: 'hint' }, '— your application’s id for this user')),
    userId,
    h('label', { for: 'connect-tenant' }, 'Tenant id ', h('span', { class: 'hint' }, '— optional')),
    tenantId,
    h('label', { for: 'connect-tags' }, 'Tags ', h('span', { class: 'hint' }, '— optional, key=value, comma-separated')),
    tags,
    status,
    h('div', { class: 'row' }, go),
  );
  mount(
    generation,
    h('h1', {}, 'Connect'),
    result && flowMessage(result),
    services.length === 0
      ? h('div', { class: 'panel' }, 'There is no service to connect to yet. ', h('a', { href: '#/services/new' }, 'Add one.'))
      : form,
  );
}

function flowMessage(result) {
  if (result.error) {
    return h(
      'div',
      { id: 'flow-result' },
      message('error', `The authorization failed: ${result.error}`, [
        result.errorDescription || 'The provider gave no description.',
        result.serviceId && ` (service ${result.serviceId}${result.userId ? `, user ${result.userId}` : ''})`,
      ]),
    );
  }
  return h(
    'div',
    { id: 'flow-result' },
    message('ok', `Connected ${result.userId} on ${result.serviceId}.`, [
      'The identity is stored and will be kept fresh. ',
      h('a', { href: '#/identities' }, 'See it in Identities.'),
    ]),
  );
}

function parseTags(text) {
  const entries = text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  if (entries.length === 0) return undefined;
  return Object.fromEntries(
    entries.map((entry) => {
      const eq = entry.indexOf('=');
      if (eq <= 0) throw new Error(`"${entry}" is not key=value.`);
      return [entry.slice(0, eq).trim(), entry.slice(eq + 1).trim()];
    }),
  );
}

/** The outcome the server appended to finishedUrl; the URL is then cleaned so a reload does not show it again. */
function readFlowResult() {
  const params = new URLSearchParams(window.location.search);
  if (params.get('flow') !== 'done') return undefined;
  window.history.replaceState(null, '', `${window.location.pathname}#/connect`);
  return {
    serviceId: params.get('serviceId') ?? undefined,
    userId: params.get('userId') ?? undefined,
    error: params.get('error') ?? undefined,
    errorDescription: params.get('error_description') ?? undefined,
  };
}

// ---- webhooks ---------------------------------------------------------------------------------

/** Each webhook with its recent deliveries; a failed delivery can be sent again (same delivery id and idempotency key). */
async function webhooksView(generation) {
  const hooks = await api('GET', 'webhooks');
  if (hooks.length === 0) {
    return mount(
      generation,
      h('h1', {}, 'Webhooks'),
      h('p', { class: 'muted', id: 'no-webhooks' }, 'No webhooks yet. Add one with POST /v1/webhooks (admin key).'),
    );
  }
  const panels = await Promise.all(hooks.map((hook) => webhookPanel(hook)));
  mount(generation, h('h1', {}, 'Webhooks'), ...panels);
}

async function webhookPanel(hook) {
  const deliveries = await api('GET', `webhooks/${encodeURIComponent(hook.id)}/deliveries?count=100`);
  const rows = deliveries.reverse().map((d) => {
    const replay = d.status === 'failed' && h('button', { class: 'small', 'data-action': 'replay', 'data-delivery': d.id }, 'Send again');
    if (replay)
      replay.addEventListener('click', () =>
        act(replay, async () => {
          await api('POST', `webhooks/${encodeURIComponent(hook.id)}/deliveries/${encodeURIComponent(d.id)}/replay`);
          toast(`Delivery ${d.id} queued again.`);
          route();
        }),
      );
    return h(
      'tr',
      { 'data-delivery': d.id, 'data-status': d.status },
      h('td', { 'data-label': 'Event' }, d.eventType.replace('identity.', '')),
      h(
        'td',
        { 'data-label': 'Status' },
        h('span', { class: `badge ${d.status === 'delivered' ? 'active' : d.status === 'failed' ? 'bad' : 'warn'}` }, d.status),
      ),
      h('td', { 'data-label': 'Attempts' }, String(d.attempts)),
      h('td', { 'data-label': 'Answer' }, d.lastError ?? (d.responseStatus ? `HTTP ${d.responseStatus}` : '—')),
      h('td', { 'data-label': 'When' }, time(d.updatedAt)),
      h('td', { 'data-label': '' }, replay || ''),
    );
  });
  return h(
    'section',
    { class: 'panel', 'data-webhook': hook.id },
    h('h2', {}, hook.url),
    h('p', { class: 'muted' }, `Events: ${hook.events.map((e) => e.replace('identity.', '')).join(', ')}`),
    rows.length
      ? h(
          'table',
          { class: 'stack' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Event', 'Status', 'Attempts', 'Answer', 'When', ''].map((t) => h('th', {}, t)),
            ),
          ),
          h('tbody', {}, rows),
        )
      : h('p', { class: 'muted' }, 'No deliveries kept (they are pruned after the retention).'),
  );
}

// ---- events -----------------------------------------------------------------------------------

const EVENT_PAGE = 1000;
const EVENTS_KEPT = 5000;

/** Reads the events after the cursor, a page at a time; the first call reads the whole log (bounded). */
async function pollEvents() {
  for (let pages = 0; pages < 20; pages += 1) {
    const query = new URLSearchParams({ count: String(EVENT_PAGE) });
    if (state.eventsAfter) query.set('after', state.eventsAfter);
    const batch = await api('GET', `events?${query}`);
    if (batch.length > 0) {
      state.events.push(...batch);
      state.eventsAfter = batch[batch.length - 1].id;
      if (state.events.length > EVENTS_KEPT) state.events.splice(0, state.events.length - EVENTS_KEPT);
    }
    if (batch.length < EVENT_PAGE) return;
  }
}

async function eventsView(generation) {
  const chartHolder = h('div');
  const tableHolder = h('div', { class: 'panel' });
  const paint = () => {
    chartHolder.replaceChildren(refreshChart(state.events));
    tableHolder.replaceChildren(eventTable(state.events.slice(-100).reverse()));
  };
  await pollEvents();
  if (!mount(generation, h('h1', {}, 'Events'), chartHolder, tableHolder)) return;
  paint();
  every(5000, () =>
    pollEvents()
      .then(() => generation === state.generation && paint())
      .catch((error) => failed(generation, error)),
  );
}

function eventTable(events) {
  if (events.length === 0)
    return h('p', { class: 'muted', id: 'no-events' }, 'No events yet: they appear as identities are created, refreshed and removed.');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'stack', id: 'events' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Time', 'Event', 'Service', 'User', 'Detail'].map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        events.map((event) =>
          h(
            'tr',
            { 'data-event': event.type },
            h('td', { 'data-label': 'Time', title: event.at }, time(event.at)),
            h('td', { 'data-label': 'Event' }, h('span', { class: `badge ${eventKind(event.type)}` }, event.type.replace('identity.', ''))),
            h('td', { 'data-label': 'Service' }, event.serviceId),
            h('td', { 'data-label': 'User' }, event.userId),
            h('td', { 'data-label': 'Detail' }, eventDetail(event)),
          ),
        ),
      ),
    ),
  );
}

function eventKind(type) {
  if (type === 'identity.refresh_failed' || type === 'identity.dead' || type === 'identity.check_failed') return 'bad';
  if (type === 'identity.needs_reauth') return 'warn';
  if (type === 'identity.deleted') return 'revoked';
  return 'active';
}

function eventDetail(event) {
  const data = event.data ?? {};
  if (typeof data.message === 'string') return data.message;
  if (event.type === 'identity.deleted') return data.revoked ? 'revoked at the provider' : 'deleted';
  if (typeof data.expiresAt === 'string') return `new token until ${time(data.expiresAt)}`;
  if (typeof data.previousStatus === 'string') return `was ${data.previousStatus.replace('_', ' ')}`;
  if (typeof data.reason === 'string') return data.reason;
  return '';
}

// ---- start ------------------------------------------------------------------------------------

window.addEventListener('hashchange', route);
route();
