/**
 * OUT/checkpoint.safetensors of `resnet-ts train`: the checkpoint of src/train/checkpoint.ts as a safetensors file,
 * its fields in the metadata.
 */
import { loadSafetensorsFile, readSafetensorsMetadataFile, saveSafetensorsFile } from '../io/safetensors-file.js';
import { checkpointMetadata, parseCheckpoint, type Checkpoint, type CheckpointState } from '../train/checkpoint.js';

/** Reads and checks a checkpoint against this run's `stepsPerEpoch` batches per epoch. */
export function readCheckpoint(path: string, stepsPerEpoch: number): Checkpoint {
  return parseCheckpoint(path, readSafetensorsMetadataFile(path), stepsPerEpoch, () => loadSafetensorsFile(path));
}

/** Writes the checkpoint atomically (the old one stays whole until the new one is complete). */
export function saveCheckpoint(path: string, s: CheckpointState): void {
  saveSafetensorsFile(path, s.tensors, checkpointMetadata(s));
}
