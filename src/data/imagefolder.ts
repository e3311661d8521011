/**
 * torchvision.datasets.ImageFolder (Node only: it reads files): `root/<class>/.../<image>`, one folder per class.
 *
 *   - classes are the subfolder names, sorted; classToIdx maps them to 0..K-1;
 *   - samples are [path, classIndex], class by class, every folder below a class walked in sorted order and its
 *     files sorted, keeping the files whose extension (lower-cased) is in `extensions`;
 *   - a file is read and decoded only when an item needs it, as PIL's `Image.open(f).convert('RGB')`.
 *
 * A file that cannot be read or decoded is a DatasetError naming it; with `skipBadFiles` it is left out of its batch
 * instead, and `skipped` lists such files once seen.
 */

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { ResnetTsError } from '../errors.js';
import { decodeImage, toRgb, type DecodedImage } from '../io/image.js';
import type { Generator } from '../random.js';
import { DatasetError } from './dataset.js';
import { fromSpec, type ImageTransform, type TransformSpec } from './image-transforms.js';
import './loader-workers.js'; // the DataLoader's worker threads, for numWorkers > 0
import type { MapDataset, MapItem, WorkerSpec } from './map-dataset.js';

/** The extensions our decoders read (torchvision's IMG_EXTENSIONS minus the formats we do not decode). */
export const IMG_EXTENSIONS = Object.freeze(['.jpg', '.jpeg', '.png', '.ppm', '.pgm']);

export interface ImageFolderOptions {
  /** Applied to each decoded RGB image (see data.imageTransforms). None: the 8-bit image, batched as ToTensor would. */
  transform?: ImageTransform;
  /** File extensions to keep, with the dot, compared lower-cased. Default IMG_EXTENSIONS. */
  extensions?: readonly string[];
  /** Leave unreadable files out of their batch (listed in `skipped`) instead of throwing. Default false. */
  skipBadFiles?: boolean;
  /**
   * The class list to index by (e.g. the training folder's, for a validation folder); every subfolder must be one of
   * them. Default: the sorted subfolder names.
   */
  classes?: readonly string[];
}

