// `npm run demo:proxy`: WLLM against local stand-ins, with EveryAuth as a server: the Asana and Google
// SDKs point at its /v1/proxy/... with an API key, so the app never holds a token.
import { runDemo } from '../stand-ins/demo.ts';
import { createApp } from './app.js';
import { SERVICES } from './demo-services.js';

await runDemo({ name: 'Work Less Live More (through the EveryAuth proxy)', mode: 'proxy', services: SERVICES, createApp });
