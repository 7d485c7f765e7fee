export { consoleRoutes, CONSOLE_ASSETS_DIR, CONSOLE_PATH, type ConsoleRoutesOptions } from './plugin.js';
