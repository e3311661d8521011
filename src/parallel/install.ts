// Side-effect import for the Node entry point: kernels use the worker pool (see ./index.ts).
import { installParallel } from './index.js';

installParallel();
