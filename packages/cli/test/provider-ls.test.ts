import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, newProject, type Project } from './support/cli.js';

let p: Project;
beforeAll(async () => {
  assertBuilt();
  p = newProject();
  expect((await p.run(['init', '--base-url', 'http://127.0.0.1:3999'])).code).toBe(0);
});
afterAll(() => p?.remove());

interface Row {
  id: string;
  name: string;
  kind: string;
  category?: string;
  custom: boolean;
}

describe('provider ls filters', () => {
  it('--kind api_key --search mail: only API-key providers, the ones named for mail first', async () => {
    const rows = (await p.json(['provider', 'ls', '--kind', 'api_key', '--search', 'mail'])) as Row[];
    const ids = rows.map((r) => r.id);
    expect(rows.every((r) => r.kind === 'api_key')).toBe(true);
    expect(ids).toEqual(expect.arrayContaining(['mailerlite']));
    expect(ids).not.toContain('mailgun'); // Basic, not api_key
    expect(ids).not.toContain('mailchimp'); // OAuth 2
    // Ranked: every provider whose id or name has "mail" comes before those matched in the notes only.
    const named = rows.map((r) => `${r.id} ${r.name}`.toLowerCase().includes('mail'));
    expect(named.indexOf(false) === -1 || named.slice(named.indexOf(false)).every((n) => !n)).toBe(true);
  });

  it('--kind basic --search mail finds Mailgun; --category email lists only email providers', async () => {
    expect(((await p.json(['provider', 'ls', '--kind', 'basic', '--search', 'mail'])) as Row[]).map((r) => r.id)).toContain('mailgun');
    const email = (await p.json(['provider', 'ls', '--category', 'email'])) as Row[];
    expect(email.length).toBeGreaterThan(5);
    expect(new Set(email.map((r) => r.category))).toEqual(new Set(['email']));
  });

  it('shows kind and category columns in the table', async () => {
    const table = await p.run(['provider', 'ls', '--kind', 'oauth1']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+KIND\s+CATEGORY\s+SOURCE\s+DOCS/);
    expect(table.stdout).toContain('trello');
    expect(table.stdout).not.toContain('api_key');
  });

  it('refuses an unknown kind or category with the list of valid ones, exit code 2', async () => {
    const kind = await p.run(['provider', 'ls', '--kind', 'apikey']);
    expect(kind.code).toBe(2);
    expect(kind.stderr).toContain('--kind must be one of: oauth2, oauth2_client_credentials, api_key, basic, oauth1, jwt');
    const category = await p.run(['provider', 'ls', '--category', 'mail']);
    expect(category.code).toBe(2);
    expect(category.stderr).toContain('--category must be one of:');
  });

  it('says what matched nothing', async () => {
    const none = await p.run(['provider', 'ls', '--kind', 'jwt', '--search', 'no-such-provider']);
    expect(none.code).toBe(0);
    expect(none.stdout + none.stderr).toContain('No provider matches jwt, "no-such-provider".');
  });
});
