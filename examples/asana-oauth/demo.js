// `npm run demo`: the app against a local stand-in for Asana, with a fresh embedded EveryAuth.
import { runDemo } from '../stand-ins/demo.ts';
import { createApp } from './app.js';

await runDemo({
  name: 'Asana OAuth on EveryAuth',
  services: [{ id: 'asana', provider: 'asana', scopes: ['openid', 'email', 'profile', 'default'] }],
  createApp: ({ asanaUrl }) => createApp({ asanaUrl }),
});
