// `npm run demo`: WLLM against local stand-ins for Asana and Google, with a fresh embedded EveryAuth.
import { runDemo } from '../stand-ins/demo.ts';
import { createApp } from './app.js';

await runDemo({
  name: 'Work Less Live More',
  services: [
    { id: 'asana', provider: 'asana', scopes: ['default'] },
    { id: 'google', provider: 'google', scopes: ['openid', 'email', 'profile', 'https://www.googleapis.com/auth/calendar.events'] },
  ],
  createApp: ({ asanaApiUrl, googleRootUrl }) => createApp({ asanaApiUrl, googleRootUrl }),
});
