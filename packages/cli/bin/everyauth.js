#!/usr/bin/env node
// The `everyauth` command. This file exists before the build, so `npm install` can link it
// (npm links nothing when a bin's target is missing, and dist/ is made by `npm run build`).
import { existsSync } from 'node:fs';

const target = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(target)) {
  process.stderr.write('everyauth is not built yet: run `npm run build` at the root of the repository, then try again.\n');
  process.exit(1);
}
await import(target.href);
