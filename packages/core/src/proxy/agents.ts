import { Agent } from 'undici';
import { checkedLookup } from './address.js';
import type { ProxyOptions } from './fetch.js';

/** How the connections to a provider's API are opened and how long they may wait: the proxy's options of that name. */
export type ApiAgentOptions = Pick<ProxyOptions, 'connectTimeoutMs' | 'firstByteTimeoutMs' | 'idleTimeoutMs' | 'lookup'>;

/**
 * The connection pools that carry credentials to providers' APIs (the proxy, and the test request
 * of a typed-in credential), each socket opened through `checkedLookup`: one pool for hosts that
 * may resolve to the operator's private network, one for all others, so no connection is shared
 * across the rule (address.ts).
 */
export class ApiAgents {
  private readonly strict: Agent;
  private readonly privateNetwork: Agent;

  constructor(options: ApiAgentOptions) {
    const agent = (privateNetwork: boolean) =>
      new Agent({
        connect: { timeout: options.connectTimeoutMs, lookup: checkedLookup(options.lookup, privateNetwork) },
        headersTimeout: options.firstByteTimeoutMs,
        bodyTimeout: options.idleTimeoutMs,
      });
    this.strict = agent(false);
    this.privateNetwork = agent(true);
  }

  /** The pool for a host the service's operator chose (`privateNetwork`, see `Services.apiHostsChosenByService`), or any other. */
  for(privateNetwork: boolean): Agent {
    return privateNetwork ? this.privateNetwork : this.strict;
  }

  async close(): Promise<void> {
    await Promise.all([this.strict.close(), this.privateNetwork.close()]);
  }
}
