import cliProgress from 'cli-progress';
import type { Context } from './context.js';

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

/** Below this many items a bar would only flash by. */
const BAR_THRESHOLD = 300;

/**
 * Progress on stderr: a bar on a terminal for jobs of more than a few hundred items; otherwise,
 * when `lines` is set (long jobs whose logs matter, like key rotation), a line at every 10%.
 */
export function startProgress(ctx: Context, label: string, options: { lines?: boolean } = {}): Progress {
  const stderr = ctx.io.stderr;
  let bar: cliProgress.SingleBar | undefined;
  let lastStep = -1;
  return {
    update(done, total) {
      if (total < BAR_THRESHOLD && !bar) return;
      if (stderr.isTTY) {
        if (!bar) {
          bar = new cliProgress.SingleBar(
            {
              format: `${label} [{bar}] {percentage}% {value}/{total} {eta_formatted} left`,
              stream: stderr,
              hideCursor: true,
              clearOnComplete: false,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(total, done);
        }
        bar.setTotal(total);
        bar.update(done);
        return;
      }
      if (!options.lines) return;
      const step = total === 0 ? 10 : Math.floor((done / total) * 10);
      if (step > lastStep) {
        lastStep = step;
        stderr.write(`${label}: ${step * 10}% (${done}/${total})\n`);
      }
    },
    stop() {
      bar?.stop();
    },
  };
}
