// The same as bench/ab-train.mjs (which prints the step's wall and CPU times, the phases' CPU times and the
// losses), under the name earlier bench/README entries use:
//   node bench/ab-step.mjs OLD_DIST NEW_DIST [r18|cifar|fmnist|deg56] [threads] [steps]
import './ab-train.mjs';
