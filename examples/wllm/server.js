// `npm start`: WLLM against the real Asana and Google, with the EveryAuth that `everyauth init` set up.
import { createApp } from './app.js';

const port = Number(process.env.PORT ?? 3000);
createApp().listen(port, () => {
  console.log(`Work Less Live More is listening on http://localhost:${port}/`);
});
