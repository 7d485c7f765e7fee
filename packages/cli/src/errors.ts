import { CommanderError } from 'commander';
import { EveryAuthError, InvalidInput, NotFound, readEnv } from '@everyauth/core';
import type { Colors } from './output.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** The command line itself is wrong (a missing selector, a malformed k=v): exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose `--help` explains the right usage. */
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

const HINT = Symbol('everyauth.cli.hint');

/** Attaches what to do next to an error, when the command knows better than the generic hint (the service's name, say). */
export function withHint<E extends Error>(error: E, hint: string): E {
  return Object.assign(error, { [HINT]: hint });
}

/** What to do next, for errors whose message alone does not say it. */
function hintFor(error: EveryAuthError): string | undefined {
  const attached = (error as { [HINT]?: string })[HINT];
  if (attached) return attached;
  if (error instanceof NotFound) {
    switch (error.kind) {
      case 'service':
        return 'List services with `everyauth service ls`, or create one with `everyauth service set <id> --provider <provider> --client-id <id>`.';
      case 'provider':
        return 'List providers with `everyauth provider ls --search <text>`, or add one with `everyauth provider add <id> --issuer <url>`.';
      case 'identity':
        return 'List identities with `everyauth identity ls <service>`.';
      case 'api_key':
        return 'List API keys with `everyauth apikey ls`.';
      default:
        return undefined;
    }
  }
  if (error.code === 'decryption_failed') {
    return 'Check that this profile uses the master key the values were sealed with (EVERYAUTH_MASTER_KEY or the key file); `everyauth keys status` shows which keys are in use.';
  }
  if (error.code === 'ambiguous_identity') return 'Pass the identity id, or add --tenant-id / --tag to select one.';
  if (error instanceof InvalidInput && error.field?.startsWith('variables')) {
    return "A service's variables are set with `everyauth service set <service> --variable <name>=<value>`; `everyauth provider get <provider>` lists the provider's.";
  }
  return undefined;
}

/**
 * Prints an error on stderr and returns the process exit code: 2 for usage errors (commander's
 * and ours), 1 for everything else. EveryAuthErrors carry messages written for users; other errors
 * are unexpected, so they get a pointer to the debug switch.
 */
export function reportError(error: unknown, stderr: NodeJS.WritableStream, color: Colors, env: NodeJS.ProcessEnv): number {
  if (error instanceof CommanderError) {
    // Commander has already printed its message (or the help, for a missing subcommand) by then.
    return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  const label = color.red(color.bold('error:'));
  const debug = debugWanted(env);
  if (error instanceof UsageError) {
    stderr.write(`${label} ${error.message}\n`);
    stderr.write(`Run \`everyauth ${error.command ? `${error.command} ` : ''}--help\` for usage.\n`);
    return EXIT_USAGE;
  }
  if (error instanceof EveryAuthError) {
    stderr.write(`${label} ${error.message}${color.dim(` [${error.code}]`)}\n`);
    const hint = hintFor(error);
    if (hint) stderr.write(`${hint}\n`);
    if (debug && error.stack) stderr.write(`${error.stack}\n`);
    return EXIT_FAILURE;
  }
  const message = error instanceof Error ? error.message : String(error);
  stderr.write(`${label} ${message}\n`);
  if (debug && error instanceof Error && error.stack) stderr.write(`${error.stack}\n`);
  else stderr.write('Set EVERYAUTH_DEBUG=1 to see where it happened.\n');
  return EXIT_FAILURE;
}

/** EVERYAUTH_DEBUG, read on its own: a bad value there (or elsewhere) must not hide the error being reported. */
function debugWanted(env: NodeJS.ProcessEnv): boolean {
  try {
    return readEnv(env, ['EVERYAUTH_DEBUG']).EVERYAUTH_DEBUG === true;
  } catch {
    return false;
  }
}
