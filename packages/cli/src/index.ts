export { buildProgram, main } from './program.js';
export type { CliIo } from './context.js';
export { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
export { synopsis } from './synopsis.js';
