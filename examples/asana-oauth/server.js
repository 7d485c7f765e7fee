// `npm start`: the app against the real Asana, with the EveryAuth that `everyauth init` set up.
import { createApp } from './app.js';

const port = Number(process.env.PORT ?? 3000);
createApp().listen(port, () => {
  console.log(`Asana OAuth on EveryAuth is listening on http://localhost:${port}/`);
});
