export * from './broker.js';
export * from './errors.js';
export type { Provider, ProviderInput } from './catalog/schema.js';
export { ProviderSchema } from './catalog/schema.js';
export { loadBuiltInCatalog, parseProvider, resolveProviderUrls, type CatalogEntry } from './catalog/index.js';
export { discoverProvider } from './catalog/discovery.js';
export { LocalBroker, type LocalBrokerOptions } from './local-broker.js';
export { DEFAULT_REFRESH_POLICY, type ExpiringRefresh, type RefreshExpiringOptions, type RefreshPolicy } from './refresher.js';
export { sealedLabel } from './credentials.js';
export { escapeHtml, htmlDocument, renderConnectPage, type ConnectPageInput, type ConnectPageService } from './connect-page.js';
export type { CheckDueOptions } from './health.js';
export type { RenewIdleOptions } from './keep-alive.js';
export { DEFAULT_DEAD_AFTER_DAYS } from './dead-state.js';
export { KeyedLimit } from './keyed-limit.js';
export { backoffDelay, retry, sleep, type Backoff, type RetryOptions } from './retry.js';
export { ScheduledLoop, type ScheduledLoopOptions } from './loop.js';
export { openStore, SqlStore, type Store } from './store/index.js';
export { LISTED_COLUMNS, TOKEN_COLUMNS, type ListedIdentityRow, type TokenRow } from './store/store.js';
export { openSqliteStore } from './store/sqlite.js';
export { runMigrations } from './store/migrations/index.js';
export * from './vault.js';
export { IDENTITY_ID_PREFIX, equalInConstantTime, isIdentityId, randomToken, sha256, sortableId } from './ids.js';
export { finishedUrl as validateFinishedUrl, withQuery } from './validate.js';
export { EnvSchema, configVariables, readEnv, type Env, type EnvVariable, type VariableDoc } from './env.js';
export {
  ConfigFile,
  configFileFields,
  DEFAULT_DIR,
  openBroker,
  readConfigFile,
  resolveConfig,
  Profile as ConfigProfile,
  type ResolveOptions,
  type ResolvedConfig,
  type ResolvedEmbedded,
  type ResolvedRemote,
} from './config.js';
export * from './rekey.js';
export * from './bundle.js';
export { RemoteBroker, TIMEOUT_HEADER, type RemoteBrokerOptions } from './remote-broker.js';
export {
  APP_USER_ID,
  FORM_CSRF_FIELD,
  formPageHeaders,
  applyCredential,
  isFormKind,
  newFormCsrf,
  postedFields,
  renderCredentialForm,
  sameCsrf,
  withHelpers,
  type CredentialForm,
  type SignedRequest,
} from './kinds/index.js';
export type { Kind } from './catalog/kinds.js';
export { KINDS } from './catalog/kinds.js';
export { CATEGORIES, type Category } from './catalog/categories.js';
export { filterProviders, type ProviderFilter } from './catalog/index.js';
export { DEFAULT_PROXY_OPTIONS, type ProxiedResponse, type ProxyInit, type ProxyOptions } from './proxy/fetch.js';
export type { FieldsInit, ResponseFields } from './proxy/headers.js';
export type { RetryBudget } from './proxy/retry.js';
