// 2-D convolution kernels (PyTorch conv2d), NCHW activations and OIHW weights.
//
//   x: (N, C, H, W) · w: (O, C/groups, kH, kW) · bias: (O) → y: (N, O, oH, oW)
//
// Paths:
//   Winograd F(4×4, 3×3) (winograd.ts) for stride-1, dilation-1, ungrouped 3×3 convolutions of sufficient size,
//     forward and input gradient (the input gradient of such a conv is itself one: see winograd.ts).
//   im2col + GEMM otherwise, per image and per group, over
//     col_g: (K = C/groups·kH·kW) × (oH·oW), row index k = (ci·kH + ky)·kW + kx
//     forward:          y_g  (O/g × oHW)  = w_g (O/g × K) · col_g            (+ bias, folded into the GEMM's C)
//     backward input:   dcol (K × oHW)    = w_gᵀ · dy_g (float64),  then col2im adds dcol into a float64 dx
//     backward weight:  dw_g (O/g × K)    = Σ_n dy_g,n · col_g,nᵀ  (one float64 running sum over all images)
//   1×1 convolutions with stride 1 and no padding skip im2col: x_g itself is the (C/g × HW) matrix.
// Groups are handled by offsets into the same buffers (no copies of x or w per group). Padding is skipped in
// im2col/col2im, never materialized in a padded copy of x.
//
// Where the code is (plan → pack → microkernel):
//   conv2d/plan.ts      parameters, path choice (Winograd or im2col + GEMM), dead taps, units of work per direction
//   conv2d/pack.ts      scratch, im2col / col2im, the GEMM's B panels packed straight from x (packIm2col)
//   conv2d/forward.ts, conv2d/backward.ts   the units and the public kernels
//   conv2d/naive.ts     the float64 reference loops
//   gemm.ts             the blocked GEMM (packing A and B, the C block, rounding on store); its register tiles are
//                       asm.ts (js backend, float64) or wasm/sgemm.ts (WebAssembly SIMD backend)
//   winograd.ts         Winograd F(4×4, 3×3): transforms in JS, GEMMs in asm.ts or wasm/sgemm.ts
//   winograd-fused.ts   its float32 (eval) forward for ≤ 32 channels: transforms and GEMMs in one wasm function
//
// Summation orders (what makes results independent of blocking and thread count). On the js backend:
//   forward (im2col): bias + Σ_k w[o,k]·col[k,j], k ascending = (ci, ky, kx) row-major, float64, one rounding —
//     the naive reference's order, so bit-identical to it.
//   backward weight: Σ over (n, oy, ox) ascending in float64, then added to dw once — the naive order, bit-identical.
//     Except where the channel blocks give fewer than MIN_WEIGHT_UNITS units on a big enough problem (CIFAR's 3→16
//     stem: one): the images are then split into at most MAX_SPLITS runs fixed by the shape, each summed that way
//     into its own float64 partial, and dw += (partial₀ + partial₁ + …) once. Still one order per shape, whatever
//     the threads; within a rounding of the naive loop.
//   backward input (im2col): each dcol entry is a float64 sum over output channels; col2im adds them per dx entry in
//     (ky, kx, oy, ox) order, in float64; dx += that once.
//   Winograd: float64 throughout, one rounding (see winograd.ts).
// On the SIMD backend every GEMM sum runs in float32 over blocks of ≤ 64 terms (k ascending), each block's sum
// added to a float64 total (wasm/sgemm.ts); Winograd's GEMMs run in float64 (f64x2), except in the fused forward.
// The blocks are a function of the shape, so results are still the same bits for every thread count.
//
// Threads: each direction is one task whose units are blocks of the output that never share an output value:
//   forward: (image, block of output columns, block of output channels) — each unit does its own im2col;
//   backward input: (image, group, block of input channels) — a unit's col2im touches only its channels of dx;
//   backward weight: (group, block of output channels, block of input channels) — every image is summed inside
//     the unit, in order; times the image splits where there are any (above).
// Block sizes depend on the shapes only. Scratch buffers are module-level (one set per thread), grown on demand.
//
// Small maps (fewer than SMALL_MAP output positions, as in CIFAR-sized inputs or ResNet's last stages): several
// images go side by side into one GEMM (forward and backward input: a unit covers a chunk of images; backward
// weight: k spans a chunk of images), instead of one skinny GEMM per image. Taps of the kernel that only ever
// meet padding (a 3×3 pad-1 conv on a 1×1 map) are dropped from the GEMMs (see liveTaps).


export { conv2dOutSize, setWinogradPolicy, type Conv2dParams, type WinogradPolicy } from './conv2d/plan.js';
export type { Epilogue } from './winograd.js';
export { im2col, im2colRange } from './conv2d/pack.js';
export { conv2dForward, conv2dForwardFused } from './conv2d/forward.js';
export { conv2dBackwardBias, conv2dBackwardInput, conv2dBackwardWeight, type BackwardInputOptions } from './conv2d/backward.js';
export { conv2dBackwardInputNaive, conv2dBackwardWeightNaive, conv2dForwardNaive } from './conv2d/naive.js';
