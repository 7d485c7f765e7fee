import { createEveryAuth, type EveryAuth } from './everyauth.js';
import { coreErrors } from '@everyauth/core/errors';

export { EveryAuth, createEveryAuth, type EveryAuthConfig, type PageOptions } from './everyauth.js';
export type { AuthorizeOptions, AuthorizeRequest, AuthorizeRouter } from './authorize.js';
export type { ConnectOptions } from './connect.js';
export { bindingCookieName } from './binding.js';
export * from '@everyauth/core/errors';
export type { Broker, FreshIdentity, IdentityFilter, IdentitySelector, IdentitySummary, Page, Tags } from '@everyauth/core';

/** The instance apps use: `import everyauth from '@everyauth/express'`. */
const instance: EveryAuth = createEveryAuth();

export const config = instance.config.bind(instance);
export const authorize = instance.authorize.bind(instance);
export const callbacks = instance.callbacks.bind(instance);
export const getIdentity = instance.getIdentity.bind(instance);
export const getIdentities = instance.getIdentities.bind(instance);
export const deleteIdentity = instance.deleteIdentity.bind(instance);
export const deleteIdentities = instance.deleteIdentities.bind(instance);
export const close = instance.close.bind(instance);

const everyauth = Object.assign(instance, coreErrors);

export default everyauth;
