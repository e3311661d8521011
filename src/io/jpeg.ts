/**
 * JPEG decoder (ITU T.81): baseline and extended sequential (SOF0/SOF1, 8-bit) and progressive (SOF2) Huffman-coded
 * files, 1 (gray), 3 (YCbCr or RGB) or 4 (CMYK or YCCK) components, any integral sampling factors, restart markers
 * (DRI / RSTn), multi-scan sequential files.
 *
 * It follows libjpeg-turbo's default decompression path, the one Pillow uses, step for step, so that pixels match
 * Pillow exactly on the cases we test (the tests allow ±2 per pixel):
 * - inverse DCT: the "islow" integer algorithm of jidctint.c (13-bit constants, 2 extra bits in pass 1), with the
 *   same wrap-around range limiting;
 * - upsampling: "fancy" (triangular) upsampling for 2:1 horizontal, 2:1 vertical and 2:1 both ways (jdsample.c),
 *   replicating the edge rows; plain replication for other integral ratios, and for 2:1 horizontal when the
 *   subsampled component is at most 2 samples wide (libjpeg-turbo's rule);
 * - colour conversion: jdcolor.c's 16-bit fixed-point YCbCr → RGB tables.
 * The colour space of a 3-component file is chosen as libjpeg does: JFIF → YCbCr; Adobe APP14 transform 0 → RGB,
 * otherwise YCbCr; no marker → RGB when the component ids are 'R','G','B', else YCbCr. A 4-component file is CMYK
 * without an Adobe marker or with transform 0, else YCCK (jdapimin.c); YCCK becomes CMYK as jdcolor.c's
 * ycck_cmyk_convert does. Pillow opens these in mode CMYK, reading libjpeg's CMYK inverted (rawmode "CMYK;I", the
 * Adobe convention), and we return what its convert('RGB') then gives (Convert.c cmyk2rgb: R = (255 − K) −
 * (C · (255 − K)) / 255, rounded as its MULDIV255 rounds).
 * Corrupt entropy data is handled as libjpeg does: an entropy segment that runs into a marker is continued with
 * zero bits and the rest of the segment is left zero (uniform gray); a bad Huffman code decodes as 0.
 * One known difference: for a progressive file whose scans stop before every coefficient is complete (a cut or
 * deliberately partial file), libjpeg smooths the missing low AC coefficients across blocks ("block smoothing");
 * we leave them zero, so such files decode but differ from Pillow. Complete progressive files match exactly.
 *
 * Not supported (ImageDecodeError "unsupported"): arithmetic coding, 12/16-bit precision, lossless and hierarchical
 * JPEG, DNL (height 0 in SOF), missing Huffman tables (no Motion-JPEG defaults).
 * EXIF orientation is ignored, as torchvision's PIL loader ignores it.
 * A file that ends without EOI after its last complete scan is decoded; entropy data cut off by the end of the
 * file is an error.
 */

import { checkDimensions, ImageDecodeError, type DecodedImage } from './image.js';

function fail(msg: string): never {
  throw new ImageDecodeError('jpeg', msg);
}

const hex = (m: number) => `0x${m.toString(16).toUpperCase().padStart(2, '0')}`;

/** Zigzag position → natural (row-major) position, with 16 guard entries (=63) as libjpeg has for corrupt runs. */
const NATURAL_ORDER = new Int32Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
  28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54,
  47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
]);

/** Most scans a file may have (libjpeg-turbo's tools default to a similar limit against scan-bomb files). */
const MAX_SCANS = 1000;

// ---------------------------------------------------------------------------------------------------------------
// Huffman tables

interface HuffTable {
  /** 9-bit lookahead: (code length << 8) | symbol, 0 when the code is longer than 9 bits (or invalid). */
  lookup: Uint16Array;
  /** Largest code of each length 1..16 (-1 if none); index 17 is a sentinel. */
  maxcode: Int32Array;
  /** values[valoffset[l] + code] is the symbol of a code of length l. */
  valoffset: Int32Array;
  values: Uint8Array;
}

const LOOKAHEAD = 9;

function buildHuffTable(counts: Uint8Array, values: Uint8Array, where: string): HuffTable {
  const sizes: number[] = [];
  for (let l = 1; l <= 16; l++) for (let i = 0; i < counts[l - 1]!; i++) sizes.push(l);
  const codes: number[] = new Array(sizes.length);
  let code = 0;
  let si = sizes[0] ?? 1;
  let p = 0;
  while (p < sizes.length) {
    while (p < sizes.length && sizes[p] === si) codes[p++] = code++;
    // No code may be all ones (T.81 C), so after the codes of length si the next code must still fit in si bits.
    if (code >= 1 << si) fail(`${where}: Huffman table has too many codes of length ${si}`);
    code <<= 1;
    si++;
  }
  const maxcode = new Int32Array(18).fill(-1);
  const valoffset = new Int32Array(18);
  p = 0;
  for (let l = 1; l <= 16; l++) {
    const n = counts[l - 1]!;
    if (n > 0) {
      valoffset[l] = p - codes[p]!;
      p += n;
      maxcode[l] = codes[p - 1]!;
    }
  }
  maxcode[17] = 0x7fffffff;
  const lookup = new Uint16Array(1 << LOOKAHEAD);
  p = 0;
  for (let l = 1; l <= LOOKAHEAD; l++) {
    for (let i = 0; i < counts[l - 1]!; i++, p++) {
      const base = codes[p]! << (LOOKAHEAD - l);
      for (let j = 0; j < 1 << (LOOKAHEAD - l); j++) lookup[base + j] = (l << 8) | values[p]!;
    }
  }
  return { lookup, maxcode, valoffset, values };
}

