import type Provider from 'oidc-provider';

let providerClass: Promise<typeof Provider> | undefined;

/**
 * oidc-provider, loaded on first use: every program importing @everyauth/server (the CLI's
 * commands included) would otherwise load it, and print its import-time "Unsupported runtime"
 * notice on Node 20, which it runs on fine; that one notice is dropped here.
 */
export function loadProvider(): Promise<typeof Provider> {
  providerClass ??= (async () => {
    const { warn } = console;
    console.warn = (...args: unknown[]) => void (String(args[0]).startsWith('oidc-provider WARNING: Unsupported runtime') || warn(...args));
    try {
      return (await import('oidc-provider')).default;
    } finally {
      console.warn = warn;
    }
  })();
  return providerClass;
}
