/**
 * The option-A shortcut (issue 3) against PyTorch: F.pad(x[:, :, ::s, ::s], (0,0,0,0,p,q)) with p = floor((out-in)/2)
 * and q the rest; fixtures in test/fixtures/ops/shortcut.json.
 */
import { nn } from '../../src/index.js';
import { fixtureSuite } from '../helpers/fixtures.js';

const F = nn.functional;

fixtureSuite('shortcut', {
  shortcut_a_16_32_s2: ['shortcutA x=[1,16,6,6] out=32 s=2', (x) => F.shortcutA(x, 32, 2)],
  shortcut_a_3_8_s1: ['shortcutA x=[2,3,4,4] out=8 s=1 (2 channels before, 3 after)', (x) => F.shortcutA(x, 8, 1)],
  shortcut_a_5_9_s2_odd: ['shortcutA x=[1,5,5,5] out=9 s=2 odd spatial', (x) => F.shortcutA(x, 9, 2)],
});
