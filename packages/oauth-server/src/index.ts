export {
  createAuthorizationServer,
  startAuthorizationServer,
  accountClaims,
  type AuthorizationServer,
  type AuthorizationServerOptions,
  type ClientRegistration,
} from './authorization-server.js';
export { authorizeOverHttp, DEFAULT_LOGIN, type AuthorizeOptions, type PageAnswer } from './authorize-over-http.js';
export { listenOnLoopback, type LoopbackListener } from './http.js';
