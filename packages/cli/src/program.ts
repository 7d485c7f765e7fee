import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { registerApiKey } from './commands/apikey.js';
import { registerBundle } from './commands/bundle.js';
import { registerIdentity } from './commands/identity.js';
import { registerIdentityLifecycle } from './commands/identity-lifecycle.js';
import { registerInit } from './commands/init.js';
import { registerKeys } from './commands/keys.js';
import { registerProvider } from './commands/provider.js';
import { registerServe } from './commands/serve.js';
import { registerService } from './commands/service.js';
import type { CliIo } from './context.js';
import { reportError } from './errors.js';
import { colorsFor } from './output.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/** The `everyauth` command tree. Errors are thrown (exitOverride), never turned into process.exit here. */
export function buildProgram(io: CliIo): Command {
  const errColor = colorsFor(io.stderr, io.env);
  const program = new Command('everyauth')
    .description("EveryAuth: OAuth credentials for your app's users, stored encrypted and always fresh")
    .version(version, '-v, --version')
    .option('--profile <name>', 'profile of .everyauth/config.json to use (default: the active one, or EVERYAUTH_PROFILE)')
    .option('--dir <path>', 'folder holding config.json (default .everyauth, or EVERYAUTH_DIR)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    // Settings made before subcommands are added are inherited by them.
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => write(errColor.red(text)),
    })
    .showHelpAfterError('(add --help for usage)')
    .showSuggestionAfterError(true);

  registerInit(program, io);
  registerProvider(program, io);
  registerService(program, io);
  registerIdentityLifecycle(registerIdentity(program, io), io);
  registerBundle(program, io);
  registerKeys(program, io);
  registerApiKey(program, io);
  registerServe(program, io);
  program.addHelpText(
    'after',
    '\nStart with `everyauth init`. Every listing and getter takes `-o json` for scripts.\n' +
      'Exit codes: 0 success, 1 failure, 2 usage error.',
  );
  return program;
}

/** Runs the CLI on `argv` (without the node and script entries) and returns the exit code. */
export async function main(
  argv: string[],
  io: CliIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    return reportError(error, io.stderr, colorsFor(io.stderr, io.env), io.env);
  }
}
