// The input gradient of a 1×1 convolution with a stride or padding (ResNet's downsampling shortcut: 1×1/2, no
// padding). Output position (oy, ox) meets one dx pixel, (oy·sH − pH, ox·sW − pW), where that is inside the map, and
// no two positions meet the same one: dx_g[c][pixel] += Σ_o w_g[o][c]·dy_g[o][oy][ox]. One GEMM per unit straight
// onto those pixels: they are gathered into rows (images side by side), the GEMM adds w_gᵀ·dy_g to them (sgemmRange
// accumulating: dx + Σ, rounded once), and they are scattered back; the other pixels are left as they are. No col2im
// and no float64 column matrix. (A 3×3 pad-1 conv on a 1×1 map has one live tap too, but gathering that tap's
// weights out of all nine cost as much as the GEMM path saved: ResNet-18's 512→512 @1, batch 8, 2.0 → 2.2 ms.)
//
// Units: (image chunk, group, block of dx channels); each dx value is one GEMM output, whose sum runs over o in an
// order fixed by og alone (gemm.ts), so the results are the same bits for any thread count.

import { sgemmRange } from '../gemm.js';
import { parallelFor, registerTask } from '../parallel.js';
import { colScratch, f32Scratch, gatherImages } from './pack.js';
import { COL_CAP, endValid, firstValid, isPointwise, roundUp4, SMALL_MAP, type Conv2dParams } from './plan.js';

export interface Strided1x1Task {
  p: Conv2dParams;
  imgChunk: number;
  imgChunks: number;
  chBlock: number;
  chBlocks: number;
}

/** Whether p is a 1×1 conv with a stride or padding (a plain pointwise one is the GEMM path's own case). */
export function strided1x1(p: Conv2dParams): boolean {
  return p.kh === 1 && p.kw === 1 && !isPointwise(p);
}

/**
 * The pixels of channels [c0, c1) that dy meets, dx[(n0 + i)·C + g·cg + c][iy(oy)][ix(ox)] ↔ rows[(c − c0)·kk +
 * i·ohw + oy·oW + ox] (toDx: rows into dx; else dx into rows, 0 for the positions that meet no pixel).
 */
function movePixels(rows: Float32Array, dx: Float32Array, q: Strided1x1Task, n0: number, nc: number, g: number, c0: number, c1: number, toDx: boolean): void {
  const { p } = q;
  const { c, h, w, oh, ow, strideH: sh, strideW: sw } = p;
  const cg = c / p.groups, hw = h * w, ohw = oh * ow, kk = nc * ohw;
  // Pixel (y0 + oy·sH, x0 + ox·sW), inside the map for oy in [oy0, oy1) and ox in [ox0, ox1).
  const y0 = -p.padH, x0 = -p.padW;
  const oy0 = Math.min(firstValid(y0, sh), oh), oy1 = Math.max(oy0, endValid(y0, sh, h, oh));
  const ox0 = Math.min(firstValid(x0, sw), ow), ox1 = Math.max(ox0, endValid(x0, sw, w, ow));
  const partial = oy0 > 0 || oy1 < oh || ox0 > 0 || ox1 < ow;
  for (let ch = c0; ch < c1; ch++) {
    for (let i = 0; i < nc; i++) {
      const base = ((n0 + i) * c + g * cg + ch) * hw + y0 * w + x0;
      const r0 = (ch - c0) * kk + i * ohw;
      if (!toDx && partial) rows.fill(0, r0, r0 + ohw);
      for (let oy = oy0; oy < oy1; oy++) {
        const row = base + oy * sh * w, r = r0 + oy * ow;
        if (toDx) for (let ox = ox0; ox < ox1; ox++) dx[row + ox * sw] = rows[r + ox]!;
        else for (let ox = ox0; ox < ox1; ox++) rows[r + ox] = dx[row + ox * sw]!;
      }
    }
  }
}

function strided1x1Units(dx: Float32Array, dy: Float32Array, w: Float32Array, q: Strided1x1Task, u0: number, u1: number): void {
  const { p } = q;
  const { n, c, o, groups, oh, ow } = p;
  const cg = c / groups, og = o / groups, ohw = oh * ow;
  for (let unit = u0; unit < u1; unit++) {
    const chi = unit % q.chBlocks;
    const rest = (unit - chi) / q.chBlocks;
    const g = rest % groups, n0 = ((rest - g) / groups) * q.imgChunk;
    const nc = Math.min(q.imgChunk, n - n0), kk = nc * ohw;
    const c0 = chi * q.chBlock, c1 = Math.min(cg, c0 + q.chBlock);
    let b = dy, bOff = (n0 * o + g * og) * ohw;
    if (nc > 1) {
      b = f32Scratch(og * kk);
      gatherImages(b, dy, n0, nc, o, g * og, 0, og, ohw);
      bOff = 0;
    }
    const rows = colScratch((c1 - c0) * kk);
    movePixels(rows, dx, q, n0, nc, g, c0, c1, false);
    // w_g is stored (og × cg): op(A) = w_gᵀ (cg × og); rows [c0, c1) of the result at rows[(c − c0)·kk …].
    sgemmRange(rows, w, b, cg, kk, og, { transA: true, aOff: g * og * cg, bOff, ldb: kk, cOff: -c0 * kk, ldc: kk, accumulate: true }, c0, c1, 0, kk);
    movePixels(rows, dx, q, n0, nc, g, c0, c1, true);
  }
}

registerTask<Strided1x1Task>('conv2d.backwardInputStrided1x1', (bufs, q, u0, u1) => {
  strided1x1Units(bufs.dx as Float32Array, bufs.dy as Float32Array, bufs.w as Float32Array, q, u0, u1);
});

/** dx: (N, C, H, W) += ∂L/∂x of a strided 1×1 conv (file comment), given dy: (N, O, oH, oW), w: (O, C/groups, 1, 1). */
export function strided1x1BackwardInput(dx: Float32Array, dy: Float32Array, w: Float32Array, p: Conv2dParams): void {
  const cg = p.c / p.groups, og = p.o / p.groups, ohw = p.oh * p.ow;
  // Small maps: several images side by side (≥ 256 columns where the batch allows), like the other GEMM paths.
  const imgChunk = ohw < SMALL_MAP && p.n > 1 ? Math.max(1, Math.min(p.n, Math.floor(256 / ohw), Math.floor(COL_CAP / (og * ohw)))) : 1;
  const imgChunks = Math.ceil(p.n / imgChunk);
  // Every unit packs all of its images' dy_g: channel blocks of ≥ 32 rows, ≥ 16 units in all where the channels allow.
  const chBlocks = Math.max(1, Math.min(Math.ceil(cg / 32), Math.ceil(16 / (imgChunks * p.groups))));
  const chBlock = roundUp4(Math.ceil(cg / chBlocks));
  const q: Strided1x1Task = { p, imgChunk, imgChunks, chBlock, chBlocks: Math.ceil(cg / chBlock) };
  const cost = 2 * p.n * p.o * cg * ohw;
  parallelFor({ kernel: 'conv2d.backwardInputStrided1x1', bufs: { dx, dy, w }, writes: ['dx'], params: q, units: imgChunks * p.groups * q.chBlocks, cost });
}
