/** --threads N: the worker count for the kernels, passed through the environment variable the pool reads. */
export function applyThreads(n: number): void {
  process.env.RESNET_TS_THREADS = String(n);
}
