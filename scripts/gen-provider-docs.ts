/**
 * Generates docs/providers.md from the built-in catalog (packages/core/catalog/*.json).
 *
 *   npx tsx scripts/gen-provider-docs.ts          write docs/providers.md
 *   npx tsx scripts/gen-provider-docs.ts --check  exit 1 when docs/providers.md is out of date
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CATEGORIES } from '../packages/core/src/catalog/categories.js';
import { loadBuiltInCatalog, type CatalogEntry, type Provider } from '../packages/core/src/catalog/index.js';
import { KINDS, type Kind } from '../packages/core/src/catalog/kinds.js';

export const PROVIDERS_DOC = fileURLToPath(new URL('../docs/providers.md', import.meta.url));

/** Text safe inside a Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ').trim();
}

/** A code span that survives backticks in the text. */
function code(text: string): string {
  return text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``;
}

/** "rotating", "yes", "no" or "no expiry". */
export function refreshSummary(provider: Provider): string {
  if (provider.kind === 'api_key' || provider.kind === 'basic') return 'no expiry';
  if (provider.kind === 'oauth2_client_credentials' || provider.kind === 'jwt') return 'new grant';
  if (!provider.token.expires) return 'no expiry';
  if (!provider.token.refreshToken) return 'no';
  return provider.token.refreshTokenRotates ? 'rotating' : 'yes';
}

function scopesExample(provider: Provider): string {
  const scopes = provider.scopes.examples.length > 0 ? provider.scopes.examples : provider.scopes.default;
  if (scopes.length === 0) return '';
  return code(scopes.slice(0, 4).join(provider.scopes.separator));
}

function notesCell(provider: Provider): string {
  const parts: string[] = [];
  const variables = Object.keys(provider.variables);
  if (variables.length > 0) parts.push(`Variables: ${variables.map((v) => code(`{${v}}`)).join(', ')}.`);
  if (provider.notes) parts.push(provider.notes);
  return cell(parts.join(' '));
}

/** A provider the catalog cannot describe yet, and why (scripts/unsupported-providers.json). */
export interface Unsupported {
  name: string;
  docs: string;
  reason: string;
}

export const UNSUPPORTED: Unsupported[] = JSON.parse(
  readFileSync(new URL('./unsupported-providers.json', import.meta.url), 'utf8'),
) as Unsupported[];

const KIND_TITLES: Record<Kind, string> = {
  oauth2: 'OAuth 2 authorization code (`oauth2`)',
  oauth2_client_credentials: 'OAuth 2 client credentials (`oauth2_client_credentials`)',
  api_key: 'API keys (`api_key`)',
  basic: 'HTTP Basic (`basic`)',
  oauth1: 'OAuth 1.0a (`oauth1`)',
  jwt: 'Service accounts (`jwt`)',
};