// ---------------------------------------------------------------------------------------------------------------
// Entropy-coded data reader

class BitReader {
  buf = 0; // up to 32 bits, the next bit to read is bit (cnt - 1)
  cnt = 0;
  /** How many of the lowest buffered bits are zero padding added after a marker or the end of the file. */
  fake = 0;
  /** The reader has reached a marker (or the end of the file) and pads with zero bits. */
  stopped = false;
  atEof = false;
  /** Bits past a marker were consumed: libjpeg leaves the rest of the restart interval zero. */
  insufficient = false;

  constructor(
    readonly data: Uint8Array,
    public pos: number,
    /** Entropy data cut off by the end of the file is padded like data cut off by a marker (allowTruncated). */
    readonly lenientEof = false,
  ) {}

  private fill(): void {
    while (this.cnt <= 24) {
      let byte = 0;
      if (!this.stopped) {
        const d = this.data;
        if (this.pos >= d.length) {
          this.stopped = true;
          this.atEof = true;
        } else if (d[this.pos] !== 0xff) {
          byte = d[this.pos++]!;
        } else {
          let q = this.pos + 1;
          while (q < d.length && d[q] === 0xff) q++;
          if (q >= d.length) {
            this.stopped = true;
            this.atEof = true;
          } else if (d[q] === 0) {
            byte = 0xff;
            this.pos = q + 1;
          } else {
            this.stopped = true;
            this.pos = q - 1; // at the 0xFF that starts the marker
          }
        }
      }
      if (this.stopped) this.fake += 8;
      this.buf = ((this.buf << 8) | byte) >>> 0;
      this.cnt += 8;
    }
  }

  /** The next n (≤ 16) bits, not consumed. */
  peek(n: number): number {
    if (this.cnt < n) this.fill();
    return (this.buf >>> (this.cnt - n)) & ((1 << n) - 1);
  }

  skip(n: number): void {
    this.cnt -= n;
    if (this.cnt < this.fake) {
      this.fake = this.cnt;
      if (this.atEof && !this.lenientEof) {
        fail(`truncated: image file is truncated (entropy-coded data runs past the end of the file at byte ${this.data.length}); decode it anyway with { allowTruncated: true }`);
      }
      this.insufficient = true;
    }
  }

  bits(n: number): number {
    if (n === 0) return 0;
    const v = this.peek(n);
    this.skip(n);
    return v;
  }

  bit(): number {
    return this.bits(1);
  }

  /** Receives an s-bit magnitude and sign-extends it (T.81 F.2.2.1 EXTEND). */
  receiveExtend(s: number): number {
    if (s === 0) return 0;
    const v = this.bits(s);
    return v < 1 << (s - 1) ? v - (1 << s) + 1 : v;
  }

  decode(t: HuffTable): number {
    const w = this.peek(16);
    const e = t.lookup[w >>> (16 - LOOKAHEAD)]!;
    if (e !== 0) {
      this.skip(e >> 8);
      return e & 0xff;
    }
    for (let l = LOOKAHEAD + 1; l <= 16; l++) {
      const code = w >>> (16 - l);
      if (code <= t.maxcode[l]!) {
        this.skip(l);
        return t.values[t.valoffset[l]! + code] ?? 0;
      }
    }
    this.skip(16); // bad code: libjpeg warns and uses 0
    return 0;
  }

