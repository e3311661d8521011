// Limits at the op boundary: shapes over 2^32 - 1 elements, or with dims that are not safe integers, are refused
// before anything is allocated, and the error names the op and the shapes involved.
import { describe } from 'vitest';
import { add, AllocationError, matmul, pad, Tensor, zeros } from '../../src/index.js';
import { runRows, type Row } from './rows.js';

const z = (...s: number[]): Tensor => zeros(s);

describe('limits: the op that would allocate names itself and its input shapes', () => {
  const rows: Row[] = [
    ['add [65536,1] + [1,65537]: the broadcast result is too large', () => add(z(65536, 1), z(1, 65537)), AllocationError, ['[add]', '[65536, 1]', '[1, 65537]']],
    ['matmul [65536,1] @ [1,65537]', () => matmul(z(65536, 1), z(1, 65537)), AllocationError, ['[matmul]', '[65536, 1]', '[1, 65537]']],
    ['pad [1] by 2^31 on both sides', () => pad(z(1), [2 ** 31, 2 ** 31]), AllocationError, ['[pad]', '[4294967297]', 'input [1]']],
    ['zeros([2^1023, 2^1023, 0]): dims that are not safe integers', () => zeros([2 ** 1023, 2 ** 1023, 0]), AllocationError, ['[zeros]', 'dim 0', 'not a safe integer']],
    ['zeros([2^60, 0]): a dim that is not a safe integer, even with 0 elements', () => zeros([2 ** 60, 0]), AllocationError, ['[zeros]', 'dim 0']],
    ['new Tensor(empty, [2^1023, 2^1023, 0])', () => new Tensor(new Float32Array(0), [2 ** 1023, 2 ** 1023, 0]), AllocationError, ['[Tensor]', '8.98846567431158e+307']],
  ];
  runRows(rows);
});
