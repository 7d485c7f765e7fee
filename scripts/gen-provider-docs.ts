/**
 * Generates docs/providers.md from the built-in catalog (packages/core/catalog/*.json).
 *
 *   npx tsx scripts/gen-provider-docs.ts          write docs/providers.md
 *   npx tsx scripts/gen-provider-docs.ts --check  exit 1 when docs/providers.md is out of date
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadBuiltInCatalog, type Provider } from '../packages/core/src/catalog/index.js';

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

/** The whole of docs/providers.md for a catalog. */
export function renderProvidersDoc(catalog: Map<string, Provider>): string {
  const providers = [...catalog.values()].sort((a, b) => a.id.localeCompare(b.id));
  const lines = [
    '# Providers',
    '',
    `EveryAuth's built-in catalog has ${providers.length} providers, one data file each in \`packages/core/catalog/\`. ` +
      'This page is generated from those files by `npx tsx scripts/gen-provider-docs.ts`; do not edit it by hand. ' +
      'Any other OpenID Connect or RFC 8414 authorization server can be added by discovery from its issuer URL.',
    '',
    'Refresh: "rotating" means every refresh returns a new refresh token, "yes" that the refresh token is kept, ' +
      '"no" that access tokens expire without a refresh token, "no expiry" that access tokens do not expire, ' +
      '"new grant" that EveryAuth repeats the grant before the token expires.',
    '',
    'Kind: how the credential is obtained (docs/kinds.md): `oauth2` the authorization-code flow, ' +
      '`oauth2_client_credentials` a token for the app itself, `api_key` and `basic` a form the user fills in, ' +
      '`jwt` a service account, `oauth1` the OAuth 1.0a flow.',
    '',
    '| Provider | Kind | Scopes example | PKCE | Refresh | Notes |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const p of providers) {
    const name = `[${cell(p.name).replace(/[[\]]/g, '\\$&')}](${p.docs}) (${code(p.id)})`;
    const pkce = p.kind !== 'oauth2' ? '—' : p.pkce ? 'yes' : 'no';
    lines.push(`| ${name} | ${code(p.kind)} | ${scopesExample(p)} | ${pkce} | ${refreshSummary(p)} | ${notesCell(p)} |`);
  }
  return `${lines.join('\n')}\n`;
}

/** Whether the file on disk equals what the catalog renders to. */
export function checkProvidersDoc(catalog: Map<string, Provider> = loadBuiltInCatalog(), path: string = PROVIDERS_DOC): boolean {
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
      console.log(`docs/providers.md is up to date (${catalog.size} providers).`);
      return 0;
    }
    console.error('docs/providers.md is out of date with packages/core/catalog/; run: npx tsx scripts/gen-provider-docs.ts');
    return 1;
  }
  writeFileSync(PROVIDERS_DOC, renderProvidersDoc(catalog));
  console.log(`Wrote docs/providers.md (${catalog.size} providers).`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