  /**
   * Moves past the RSTn marker that ends a restart interval. Leftover bits are dropped; if the next marker is not
   * an RSTn the reader stays stopped in front of it (the rest of the scan decodes as zeros).
   */
  restart(): void {
    this.buf = 0;
    this.cnt = 0;
    this.fake = 0;
    const d = this.data;
    let q = this.pos;
    if (!this.stopped) {
      // Find the next marker: 0xFF followed by neither 0x00 (stuffing) nor 0xFF (fill).
      for (; q + 1 < d.length; q++) {
        if (d[q] === 0xff && d[q + 1] !== 0 && d[q + 1] !== 0xff) break;
      }
      if (q + 1 >= d.length) {
        this.pos = d.length;
        this.stopped = true;
        this.atEof = true;
        return;
      }
    }
    if (this.atEof) return;
    let m = q + 1;
    while (m < d.length && d[m] === 0xff) m++;
    if (m < d.length && d[m]! >= 0xd0 && d[m]! <= 0xd7) {
      this.pos = m + 1;
      this.stopped = false;
      this.insufficient = false;
    } else {
      this.pos = q;
      this.stopped = true;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Frame and components

interface Component {
  id: number;
  h: number;
  v: number;
  tq: number;
  /** Size of the subsampled component in samples (libjpeg's downsampled_width/height). */
  width: number;
  height: number;
  /** Blocks that hold image data, and blocks allocated (padded to whole MCUs of interleaved scans). */
  blocksPerLine: number;
  blocksPerColumn: number;
  blocksPerLineAlloc: number;
  blocksPerColumnAlloc: number;
  coefs: Int16Array;
  /** Dequantization table in natural order, latched at the component's first scan (as libjpeg does). */
  quant: Uint16Array | null;
  pred: number;
  dc: HuffTable | null;
  ac: HuffTable | null;
}

interface Frame {
  progressive: boolean;
  width: number;
  height: number;
  comps: Component[];
  hmax: number;
  vmax: number;
  mcusPerLine: number;
  mcusPerColumn: number;
}

/**
 * Decodes a JPEG file into 8-bit gray (1 channel) or RGB (3 channels; CMYK and YCCK files are converted to RGB). A file that ends before its EOI marker is
 * "truncated" (an error, as in Pillow) unless `opts.allowTruncated`, which decodes what is there.
 */
export function decodeJpeg(bytes: Uint8Array, opts: { allowTruncated?: boolean } = {}): DecodedImage {
  const allowTruncated = opts.allowTruncated === true;
  if (bytes.length < 2 || bytes[0] !== 0xff || bytes[1] !== 0xd8) fail('SOI: the file does not start with FF D8');
  const quant: (Uint16Array | null)[] = [null, null, null, null];
  const dcTables: (HuffTable | null)[] = [null, null, null, null];
  const acTables: (HuffTable | null)[] = [null, null, null, null];
  let frame: Frame | null = null;
  let restartInterval = 0;
  let jfif = false;
  let adobeTransform = -1;
  let scans = 0;
  let sawEoi = false;

  let p = 2;
  for (;;) {
    // Find the next marker, skipping garbage (libjpeg warns about "extraneous bytes") and fill bytes.
    while (p < bytes.length && bytes[p] !== 0xff) p++;
    while (p < bytes.length && bytes[p] === 0xff) p++;
    if (p >= bytes.length) break;
    const marker = bytes[p]!;
    const at = p - 1;
    p++;
    if (marker === 0x00 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) continue; // stuffing / RSTn / TEM
    if (marker === 0xd8) fail(`SOI: a second SOI marker at byte ${at}`);
    if (marker === 0xd9) {
      sawEoi = true;
      break;
    }
    if (p + 2 > bytes.length) fail(`truncated: marker ${hex(marker)} at byte ${at} has no length field`);
    const len = (bytes[p]! << 8) | bytes[p + 1]!;
    if (len < 2) fail(`marker ${hex(marker)} at byte ${at}: segment length ${len} is less than 2`);
    if (p + len > bytes.length) {
      fail(`truncated: marker ${hex(marker)} at byte ${at} declares ${len} bytes, only ${bytes.length - p} remain`);
    }
    const seg = bytes.subarray(p + 2, p + len);
    p += len;

    if (marker === 0xc0 || marker === 0xc1 || marker === 0xc2) {
      if (frame !== null) fail(`SOF${marker - 0xc0} at byte ${at}: a second frame header`);
      frame = parseSof(seg, marker === 0xc2, at, marker - 0xc0, entropyBytes(bytes, p));
    } else if (marker >= 0xc3 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const n = marker - 0xc0;
      const what =
        marker === 0xc3
          ? 'lossless JPEG'
          : marker >= 0xc9
            ? 'arithmetic coding'
            : 'hierarchical (differential) JPEG';
      fail(`SOF${n} at byte ${at}: ${what} is unsupported`);
    } else if (marker === 0xc4) {
      parseDht(seg, at, dcTables, acTables);
    } else if (marker === 0xdb) {
      parseDqt(seg, at, quant);
    } else if (marker === 0xdd) {
      if (seg.length < 2) fail(`DRI at byte ${at}: segment too short`);
      restartInterval = (seg[0]! << 8) | seg[1]!;
    } else if (marker === 0xe0) {
      if (seg.length >= 14 && seg[0] === 0x4a && seg[1] === 0x46 && seg[2] === 0x49 && seg[3] === 0x46 && seg[4] === 0) {
        jfif = true;
      }
    } else if (marker === 0xee) {
      if (seg.length >= 12 && seg[0] === 0x41 && seg[1] === 0x64 && seg[2] === 0x6f && seg[3] === 0x62 && seg[4] === 0x65) {
        adobeTransform = seg[11]!;
      }
    } else if (marker === 0xda) {
      if (frame === null) fail(`SOS at byte ${at}: scan before any SOF frame header`);
      if (++scans > MAX_SCANS) fail(`SOS at byte ${at}: more than ${MAX_SCANS} scans`);
      p = decodeScan(bytes, p, seg, at, frame, quant, dcTables, acTables, restartInterval, allowTruncated);
    }
    // Every other marker (APPn, COM, DNL, DAC, JPG, ...) is skipped by its length, as libjpeg does.
  }
  if (frame === null) fail(`SOF: no frame header before ${p >= bytes.length ? 'the end of the file' : 'EOI'}`);
  if (scans === 0) fail('SOS: the file has no scan');
  if (!sawEoi && !allowTruncated) {
    fail(`truncated: image file is truncated (the file ends at byte ${bytes.length} without an EOI marker); decode it anyway with { allowTruncated: true }`);
  }

  let color: ColorSpace = 'rgb';
  if (frame.comps.length === 3) {
    if (jfif) color = 'ycc';
    else if (adobeTransform >= 0) color = adobeTransform === 0 ? 'rgb' : 'ycc';
    else {
      const [a, b, c] = frame.comps.map((cp) => cp.id);
      color = a === 0x52 && b === 0x47 && c === 0x42 ? 'rgb' : 'ycc';
    }
  } else if (frame.comps.length === 4) {
    color = adobeTransform <= 0 ? 'cmyk' : 'ycck';
  }
  return output(frame, quant, color);
}

/**
 * Bytes from `p` to the EOI marker (or the end of the file), walking segments by their lengths and entropy data
 * up to its next marker (FF D9 cannot occur inside entropy data: a data FF is stuffed as FF 00). Bytes after EOI
 * encode nothing and must not count towards the plausibility check.
 */
function entropyBytes(bytes: Uint8Array, p: number): number {
  const start = p;
  for (;;) {
    while (p < bytes.length && bytes[p] !== 0xff) p++;
    while (p < bytes.length && bytes[p] === 0xff) p++;
    if (p >= bytes.length) return bytes.length - start;
    const m = bytes[p++]!;
    if (m === 0x00 || (m >= 0xd0 && m <= 0xd7) || m === 0x01) continue;
    if (m === 0xd9) return p - start;
    if (p + 2 > bytes.length) return bytes.length - start;
    p += (bytes[p]! << 8) | bytes[p + 1]!;
  }
}

function parseSof(seg: Uint8Array, progressive: boolean, at: number, n: number, fileLength: number): Frame {
  if (seg.length < 6) fail(`SOF${n} at byte ${at}: segment too short`);
  const precision = seg[0]!;
  const height = (seg[1]! << 8) | seg[2]!;
  const width = (seg[3]! << 8) | seg[4]!;
  const nc = seg[5]!;
  if (precision !== 8) fail(`SOF${n} at byte ${at}: ${precision}-bit precision is unsupported (only 8-bit)`);
  if (height === 0) fail(`SOF${n} at byte ${at}: height 0 (defined later by DNL) is unsupported`);
  if (width === 0) fail(`SOF${n} at byte ${at}: width is 0`);
  if (nc !== 1 && nc !== 3 && nc !== 4) fail(`SOF${n} at byte ${at}: ${nc} components is unsupported (only 1, 3 or 4)`);
  if (seg.length < 6 + 3 * nc) fail(`SOF${n} at byte ${at}: segment too short for ${nc} components`);
  checkDimensions('jpeg', `SOF${n}`, width, height);
  const raw = [];
  for (let i = 0; i < nc; i++) {
    const id = seg[6 + 3 * i]!;
    const h = seg[7 + 3 * i]! >> 4;
    const v = seg[7 + 3 * i]! & 15;
    const tq = seg[8 + 3 * i]!;
    if (h < 1 || h > 4 || v < 1 || v > 4) fail(`SOF${n} at byte ${at}: component ${id} has sampling factors ${h}x${v}`);
    if (tq > 3) fail(`SOF${n} at byte ${at}: component ${id} uses quantization table ${tq}`);
    raw.push({ id, h, v, tq });
  }
  const hmax = Math.max(...raw.map((c) => c.h));
  const vmax = Math.max(...raw.map((c) => c.v));
  for (const c of raw) {
    if (hmax % c.h !== 0 || vmax % c.v !== 0) {
      fail(`SOF${n} at byte ${at}: fractional sampling ratio (component ${c.id} is ${c.h}x${c.v}, max ${hmax}x${vmax}) is unsupported`);
    }
  }
  const mcusPerLine = Math.ceil(width / (8 * hmax));
  const mcusPerColumn = Math.ceil(height / (8 * vmax));
  // Plausibility before allocating: every block costs at least one bit in its first scan (a DC Huffman code), so a
  // file cannot describe more than 8 blocks per byte.
  let blocks = 0;
  for (const c of raw) blocks += Math.ceil(Math.ceil((width * c.h) / hmax) / 8) * Math.ceil(Math.ceil((height * c.v) / vmax) / 8);
  if (blocks > 8 * fileLength + 64) {
    fail(`SOF${n} at byte ${at}: ${width}x${height} needs ${blocks} blocks, more than the ${fileLength} bytes after it (up to EOI) can encode`);
  }
  const comps: Component[] = raw.map((c) => {
    const cw = Math.ceil((width * c.h) / hmax);
    const ch = Math.ceil((height * c.v) / vmax);
    const bpla = mcusPerLine * c.h;
    const bpca = mcusPerColumn * c.v;
    return {
      ...c,
      width: cw,
      height: ch,
      blocksPerLine: Math.ceil(cw / 8),
      blocksPerColumn: Math.ceil(ch / 8),
      blocksPerLineAlloc: bpla,
      blocksPerColumnAlloc: bpca,
      coefs: new Int16Array(bpla * bpca * 64),
      quant: null,
      pred: 0,
      dc: null,
      ac: null,
    };
  });
  return { progressive, width, height, comps, hmax, vmax, mcusPerLine, mcusPerColumn };
}

function parseDht(seg: Uint8Array, at: number, dc: (HuffTable | null)[], ac: (HuffTable | null)[]): void {
  let q = 0;
  while (q < seg.length) {
    if (q + 17 > seg.length) fail(`DHT at byte ${at}: table header at segment offset ${q} is truncated`);
    const tc = seg[q]! >> 4;
    const th = seg[q]! & 15;
    if (tc > 1 || th > 3) fail(`DHT at byte ${at}: bad table class/id ${tc}/${th}`);
    const counts = seg.subarray(q + 1, q + 17);
    let total = 0;
    for (const c of counts) total += c;
    if (total > 256) fail(`DHT at byte ${at}: table ${tc ? 'AC' : 'DC'}${th} declares ${total} codes (> 256)`);
    if (q + 17 + total > seg.length) fail(`DHT at byte ${at}: table ${tc ? 'AC' : 'DC'}${th} values are truncated`);
    const values = seg.slice(q + 17, q + 17 + total);
    const t = buildHuffTable(counts, values, `DHT at byte ${at}`);
    (tc === 0 ? dc : ac)[th] = t;
    q += 17 + total;
  }
}

function parseDqt(seg: Uint8Array, at: number, quant: (Uint16Array | null)[]): void {
  let q = 0;
  while (q < seg.length) {
    const pq = seg[q]! >> 4;
    const tq = seg[q]! & 15;
    if (pq > 1 || tq > 3) fail(`DQT at byte ${at}: bad precision/id ${pq}/${tq}`);
    const size = pq === 0 ? 64 : 128;
    if (q + 1 + size > seg.length) fail(`DQT at byte ${at}: table ${tq} is truncated`);
    const t = new Uint16Array(64);
    for (let k = 0; k < 64; k++) {
      t[NATURAL_ORDER[k]!] = pq === 0 ? seg[q + 1 + k]! : (seg[q + 1 + 2 * k]! << 8) | seg[q + 2 + 2 * k]!;
    }
    quant[tq] = t;
    q += 1 + size;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Scans

/** Decodes one scan whose entropy data starts at byte `start`; returns where marker parsing resumes. */
function decodeScan(
  bytes: Uint8Array,
  start: number,
  seg: Uint8Array,
  at: number,
  frame: Frame,
  quant: (Uint16Array | null)[],
  dcTables: (HuffTable | null)[],
  acTables: (HuffTable | null)[],
  restartInterval: number,
  allowTruncated: boolean,
): number {
  const ns = seg[0] ?? 0;
  if (ns < 1 || ns > 4 || seg.length < 4 + 2 * ns) fail(`SOS at byte ${at}: bad header (${ns} components, ${seg.length} bytes)`);
  const comps: Component[] = [];
  for (let i = 0; i < ns; i++) {
    const id = seg[1 + 2 * i]!;
    const comp = frame.comps.find((c) => c.id === id);
    if (comp === undefined) fail(`SOS at byte ${at}: component id ${id} is not in the frame`);
    if (comps.includes(comp)) fail(`SOS at byte ${at}: component id ${id} appears twice`);
    const td = seg[2 + 2 * i]! >> 4;
    const ta = seg[2 + 2 * i]! & 15;
    if (td > 3 || ta > 3) fail(`SOS at byte ${at}: component ${id} uses Huffman tables ${td}/${ta}`);
    comp.dc = dcTables[td] ?? null;
    comp.ac = acTables[ta] ?? null;
    comps.push(comp);
  }
  const ss = seg[1 + 2 * ns]!;
  const se = seg[2 + 2 * ns]!;
  const ah = seg[3 + 2 * ns]! >> 4;
  const al = seg[3 + 2 * ns]! & 15;

  let mode: 'seq' | 'dcFirst' | 'dcRefine' | 'acFirst' | 'acRefine';
  if (frame.progressive) {
    const bad =
      (ss === 0 ? se !== 0 : ss > se || se > 63 || ns !== 1) || (ah !== 0 && al !== ah - 1) || al > 13;
    if (bad) fail(`SOS at byte ${at}: invalid progressive parameters Ss=${ss} Se=${se} Ah=${ah} Al=${al} (${ns} components)`);
    mode = ss === 0 ? (ah === 0 ? 'dcFirst' : 'dcRefine') : ah === 0 ? 'acFirst' : 'acRefine';
  } else {
    mode = 'seq';
  }
  // Tables this scan will use must exist; DC symbols above 15 are invalid (libjpeg checks the same).
  for (const c of comps) {
    const needDc = mode === 'seq' || mode === 'dcFirst';
    const needAc = mode === 'seq' || mode === 'acFirst' || mode === 'acRefine';
    const [td, ta] = [seg[2 + 2 * comps.indexOf(c)]! >> 4, seg[2 + 2 * comps.indexOf(c)]! & 15];
    if (needDc && c.dc === null) fail(`SOS at byte ${at}: DC Huffman table ${td} (component ${c.id}) was not defined`);
    if (needAc && c.ac === null) fail(`SOS at byte ${at}: AC Huffman table ${ta} (component ${c.id}) was not defined`);
    if (needDc && c.dc!.values.some((v) => v > 15)) fail(`SOS at byte ${at}: DC Huffman table ${td} has a symbol above 15`);
    if (c.quant === null) {
      const q = quant[c.tq];
      if (q === null || q === undefined) fail(`SOS at byte ${at}: quantization table ${c.tq} (component ${c.id}) was not defined`);
      c.quant = q.slice();
    }
    c.pred = 0;
  }
  let blocksInMcu = 0;
  for (const c of comps) blocksInMcu += ns === 1 ? 1 : c.h * c.v;
  if (blocksInMcu > 10) fail(`SOS at byte ${at}: ${blocksInMcu} blocks per MCU (sampling factors too large, max 10)`);

  const reader = new BitReader(bytes, start, allowTruncated);
  let eobrun = 0;

  const decodeBlock = (c: Component, off: number): void => {
    const z = c.coefs;
    if (mode === 'seq') {
      const t = reader.decode(c.dc!);
      c.pred = (c.pred + reader.receiveExtend(t)) | 0;
      z[off] = c.pred;
      const ac = c.ac!;
      for (let k = 1; k < 64; k++) {
        const rs = reader.decode(ac);
        const r = rs >> 4;
        const s = rs & 15;
        if (s !== 0) {
          k += r;
          z[off + NATURAL_ORDER[k]!] = reader.receiveExtend(s);
        } else {
          if (r !== 15) break;
          k += 15;
        }
      }
    } else if (mode === 'dcFirst') {
      const t = reader.decode(c.dc!);
      c.pred = (c.pred + reader.receiveExtend(t)) | 0;
      z[off] = c.pred * (1 << al);
    } else if (mode === 'dcRefine') {
      if (reader.bit()) z[off] = z[off]! | (1 << al);
    } else if (mode === 'acFirst') {
      if (eobrun > 0) {
        eobrun--;
        return;
      }
      const ac = c.ac!;
      for (let k = ss; k <= se; k++) {
        const rs = reader.decode(ac);
        const r = rs >> 4;
        const s = rs & 15;
        if (s !== 0) {
          k += r;
          z[off + NATURAL_ORDER[k]!] = reader.receiveExtend(s) * (1 << al);
        } else if (r === 15) {
          k += 15;
        } else {
          eobrun = (1 << r) + reader.bits(r) - 1;
          break;
        }
      }
    } else {
      // AC refinement (T.81 G.1.2.3, libjpeg's decode_mcu_AC_refine).
      const p1 = 1 << al;
      const m1 = -1 << al;
      let k = ss;
      if (eobrun === 0) {
        const ac = c.ac!;
        for (; k <= se; k++) {
          const rs = reader.decode(ac);
          let r = rs >> 4;
          let s = rs & 15;
          if (s !== 0) {
            s = reader.bit() ? p1 : m1;
          } else if (r !== 15) {
            eobrun = (1 << r) + reader.bits(r);
            break;
          }
          // Skip r zero coefficients (refining the nonzero ones passed over), then place the new one.
          do {
            const pos = off + NATURAL_ORDER[k]!;
            const v = z[pos]!;
            if (v !== 0) {
              if (reader.bit() && (v & p1) === 0) z[pos] = v >= 0 ? v + p1 : v + m1;
            } else {
              if (--r < 0) break;
            }
            k++;
          } while (k <= se);
          if (s !== 0) z[off + NATURAL_ORDER[k]!] = s;
        }
      }
      if (eobrun > 0) {
        for (; k <= se; k++) {
          const pos = off + NATURAL_ORDER[k]!;
          const v = z[pos]!;
          if (v !== 0 && reader.bit() && (v & p1) === 0) z[pos] = v >= 0 ? v + p1 : v + m1;
        }
        eobrun--;
      }
    }
  };

  // MCU layout: one block per MCU for a single-component scan, else H x V blocks of each component.
  const single = ns === 1;
  const c0 = comps[0]!;
  const mcusPerLine = single ? c0.blocksPerLine : frame.mcusPerLine;
  const totalMcus = single ? c0.blocksPerLine * c0.blocksPerColumn : frame.mcusPerLine * frame.mcusPerColumn;
  for (let mcu = 0; mcu < totalMcus; mcu++) {
    if (restartInterval > 0 && mcu > 0 && mcu % restartInterval === 0) {
      reader.restart();
      for (const c of comps) c.pred = 0;
      eobrun = 0;
    }
    if (reader.insufficient) {
      // libjpeg leaves the rest of the restart interval untouched; skip straight to the next restart.
      if (restartInterval === 0) break;
      mcu = (Math.floor(mcu / restartInterval) + 1) * restartInterval - 1;
      continue;
    }
    const mr = Math.floor(mcu / mcusPerLine);
    const mc = mcu % mcusPerLine;
    if (single) {
      decodeBlock(c0, (mr * c0.blocksPerLineAlloc + mc) * 64);
    } else {
      for (const c of comps) {
        for (let v = 0; v < c.v; v++) {
          for (let h = 0; h < c.h; h++) {
            decodeBlock(c, ((mr * c.v + v) * c.blocksPerLineAlloc + mc * c.h + h) * 64);
          }
        }
      }
    }
  }
  return reader.stopped && !reader.atEof ? reader.pos : Math.min(reader.pos, bytes.length);
}

// ---------------------------------------------------------------------------------------------------------------
// Inverse DCT (jidctint.c "islow"), upsampling (jdsample.c) and colour conversion (jdcolor.c)

/** libjpeg's post-IDCT range limit, indexed by (value & 1023): wraps like the C table for corrupt input. */
const IDCT_RANGE = (() => {
  const t = new Uint8Array(1024);
  for (let i = 0; i < 1024; i++) t[i] = i < 128 ? i + 128 : i < 512 ? 255 : i < 896 ? 0 : i - 896;
  return t;
})();

/** DESCALE(x, n): x / 2^n rounded, on exact integer doubles (products reach ~2^47 on corrupt data). */
const descale = (x: number, n: number) => Math.floor((x + 2 ** (n - 1)) / 2 ** n);

/** 8x8 islow IDCT of the block at coefs[off..off+64) into out[o0 + r*stride + c]. ws: 64-int workspace. */
function idctIslow(out: Uint8Array, o0: number, stride: number, z: Int16Array, off: number, q: Uint16Array, ws: Int32Array): void {
  // Pass 1: columns, results scaled by 2^2 (PASS1_BITS).
  for (let c = 0; c < 8; c++) {
    const i = off + c;
    if (z[i + 8] === 0 && z[i + 16] === 0 && z[i + 24] === 0 && z[i + 32] === 0 && z[i + 40] === 0 && z[i + 48] === 0 && z[i + 56] === 0) {
      const dc = z[i]! * q[c]! * 4;
      for (let r = 0; r < 8; r++) ws[r * 8 + c] = dc;
      continue;
    }
    let z2 = z[i + 16]! * q[c + 16]!;
    let z3 = z[i + 48]! * q[c + 48]!;
    let z1 = (z2 + z3) * 4433;
    let tmp2 = z1 + z3 * -15137;
    let tmp3 = z1 + z2 * 6270;
    z2 = z[i]! * q[c]!;
    z3 = z[i + 32]! * q[c + 32]!;
    let tmp0 = (z2 + z3) * 8192;
    let tmp1 = (z2 - z3) * 8192;
    const tmp10 = tmp0 + tmp3;
    const tmp13 = tmp0 - tmp3;
    const tmp11 = tmp1 + tmp2;
    const tmp12 = tmp1 - tmp2;
    tmp0 = z[i + 56]! * q[c + 56]!;
    tmp1 = z[i + 40]! * q[c + 40]!;
    tmp2 = z[i + 24]! * q[c + 24]!;
    tmp3 = z[i + 8]! * q[c + 8]!;
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    const z5 = (z3 + z4) * 9633;
    tmp0 *= 2446;
    tmp1 *= 16819;
    tmp2 *= 25172;
    tmp3 *= 12299;
    z1 *= -7373;
    z2 *= -20995;
    z3 = z3 * -16069 + z5;
    z4 = z4 * -3196 + z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;
    ws[c] = descale(tmp10 + tmp3, 11);
    ws[56 + c] = descale(tmp10 - tmp3, 11);
    ws[8 + c] = descale(tmp11 + tmp2, 11);
    ws[48 + c] = descale(tmp11 - tmp2, 11);
    ws[16 + c] = descale(tmp12 + tmp1, 11);
    ws[40 + c] = descale(tmp12 - tmp1, 11);
    ws[24 + c] = descale(tmp13 + tmp0, 11);
    ws[32 + c] = descale(tmp13 - tmp0, 11);
  }
  // Pass 2: rows, removing the 2^2 and the factor 8, plus the +128 level shift via the range table.
  for (let r = 0; r < 8; r++) {
    const w = r * 8;
    const o = o0 + r * stride;
    if (ws[w + 1] === 0 && ws[w + 2] === 0 && ws[w + 3] === 0 && ws[w + 4] === 0 && ws[w + 5] === 0 && ws[w + 6] === 0 && ws[w + 7] === 0) {
      const v = IDCT_RANGE[descale(ws[w]!, 5) & 1023]!;
      for (let c = 0; c < 8; c++) out[o + c] = v;
      continue;
    }
    let z2 = ws[w + 2]!;
    let z3 = ws[w + 6]!;
    let z1 = (z2 + z3) * 4433;
    let tmp2 = z1 + z3 * -15137;
    let tmp3 = z1 + z2 * 6270;
    let tmp0 = (ws[w]! + ws[w + 4]!) * 8192;
    let tmp1 = (ws[w]! - ws[w + 4]!) * 8192;
    const tmp10 = tmp0 + tmp3;
    const tmp13 = tmp0 - tmp3;
    const tmp11 = tmp1 + tmp2;
    const tmp12 = tmp1 - tmp2;
    tmp0 = ws[w + 7]!;
    tmp1 = ws[w + 5]!;
    tmp2 = ws[w + 3]!;
    tmp3 = ws[w + 1]!;
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    const z5 = (z3 + z4) * 9633;
    tmp0 *= 2446;
    tmp1 *= 16819;
    tmp2 *= 25172;
    tmp3 *= 12299;
    z1 *= -7373;
    z2 *= -20995;
    z3 = z3 * -16069 + z5;
    z4 = z4 * -3196 + z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;
    out[o] = IDCT_RANGE[descale(tmp10 + tmp3, 18) & 1023]!;
    out[o + 7] = IDCT_RANGE[descale(tmp10 - tmp3, 18) & 1023]!;
    out[o + 1] = IDCT_RANGE[descale(tmp11 + tmp2, 18) & 1023]!;
    out[o + 6] = IDCT_RANGE[descale(tmp11 - tmp2, 18) & 1023]!;
    out[o + 2] = IDCT_RANGE[descale(tmp12 + tmp1, 18) & 1023]!;
    out[o + 5] = IDCT_RANGE[descale(tmp12 - tmp1, 18) & 1023]!;
    out[o + 3] = IDCT_RANGE[descale(tmp13 + tmp0, 18) & 1023]!;
    out[o + 4] = IDCT_RANGE[descale(tmp13 - tmp0, 18) & 1023]!;
  }
}

/** A component's samples after the IDCT: plane of (blocksPerLine*8) x (blocksPerColumn*8). */
function componentPlane(c: Component, fallbackQuant: Uint16Array | null): { data: Uint8Array; stride: number } {
  const stride = c.blocksPerLine * 8;
  const data = new Uint8Array(stride * c.blocksPerColumn * 8);
  const q = c.quant ?? fallbackQuant ?? new Uint16Array(64);
  const ws = new Int32Array(64);
  for (let br = 0; br < c.blocksPerColumn; br++) {
    for (let bc = 0; bc < c.blocksPerLine; bc++) {
      idctIslow(data, br * 8 * stride + bc * 8, stride, c.coefs, (br * c.blocksPerLineAlloc + bc) * 64, q, ws);
    }
  }
  return { data, stride };
}

/**
 * Upsamples a component to the full image size (width x height), as libjpeg-turbo's jdsample.c does with
 * do_fancy_upsampling on. Rows beyond the component's last real row, and above its first, repeat that row
 * (libjpeg's context-row pointers).
 */
function upsample(c: Component, plane: { data: Uint8Array; stride: number }, frame: Frame): Uint8Array {
  const { width, height } = frame;
  const hr = frame.hmax / c.h;
  const vr = frame.vmax / c.v;
  const { data: src, stride } = plane;
  const out = new Uint8Array(width * height);
  const dw = c.width;
  const dh = c.height;
  const clampRow = (r: number) => (r < 0 ? 0 : r >= dh ? dh - 1 : r);
  if (hr === 1 && vr === 1) {
    for (let y = 0; y < height; y++) out.set(src.subarray(y * stride, y * stride + width), y * width);
  } else if (hr === 2 && vr === 1 && dw > 2) {
    // h2v1 fancy: 3/4 nearer + 1/4 further sample, rounding biased alternately (+1 / +2).
    const row = new Uint8Array(2 * dw);
    for (let y = 0; y < height; y++) {
      const s = y * stride;
      row[0] = src[s]!;
      row[1] = (src[s]! * 3 + src[s + 1]! + 2) >> 2;
      for (let i = 1; i < dw - 1; i++) {
        const v = src[s + i]! * 3;
        row[2 * i] = (v + src[s + i - 1]! + 1) >> 2;
        row[2 * i + 1] = (v + src[s + i + 1]! + 2) >> 2;
      }
      const last = src[s + dw - 1]!;
      row[2 * dw - 2] = (last * 3 + src[s + dw - 2]! + 1) >> 2;
      row[2 * dw - 1] = last;
      out.set(row.subarray(0, width), y * width);
    }
  } else if (hr === 1 && vr === 2) {
    // h1v2 fancy: 3/4 nearer row + 1/4 further row.
    for (let y = 0; y < height; y++) {
      const r = y >> 1;
      const near = r * stride;
      const far = clampRow((y & 1) === 0 ? r - 1 : r + 1) * stride;
      const bias = (y & 1) === 0 ? 1 : 2;
      for (let x = 0; x < width; x++) out[y * width + x] = (src[near + x]! * 3 + src[far + x]! + bias) >> 2;
    }
  } else if (hr === 2 && vr === 2 && dw > 2) {
    // h2v2 fancy: vertical 3:1 column sums, then horizontal 3:1 with biases +8 / +7.
    const colsum = new Int32Array(dw);
    const row = new Uint8Array(2 * dw);
    for (let y = 0; y < height; y++) {
      const r = y >> 1;
      const near = r * stride;
      const far = clampRow((y & 1) === 0 ? r - 1 : r + 1) * stride;
      for (let i = 0; i < dw; i++) colsum[i] = src[near + i]! * 3 + src[far + i]!;
      row[0] = (colsum[0]! * 4 + 8) >> 4;
      row[1] = (colsum[0]! * 3 + colsum[1]! + 7) >> 4;
      for (let i = 1; i < dw - 1; i++) {
        row[2 * i] = (colsum[i]! * 3 + colsum[i - 1]! + 8) >> 4;
        row[2 * i + 1] = (colsum[i]! * 3 + colsum[i + 1]! + 7) >> 4;
      }
      row[2 * dw - 2] = (colsum[dw - 1]! * 3 + colsum[dw - 2]! + 8) >> 4;
      row[2 * dw - 1] = (colsum[dw - 1]! * 4 + 7) >> 4;
      out.set(row.subarray(0, width), y * width);
    }
  } else {
    // Any other integral ratio (and 2:1 of a component at most 2 samples wide): replicate.
    for (let y = 0; y < height; y++) {
      const s = Math.floor(y / vr) * stride;
      for (let x = 0; x < width; x++) out[y * width + x] = src[s + Math.floor(x / hr)]!;
    }
  }
  return out;
}

let yccTables: { crR: Int32Array; cbB: Int32Array; crG: Int32Array; cbG: Int32Array } | null = null;
/** jdcolor.c build_ycc_rgb_table: 16-bit fixed point, FIX(x) = round(x * 65536). */
function getYccTables() {
  if (yccTables === null) {
    const fix = (x: number) => Math.floor(x * 65536 + 0.5);
    const half = 1 << 15;
    const crR = new Int32Array(256);
    const cbB = new Int32Array(256);
    const crG = new Int32Array(256);
    const cbG = new Int32Array(256);
    for (let i = 0; i < 256; i++) {
      const x = i - 128;
      crR[i] = (fix(1.402) * x + half) >> 16;
      cbB[i] = (fix(1.772) * x + half) >> 16;
      crG[i] = -fix(0.71414) * x;
      cbG[i] = -fix(0.34414) * x + half;
    }
    yccTables = { crR, cbB, crG, cbG };
  }
  return yccTables;
}

const clamp8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/** How the components are to be read: 'rgb' and 'ycc' for 3 components, 'cmyk' and 'ycck' for 4. */
type ColorSpace = 'rgb' | 'ycc' | 'cmyk' | 'ycck';

function output(frame: Frame, quant: (Uint16Array | null)[], color: ColorSpace): DecodedImage {
  const { width, height } = frame;
  const planes = frame.comps.map((c) => upsample(c, componentPlane(c, quant[c.tq] ?? null), frame));
  const n = width * height;
  if (planes.length === 1) return { width, height, channels: 1, data: planes[0]! };
  const [p0, p1, p2, p3] = planes as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  const out = new Uint8Array(n * 3);
  if (color === 'cmyk' || color === 'ycck') {
    const { crR, cbB, crG, cbG } = getYccTables();
    // libjpeg's CMYK (YCCK: 255 − the YCbCr → RGB value) is c; Pillow's CMYK is 255 − c (and 255 − k), so with
    // nk = 255 − Pillow's K = k, convert('RGB') gives nk − MULDIV255(255 − c, nk).
    const cmy = new Uint8Array(3);
    for (let i = 0; i < n; i++) {
      if (color === 'ycck') {
        const y = p0[i]!;
        const cb = p1[i]!;
        const cr = p2[i]!;
        cmy[0] = clamp8(255 - (y + crR[cr]!));
        cmy[1] = clamp8(255 - (y + ((cbG[cb]! + crG[cr]!) >> 16)));
        cmy[2] = clamp8(255 - (y + cbB[cb]!));
      } else {
        cmy[0] = p0[i]!;
        cmy[1] = p1[i]!;
        cmy[2] = p2[i]!;
      }
      const nk = p3[i]!;
      for (let ch = 0; ch < 3; ch++) {
        const t = (255 - cmy[ch]!) * nk + 128;
        out[3 * i + ch] = nk - (((t >> 8) + t) >> 8);
      }
    }
  } else if (color === 'rgb') {
    for (let i = 0; i < n; i++) {
      out[3 * i] = p0[i]!;
      out[3 * i + 1] = p1[i]!;
      out[3 * i + 2] = p2[i]!;
    }
  } else {
    const { crR, cbB, crG, cbG } = getYccTables();
    for (let i = 0; i < n; i++) {
      const y = p0[i]!;
      const cb = p1[i]!;
      const cr = p2[i]!;
      out[3 * i] = clamp8(y + crR[cr]!);
      out[3 * i + 1] = clamp8(y + ((cbG[cb]! + crG[cr]!) >> 16));
      out[3 * i + 2] = clamp8(y + cbB[cb]!);
    }
  }
  return { width, height, channels: 3, data: out };
}
