/**
 * The part of oidc-provider 9 this package uses (the package ships no types, and
 * @types/oidc-provider describes an older major).
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  interface Interaction {
    uid: string;
    prompt: { name: string; details: Record<string, unknown> };
    params: Record<string, unknown>;
    session?: { accountId?: string };
    grantId?: string;
  }

  interface Grant {
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    addResourceScope(indicator: string, scope: string): void;
    save(): Promise<string>;
  }

  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    proxy: boolean;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    urlFor(name: string, options?: Record<string, unknown>): string;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: Record<string, unknown>,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
    Client: {
      validate(metadata: Record<string, unknown>): Promise<void>;
      find(id: string): Promise<{ clientName?: string } | undefined>;
    };
    /** Koa middleware around every request oidc-provider handles; `ctx.oidc.route` names the endpoint. */
    use(middleware: (ctx: any, next: () => Promise<void>) => Promise<void>): void;
    AccessToken: {
      find(id: string): Promise<{ isExpired: boolean; accountId: string; clientId: string; scope?: string } | undefined>;
    };
    RefreshToken: {
      find(id: string): Promise<{ isExpired: boolean; consumed?: unknown; grantId: string } | undefined>;
    };
    Grant: {
      new (properties: { accountId?: string; clientId: string }): Grant;
      find(id: string): Promise<Grant | undefined>;
    };
  }
}
