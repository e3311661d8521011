/**
 * A one-line progress bar on a TTY (rewritten in place), plain periodic lines otherwise.
 */
import { formatDuration } from '../train/run.js';

export { formatDuration };

export interface ProgressState {
  label: string;
  done: number;
  total: number;
  /** Extra fields shown after the bar, e.g. { loss: '0.4312', acc: '85.1%' }. */
  fields: Record<string, string>;
  /** Items per second (images/s) so far. */
  rate: number;
  /** Seconds left at the current rate. */
  etaSeconds: number;
}

export class Progress {
  private lastPlain = 0;
  private readonly tty: boolean;
  constructor(private readonly out: NodeJS.WriteStream = process.stderr, tty?: boolean) {
    this.tty = tty ?? Boolean(out.isTTY);
  }

  render(s: ProgressState): string {
    const width = 24;
    const frac = s.total > 0 ? Math.min(1, s.done / s.total) : 0;
    const filled = Math.round(frac * width);
    const bar = '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? (filled === width ? '=' : '>') : '') + ' '.repeat(width - filled);
    const fields = Object.entries(s.fields).map(([k, v]) => `${k} ${v}`).join('  ');
    return `${s.label} [${bar}] ${s.done}/${s.total}  ${fields}  ${s.rate.toFixed(1)} img/s  ETA ${formatDuration(s.etaSeconds)}`;
  }

  update(s: ProgressState): void {
    if (this.tty) {
      this.out.write(`\r\x1b[2K${this.render(s)}`);
      return;
    }
    // not a TTY: a plain line about every 10% of the way, and at the end
    const step = Math.max(1, Math.floor(s.total / 10));
    if (s.done === s.total || s.done - this.lastPlain >= step) {
      this.lastPlain = s.done;
      this.out.write(`${this.render(s)}\n`);
    }
  }

  /** Ends the bar's line (TTY) and resets the plain-line counter. */
  end(): void {
    if (this.tty) this.out.write('\n');
    this.lastPlain = 0;
  }
}
