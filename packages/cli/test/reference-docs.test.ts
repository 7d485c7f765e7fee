import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLI_DOC, EXPRESS_DOCS, REST_DOC, staleDocs } from '../../../scripts/gen-docs.js';

describe('generated reference docs', () => {
  it('docs/cli.md, docs/rest-api.md and docs/express-api/ are what the code renders to now (npm run docs)', async () => {
    expect(await staleDocs()).toEqual([]);
  });

  it('cover what a newcomer looks for first', () => {
    expect(readFileSync(CLI_DOC, 'utf8')).toContain('## everyauth init\n');
    expect(readFileSync(CLI_DOC, 'utf8')).toContain('--base-url <url>');
    expect(readFileSync(REST_DOC, 'utf8')).toContain('### `GET /v1/services/{serviceId}/token`');
    expect(readFileSync(`${EXPRESS_DOCS}/README.md`, 'utf8')).toMatch(/errorHandler/);
  });
});