/** The API hosts, for the tables: where a credential of this provider may be sent. */
function hostsCell(provider: Provider): string {
  return provider.api.baseUrls.map((u) => code(u.replace(/^https:\/\//, ''))).join(' ');
}

/** One table row; the columns depend on whether the kind has scopes and PKCE. */
function row(p: Provider): string {
  const name = `[${cell(p.name).replace(/[[\]]/g, '\\$&')}](${p.docs}) (${code(p.id)})`;
  const flow =
    p.kind === 'oauth2'
      ? ` ${scopesExample(p)} | ${p.pkce ? 'yes' : 'no'} |`
      : p.kind === 'oauth2_client_credentials'
        ? ` ${scopesExample(p)} |`
        : '';
  return `| ${name} |${flow} ${refreshSummary(p)} | ${hostsCell(p)} | ${notesCell(p)} |`;
}

function tableHead(kind: Kind): string[] {
  if (kind === 'oauth2')
    return ['| Provider | Scopes example | PKCE | Refresh | API hosts | Notes |', '| --- | --- | --- | --- | --- | --- |'];
  if (kind === 'oauth2_client_credentials')
    return ['| Provider | Scopes example | Refresh | API hosts | Notes |', '| --- | --- | --- | --- | --- |'];
  return ['| Provider | Refresh | API hosts | Notes |', '| --- | --- | --- | --- |'];
}

/** The whole of docs/providers.md for a catalog: an index, then each kind by category, then what is not supported yet. */
export function renderProvidersDoc(catalog: Map<string, CatalogEntry>, unsupported: Unsupported[] = UNSUPPORTED): string {
  const entries = [...catalog.values()].sort((a, b) => a.id.localeCompare(b.id));
  const providers = entries.filter((p) => !p.aliasOf);
  const aliases = entries.filter((p) => p.aliasOf);
  const count = (kind: Kind) => providers.filter((p) => p.kind === kind).length;
  const lines = [
    '# Providers',
    '',
    `EveryAuth's built-in catalog has ${providers.length} providers, one data file each in \`packages/core/catalog/\`. ` +
      'This page is generated from those files by `npx tsx scripts/gen-provider-docs.ts`; do not edit it by hand. ' +
      'Any other OpenID Connect or RFC 8414 authorization server can be added by discovery from its issuer URL.',
    '',
    'Find one from the command line with `everyauth provider ls --search <text>` (id, name, scopes and notes), ' +
      "narrowed with `--kind <kind>` and `--category <category>`; the console's service picker searches the same way.",
    '',
    'Kind: how the credential is obtained (docs/kinds.md). Refresh: "rotating" means every refresh returns a new refresh token, ' +
      '"yes" that the refresh token is kept, "no" that access tokens expire without a refresh token, "no expiry" that the ' +
      'credential does not expire, "new grant" that EveryAuth repeats the grant before the token expires. API hosts: the only ' +
      'hosts the credential (and a test request) may be sent to.',
    '',
    "Quirks are data, not code: `scopes.separator` and `scopes.param` (Slack's `user_scope`), `token.path` (a token nested " +
      "in the response, Slack's `authed_user`; a refresh answered at the top level is read there), `token.scheme` (the " +
      "Authorization scheme when it is not `Bearer`: Mailchimp's `OAuth`, Zoho's `Zoho-oauthtoken`), `tokenRequest.encoding` " +
      "(`json` for Square's token body), `clientIdParam` (TikTok's `client_key`), `refreshUrl` (Figma), `clientAuth`, " +
      '`authorizationParams` and `tokenParams`, `api.authFailure` (how an API refuses a token when it does not answer 401: ' +
      "Graph API's 400 with error code 190, Slack's `ok:false` with `token_revoked`; the proxy renews and resends once, as for a 401). " +
      '`category` sorts providers into the sections below.',
    '',
    '| Kind | Providers |',
    '| --- | --- |',
    ...KINDS.map((k) => `| [${KIND_TITLES[k]}](#${anchor(KIND_TITLES[k])}) | ${count(k)} |`),
    `| [Not supported yet](#not-supported-yet) | ${unsupported.length} |`,
    '',
    '## Index',
    '',
    '| Id | Name | Kind | Category |',
    '| --- | --- | --- | --- |',
    ...providers.map((p) => `| ${code(p.id)} | ${cell(p.name)} | ${code(p.kind)} | ${p.category ?? ''} |`),
  ];
  for (const kind of KINDS) {
    const ofKind = providers.filter((p) => p.kind === kind);
    if (ofKind.length === 0) continue;
    lines.push('', `## ${KIND_TITLES[kind]}`);
    for (const category of [...CATEGORIES, undefined]) {
      const group = ofKind.filter((p) => p.category === category);
      if (group.length === 0) continue;
      lines.push('', `### ${KIND_TITLES[kind].split(' (')[0]}: ${category ?? 'other'}`, '', ...tableHead(kind), ...group.map(row));
    }
  }
  if (aliases.length > 0) {
    lines.push(
      '',
      '## Aliases',
      '',
      'Other ids for the providers above (from `packages/core/catalog/aliases/`), so that apps moving from Fusebit EveryAuth keep ' +
        'their service ids: a service named by an alias uses that provider.',
      '',
      '| Alias | Provider |',
      '| --- | --- |',
      ...aliases.map((a) => `| ${code(a.id)} | ${code(a.aliasOf!)} |`),
    );
  }
  lines.push(
    '',
    '## Not supported yet',
    '',
    'Providers whose flow needs something EveryAuth cannot express yet (kept in `scripts/unsupported-providers.json`).',
    '',
    '| Provider | Why not yet |',
    '| --- | --- |',
    ...unsupported.map((u) => `| [${cell(u.name)}](${u.docs}) | ${cell(u.reason)} |`),
  );
  return `${lines.join('\n')}\n`;
}

/** GitHub's heading anchor: lowercase, punctuation dropped, spaces to dashes. */
function anchor(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replace(/ /g, '-');
}

/** Whether the file on disk equals what the catalog renders to. */
export function checkProvidersDoc(catalog: Map<string, CatalogEntry> = loadBuiltInCatalog(), path: string = PROVIDERS_DOC): boolean {
  let current: string;
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    return false;
  }
  return current === renderProvidersDoc(catalog);
}

function main(argv: string[]): number {
  const catalog = loadBuiltInCatalog();
  if (argv.includes('--check')) {
    if (checkProvidersDoc(catalog)) {
      console.log('docs/providers.md is up to date.');
      return 0;
    }
    console.error('docs/providers.md is out of date with packages/core/catalog/; run: npx tsx scripts/gen-provider-docs.ts');
    return 1;
  }
  writeFileSync(PROVIDERS_DOC, renderProvidersDoc(catalog));
  console.log('Wrote docs/providers.md.');
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
