// `npm run demo`: WLLM against local stand-ins for Asana and Google, with a fresh embedded EveryAuth.
import { runDemo } from '../stand-ins/demo.ts';
import { createApp } from './app.js';
import { SERVICES } from './demo-services.js';

await runDemo({
  name: 'Work Less Live More',
  services: SERVICES,
  createApp: ({ asanaApiUrl, googleRootUrl }) => createApp({ asanaApiUrl, googleRootUrl }),
});
