// The shared-memory protocol between the main thread (pool.ts), the supervisor (supervisor.ts) and the compute
// workers (worker.ts). One Int32Array `ctrl` over a SharedArrayBuffer, indices below.
//
// A call (one parallelFor) has a sequence number `seq`. Units are handed out through WORD = tag << 20 | next, with
// tag = seq & 0xfff: a thread takes unit `next` by compare-and-swap of WORD to WORD + 1, and only while the tag
// is its call's, so a worker that wakes up late for an old call can never take a unit of a newer one. DONE counts
// finished units (failed ones too); whoever finishes the last one notifies DONE. BUSY[i] is 1 while worker i may
// hold a unit (set before it tries to take one, cleared after its last), so after closing WORD the main thread
// knows when no worker can still write into the call's buffers. ALIVE[i] is cleared by the supervisor when worker
// i exits, and DEAD counts exits; both then notify DONE, which is what wakes a main thread blocked in Atomics.wait.
// A worker that dies holding a unit (ALIVE[i] = 0 while BUSY[i] = 1) fails the call; one that dies idle costs
// nothing but a rebuild of the pool. READY[i] is set once worker i has loaded its modules (a worker that dies
// before that is a startup failure: the pool falls back to one thread after two of those). HEARTBEAT is the time of
// the supervisor's last beat (every 50 ms, see beatClock), so that a main thread waiting on workers whose supervisor has gone can tell; a
// supervisor that exits normally (process.exit, an uncaught error) also sets SUPERVISOR_EXITED on its way out.

export const SEQ = 0;
export const WORD = 1;
export const DONE = 2;
/** 1 when a task function threw in the current call (the message follows on the worker's port). */
export const ERR = 3;
export const DEAD = 4;
export const UNITS = 5;
/** Units run by workers since the pool started (statistics, for tests). */
export const WORKER_UNITS = 6;
export const HEARTBEAT = 7;

/**
 * The clock of HEARTBEAT: milliseconds on a clock every thread of the process shares (timeOrigin + now), modulo
 * 2^31 so that it fits the Int32Array. The supervisor stores it; the main thread computes the age of the last beat.
 */
export const beatClock = (): number => Math.floor(performance.timeOrigin + performance.now()) % 0x80000000;
/** Milliseconds since beat `b` (modulo 2^31; a negative skew between threads reads as 0). */
export const beatAge = (b: number): number => {
  const d = (beatClock() - b + 0x80000000) % 0x80000000;
  return d > 0x40000000 ? 0 : d;
};
export const MAX_WORKERS = 256;
/** Per-worker flags: BUSY + i, ALIVE + i, READY + i. */
export const BUSY = 8;
export const ALIVE = BUSY + MAX_WORKERS;
export const READY = ALIVE + MAX_WORKERS;
/** Set (and DONE notified) by the supervisor as it exits, so that a waiting main thread knows at once. */
export const SUPERVISOR_EXITED = READY + MAX_WORKERS;
/**
 * The doorbell: bumped and notified by the main thread after it has posted a call's messages, so that a worker
 * waiting in Atomics.wait between back-to-back calls takes the next message off its port at once (worker.ts).
 */
export const BELL = SUPERVISOR_EXITED + 1;
export const CTRL_LENGTH = BELL + 1;

export const TAG_SHIFT = 20;
export const UNIT_MASK = (1 << TAG_SHIFT) - 1;
export const MAX_UNITS = UNIT_MASK;

/** The WORD value that opens call `seq` at unit 0. */
export const openWord = (seq: number): number => ((seq & 0xfff) << TAG_SHIFT) | 0;

/** Opens call `seq` of `units` units: clears DONE and ERR, then publishes the unit count, the seq and the claim word. */
export function openCall(ctrl: Int32Array, seq: number, units: number): void {
  Atomics.store(ctrl, DONE, 0);
  Atomics.store(ctrl, ERR, 0);
  Atomics.store(ctrl, UNITS, units);
  Atomics.store(ctrl, SEQ, seq);
  Atomics.store(ctrl, WORD, openWord(seq));
}

/** Message from the main thread to a worker: run units of this call. */
export interface RunMessage {
  type: 'run';
  seq: number;
  kernel: string;
  bufs: Record<string, Float32Array | Float64Array | null>;
  params: unknown;
  units: number;
  /**
   * When the pool is traced (setPoolTracer in pool.ts): a shared array of TRACE_SLOTS numbers per worker, which
   * worker i fills from TRACE_SLOTS · i with what it did in this call (see TraceSlot).
   */
  trace?: Float64Array;
}

/** What a worker records in a traced call, per slot: times on traceClock(), in ms. */
export const TraceSlot = {
  /** When its Atomics.wait on the doorbell returned, or its previous call ended (NaN: the event loop brought the message). */
  Woke: 0,
  /** When it had the message in hand. */
  Received: 1,
  /** When its first unit started (NaN: it took none). */
  FirstUnit: 2,
  /** When its last unit ended. */
  LastUnit: 3,
  /** Units it ran. */
  Units: 4,
  /** Milliseconds spent in units. */
  UnitMs: 5,
} as const;
export const TRACE_SLOTS = 6;

/** A clock every thread of the process shares (ms): for traces. */
export const traceClock = (): number => performance.timeOrigin + performance.now();

/** Message from a worker to the main thread: a task function threw. */
export interface ErrorMessage {
  type: 'error';
  seq: number;
  worker: number;
  message: string;
}

/** Message from the supervisor to the main thread: a worker exited. */
export interface ExitMessage {
  type: 'exit';
  worker: number;
  code: number;
  error: string | null;
}

/**
 * How long a thread spins on a word before it sleeps in Atomics.wait (ms): the calling thread on DONE at the end of a
 * call, a worker on the doorbell after one. A futex wake costs ~15 µs, a tenth of a short call, and a forward's calls
 * come back to back (1×1/2 64→128 @56 on 2 threads, near-idle machine, wall p25 of three runs: 259–300 → 219–263 µs).
 */
export const SPIN_MS = 0.05;

/** Spins until ctrl[i] differs from v (true) or SPIN_MS have passed (false). */
export function spinWhile(ctrl: Int32Array, i: number, v: number): boolean {
  const end = performance.now() + SPIN_MS;
  for (let k = 1; ; k++) {
    if (Atomics.load(ctrl, i) !== v) return true;
    if ((k & 63) === 0 && performance.now() > end) return false;
  }
}

/**
 * Takes units of call `seq` until none are left (or the call is closed), running `run(u)` for each. A unit that
 * throws is reported through `onError` before it is counted in DONE (so whoever sees DONE complete also sees the
 * error), and the remaining units still run.
 */
export function drainUnits(ctrl: Int32Array, seq: number, units: number, run: (u: number) => void, onError: (e: unknown) => void): void {
  const tag = seq & 0xfff;
  for (;;) {
    const v = Atomics.load(ctrl, WORD);
    if (v >>> TAG_SHIFT !== tag) break;
    const u = v & UNIT_MASK;
    if (u >= units) break;
    if (Atomics.compareExchange(ctrl, WORD, v, v + 1) !== v) continue;
    try {
      run(u);
    } catch (e) {
      onError(e);
    }
    if (Atomics.add(ctrl, DONE, 1) + 1 === units) Atomics.notify(ctrl, DONE);
  }
}
