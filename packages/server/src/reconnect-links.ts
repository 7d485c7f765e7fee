/**
 * Reconnect links: a URL that re-authorizes one identity (same id, tags and metadata; new tokens;
 * back to `active`). The link carries a vault-sealed ticket, so any replica can open it and nobody
 * can alter it; it starts a fresh, browser-bound authorization each time it is opened. Whoever opens
 * it must come back with the same provider account as the identity's (unless the ticket allows
 * another), so a leaked link cannot swap in someone else's account.
 */
import type { Vault } from '@everyauth/core';

const RECONNECT_AAD = 'reconnect-link';

/** How long a reconnect link works unless told otherwise: long enough to sit in an e-mail. */
export const RECONNECT_LINK_LIFETIME_MS = 7 * 24 * 3600_000;

export interface ReconnectTicket {
  /** The identity id. */
  i: string;
  /** Where the browser goes after the callback. */
  f?: string;
  /** 1: another account at the provider may take the identity's place. */
  a?: 1;
  /** Expiry, epoch ms. */
  e: number;
}

export interface ReconnectTicketOptions {
  finishedUrl?: string;
  allowAccountChange?: boolean;
  lifetimeMs?: number;
}

export function reconnectLink(
  publicUrl: string,
  vault: Vault,
  identityId: string,
  options: ReconnectTicketOptions = {},
): { url: string; expiresAt: string } {
  const e = Date.now() + (options.lifetimeMs ?? RECONNECT_LINK_LIFETIME_MS);
  const ticket: ReconnectTicket = { i: identityId, e, ...(options.finishedUrl ? { f: options.finishedUrl } : {}) };
  if (options.allowAccountChange) ticket.a = 1;
  const sealed = vault.seal(JSON.stringify(ticket), RECONNECT_AAD);
  return { url: `${publicUrl}/v1/reconnect?t=${sealed}`, expiresAt: new Date(e).toISOString() };
}

/** The ticket, or undefined when the link was not made here or was altered. */
export function openReconnectTicket(vault: Vault, sealed: string): ReconnectTicket | undefined {
  try {
    return JSON.parse(vault.open(sealed, RECONNECT_AAD)) as ReconnectTicket;
  } catch {
    return undefined;
  }
}
