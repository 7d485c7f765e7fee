/**
 * How far V8 lets the heap grow between full collections, for a process that runs the server and
 * nothing else (`everyauth serve`).
 */
import { setFlagsFromString } from 'node:v8';

/**
 * Growth allowed between full collections, in percent of what the last one left live. V8's own
 * factor, which it picks from its GC and allocation speeds, reaches 300 % for a heap this small:
 * a server whose live heap is about 32 MB let garbage pile up to about 130 MB before marking, and
 * under bench:scale's 100-row pages its RSS went from 140 MiB to 215 MiB. At 50 % the same load
 * peaked at about 147 MiB; the price is a full collection more often (about every 16 MB promoted
 * instead of every 100 MB), each mostly concurrent marking of the same 32 MB.
 */
export const SERVER_HEAP_GROWING_PERCENT = 50;

/**
 * Sets V8's heap growing factor for this process, unless the operator chose one in the process's
 * flags (`node --heap-growing-percent=…` or NODE_OPTIONS). V8 reads the flag each time it sets the
 * next full collection's limit, so it applies from the next collection on.
 */
export function limitHeapGrowth(percent = SERVER_HEAP_GROWING_PERCENT): void {
  const chosen = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((flag) => /heap[-_]growing[-_]percent/.test(flag));
  if (!chosen) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
