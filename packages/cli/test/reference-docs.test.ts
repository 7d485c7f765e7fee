import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configVariables } from '@everyauth/core';
import { CLI_DOC, EXPRESS_DOCS, PRODUCTION_DOC, REST_DOC, staleDocs } from '../../../scripts/gen-docs.js';

describe('generated reference docs', () => {
  it('docs/cli.md, docs/rest-api.md, docs/express-api/ and the configuration table of docs/production.md are what the code renders to now (npm run docs)', async () => {
    expect(await staleDocs()).toEqual([]);
  });

  it('cover what a newcomer looks for first', () => {
    expect(readFileSync(CLI_DOC, 'utf8')).toContain('## everyauth init\n');
    expect(readFileSync(CLI_DOC, 'utf8')).toContain('--base-url <url>');
    expect(readFileSync(REST_DOC, 'utf8')).toContain('### `GET /v1/services/{serviceId}/token`');
    expect(readFileSync(`${EXPRESS_DOCS}/README.md`, 'utf8')).toMatch(/errorHandler/);
    const production = readFileSync(PRODUCTION_DOC, 'utf8');
    for (const v of configVariables) expect(production).toContain(`| \`${v.name}\` |`);
  });
});
