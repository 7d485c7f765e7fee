export {
  createSandbox,
  startSandbox,
  accountClaims,
  SANDBOX_PROVIDER_ID,
  SANDBOX_SCOPES,
  type Sandbox,
  type SandboxOptions,
} from './sandbox.js';
export {
  sandboxRoutes,
  registerSandboxService,
  enableSandbox,
  sandboxWanted,
  serverSandbox,
  SANDBOX_PATH,
  SANDBOX_SERVICE_ID,
  SANDBOX_CLIENT_ID,
  type SandboxRoutesOptions,
} from './plugin.js';