const op = 'ImageFolder';

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Files under `dir` (following links), as os.walk sorted by directory then file name. */
function walkFiles(dir: string): string[] {
  const dirs: string[] = [];
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    dirs.push(d);
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory() || (e.isSymbolicLink() && isDir(p))) stack.push(p);
    }
  }
  dirs.sort(byCodePoint);
  const files: string[] = [];
  for (const d of dirs) {
    const names = readdirSync(d, { withFileTypes: true }).filter((e) => !(e.isDirectory() || (e.isSymbolicLink() && isDir(join(d, e.name))))).map((e) => e.name);
    names.sort(byCodePoint);
    for (const n of names) files.push(join(d, n));
  }
  return files;
}

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export class ImageFolder implements MapDataset {
  readonly root: string;
  readonly classes: readonly string[];
  readonly classToIdx: Readonly<Record<string, number>>;
  /** [path, class index] in dataset order. */
  readonly samples: readonly (readonly [string, number])[];
  readonly transform: ImageTransform | undefined;
  readonly extensions: readonly string[];
  readonly skipBadFiles: boolean;
  /** Files left out so far because they could not be read or decoded (with skipBadFiles). */
  readonly skipped = new Set<string>();
  readonly channels = 3;

  constructor(root: string, opts: ImageFolderOptions = {}) {
    const extensions = (opts.extensions ?? IMG_EXTENSIONS).map((e) => e.toLowerCase());
    if (!isDir(root)) throw new DatasetError(op, `${root} is not a directory; expected one folder per class with the images inside`);
    const found = readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory() || (e.isSymbolicLink() && isDir(join(root, e.name)))).map((e) => e.name).sort(byCodePoint);
    if (found.length === 0) throw new DatasetError(op, `Couldn't find any class folder in ${root}.`);
    const classes = opts.classes ? [...opts.classes] : found;
    const classToIdx: Record<string, number> = Object.create(null);
    classes.forEach((c, i) => (classToIdx[c] = i));
    const stray = found.filter((c) => !(c in classToIdx));
    if (stray.length) throw new DatasetError(op, `${root} has folders ${stray.map((s) => `'${s}'`).join(', ')} that are not among the given classes [${classes.join(', ')}]`);
    const samples: [string, number][] = [];
    const empty: string[] = [];
    for (const c of found) {
      const files = walkFiles(join(root, c)).filter((f) => extensions.includes(extname(f).toLowerCase()));
      if (files.length === 0) empty.push(c);
      for (const f of files) samples.push([f, classToIdx[c]!]);
    }
    if (empty.length) throw new DatasetError(op, `Found no valid file for the classes ${empty.join(', ')} in ${root}. Supported extensions are: ${extensions.join(', ')}`);
    this.root = root;
    this.classes = classes;
    this.classToIdx = classToIdx;
    this.samples = samples;
    this.transform = opts.transform;
    this.extensions = extensions;
    this.skipBadFiles = opts.skipBadFiles ?? false;
  }

  /** An ImageFolder over given samples (a split, or a worker's copy), without reading the directory. */
  static fromSamples(root: string, classes: readonly string[], samples: readonly (readonly [string, number])[], opts: ImageFolderOptions = {}): ImageFolder {
    const ds = Object.create(ImageFolder.prototype) as ImageFolder;
    const classToIdx: Record<string, number> = Object.create(null);
    classes.forEach((c, i) => (classToIdx[c] = i));
    Object.assign(ds, {
      root, classes: [...classes], classToIdx, samples: samples.map(([p, c]) => [p, c] as const), transform: opts.transform,
      extensions: (opts.extensions ?? IMG_EXTENSIONS).map((e) => e.toLowerCase()), skipBadFiles: opts.skipBadFiles ?? false,
      skipped: new Set<string>(), channels: 3,
    });
    return ds;
  }

  /** Rebuilds the dataset a worker thread was given (see workerSpec). */
  static fromWorkerSpec(spec: WorkerSpec): ImageFolder {
    const s = spec as unknown as { root: string; classes: string[]; samples: [string, number][]; transform: TransformSpec | null; skipBadFiles: boolean };
    return ImageFolder.fromSamples(s.root, s.classes, s.samples, { transform: s.transform ? fromSpec(s.transform) : undefined, skipBadFiles: s.skipBadFiles });
  }

  get length(): number {
    return this.samples.length;
  }

  get numClasses(): number {
    return this.classes.length;
  }

  get classNames(): readonly string[] {
    return this.classes;
  }

  /** torchvision's `targets`: the class index of every sample. */
  get targets(): number[] {
    return this.samples.map(([, c]) => c);
  }

  describe(index: number): string {
    return this.samples[index]?.[0] ?? `item ${index}`;
  }

  /** The same samples at `indices`, with another transform (e.g. a validation split). */
  subset(indices: ArrayLike<number>, transform: ImageTransform | undefined = this.transform): ImageFolder {
    const samples = Array.from(indices, (i) => {
      const s = this.samples[i];
      if (s === undefined) throw new DatasetError(op, `subset index ${i} is out of range for ${this.samples.length} samples`);
      return s;
    });
    return ImageFolder.fromSamples(this.root, this.classes, samples, { transform, extensions: this.extensions, skipBadFiles: this.skipBadFiles });
  }

  /** Reads and decodes sample `index` as RGB (PIL's convert('RGB')); DatasetError naming the file if it cannot. */
  loadImage(index: number): DecodedImage {
    const s = this.samples[index];
    if (s === undefined) throw new DatasetError(op, `index ${index} is out of range for ${this.samples.length} samples`);
    const path = s[0];
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      throw new DatasetError(op, `cannot read ${path}: ${(e as Error).message}`);
    }
    try {
      return toRgb(decodeImage(bytes));
    } catch (e) {
      throw new DatasetError(op, `${path}: ${(e as Error).message}`);
    }
  }

  getItem(index: number, gen: Generator): MapItem {
    let img: DecodedImage;
    try {
      img = this.loadImage(index);
    } catch (e) {
      if (this.skipBadFiles && e instanceof DatasetError) return { skipped: this.samples[index]![0] };
      throw e;
    }
    const label = this.samples[index]![1];
    if (!this.transform) return { image: img, label };
    try {
      return { image: this.transform.apply(img, gen), label };
    } catch (e) {
      if (e instanceof ResnetTsError && !(e instanceof DatasetError)) {
        throw new DatasetError(op, `${this.samples[index]![0]}: the transform failed: ${e.message}`);
      }
      throw e;
    }
  }

  workerSpec(): WorkerSpec {
    return {
      kind: 'ImageFolder', root: this.root, classes: [...this.classes], samples: this.samples.map(([p, c]) => [p, c]),
      transform: this.transform ? this.transform.spec : null, skipBadFiles: this.skipBadFiles,
    };
  }

  noteSkipped(names: readonly string[]): void {
    for (const n of names) this.skipped.add(n);
  }
}
