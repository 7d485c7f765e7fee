#!/usr/bin/env node
import { main } from './program.js';

const code = await main(process.argv.slice(2));
// Results are written synchronously to files and pipes on POSIX, so exiting now loses nothing,
// and an idle keep-alive socket or pool cannot hold the command open.
process.exit(code);
