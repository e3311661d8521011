import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { memory, zeros } from '../../src/index.js';

describe('memory(): live-tensor and byte counters without dispose()', () => {
  it('counts created tensors and bytes, and live counts fall after gc', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const m0 = memory();
    let keep: unknown[] = [];
    for (let i = 0; i < 100; i++) keep.push(zeros([1000]));
    const m1 = memory();
    expect(m1.createdTensors - m0.createdTensors).toBe(100);
    expect(m1.createdBytes - m0.createdBytes).toBe(100 * 4000);
    expect(m1.liveTensors - m0.liveTensors).toBeGreaterThanOrEqual(100);
    keep = [];
    void keep;
    // FinalizationRegistry callbacks run after a gc, on a later turn of the event loop
    for (let i = 0; i < 20 && memory().liveTensors > m0.liveTensors + 50; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(memory().liveTensors).toBeLessThanOrEqual(m0.liveTensors + 50);
    expect(memory().liveBytes).toBeLessThan(m1.liveBytes - 50 * 4000);
  });
});
