// The one list of modules that register kernel tasks (see parallel.ts). The main thread (src/core.ts) and every
// pool worker (src/parallel/worker.ts) import this file, so a task registered on one side exists on the other;
// test/parallel/tasks.test.ts checks that every name registered on the main thread resolves in a worker. A new
// module that calls registerTask goes here.

import './gemm.js';
import './fc.js';
import './conv2d.js';
import './winograd.js';
import './winograd-fused.js';
import './pool.js';
import './batchnorm.js';
import './elementwise.js';
import './optim.js';

export { registeredTaskNames } from './parallel.js';
