/**
 * @module cli/progress
 * A one-line progress bar on a terminal. Off a terminal (a pipe, a log file, CI) it draws nothing, so that
 * scripts read clean output; commands print one line per finished item instead.
 */
export interface ProgressBar {
  /** `fraction` is 0..1, or null when the total is unknown. */
  update(fraction: number | null, detail?: string): void;
  /** Replaces the bar with a final line. */
  finish(line: string): void;
}

export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

const WIDTH = 30;

export function createProgressBar(stream: ProgressStream, label: string): ProgressBar {
  if (!stream.isTTY) {
    return { update: () => undefined, finish: (line) => void stream.write(`${line}\n`) };
  }
  let lastDrawn = '';
  const draw = (text: string): void => {
    // A pseudo-terminal without a size reports 0 columns.
    const columns = stream.columns !== undefined && stream.columns >= 20 ? stream.columns : 80;
    const line = text.length >= columns ? `${text.slice(0, columns - 2)}…` : text;
    if (line !== lastDrawn) {
      stream.write(`\r\x1b[2K${line}`);
      lastDrawn = line;
    }
  };
  return {
    update(fraction, detail = '') {
      if (fraction === null) {
        draw(`${label} ${detail}`);
        return;
      }
      const clamped = Math.min(1, Math.max(0, fraction));
      const filled = Math.round(clamped * WIDTH);
      draw(`${label} [${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${(clamped * 100).toFixed(0).padStart(3)}% ${detail}`);
    },
    finish(line) {
      stream.write(`\r\x1b[2K${line}\n`);
    },
  };
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) {
    return `${bytes} B`;
  }
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
