#!/usr/bin/env python3
"""PyTorch's pace on the bench's model cases, on CPU: the native peer of `npm run bench` (bench/torch.mjs runs it).

    /usr/bin/python3 bench/torch-peer.py --threads 2 [--cases r18-eval,cifar-train] [--quick] [--min-time 0.3]

Eval cases: torchvision ResNet-18/50 in eval mode under torch.no_grad() at 1x3x224x224. Train cases: forward +
cross-entropy, backward, SGD(lr 0.01, momentum 0.9, weight decay 5e-4).step(), with zero_grad(set_to_none=False)
at the start of the forward, as bench/train.mjs times ours; the CIFAR ResNet-20 is He et al.'s (option-A shortcuts),
written as src/models/cifar.ts builds it (test/fixtures/gen_interop.py's `CifarResNet`). Repetitions as the bench's own rows (bench/models.mjs modelTiming,
bench/train.mjs). Every time is wall ms and process CPU ms (all threads). Prints one line of JSON.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torchvision


# The CIFAR ResNet as src/models/cifar.ts builds it: the one the interop fixtures check our weights against.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'test', 'fixtures'))
from gen_interop import CifarResNet  # noqa: E402


# id -> (kind, model builder, input shape); the ids bench/torch.mjs asks for.
CASES = {
    'r18-eval': ('eval', lambda: torchvision.models.resnet18(), (1, 3, 224, 224)),
    'r50-eval': ('eval', lambda: torchvision.models.resnet50(), (1, 3, 224, 224)),
    'cifar-train': ('train', lambda: CifarResNet(), (32, 3, 32, 32)),
    'r18-train': ('train', lambda: torchvision.models.resnet18(num_classes=10), (8, 3, 32, 32)),
    'fmnist-train': ('train', lambda: CifarResNet(in_channels=1), (128, 1, 28, 28)),
}


def clocks():
    return time.perf_counter() * 1000, time.process_time() * 1000


def timed(fn):
    """Runs fn once: (wall ms, process CPU ms)."""
    w, c = clocks()
    fn()
    w1, c1 = clocks()
    return w1 - w, c1 - c


def eval_case(model, x, t):
    """Warm-up (up to warmup_runs calls or warmup_time s), then calls until min_runs and min_time s, or max_runs."""
    model.eval()
    fwd = lambda: model(x)
    with torch.no_grad():
        warm = 0.0
        for _ in range(t['warmup_runs']):
            if warm >= t['warmup_time'] * 1000:
                break
            warm += timed(fwd)[0]
        walls, cpus = [], []
        while len(walls) < t['max_runs'] and (sum(walls) < t['min_time'] * 1000 or len(walls) < t['min_runs']):
            w, c = timed(fwd)
            walls.append(w)
            cpus.append(c)
    return {'ms': statistics.median(walls), 'cpuMs': statistics.median(cpus), 'runs': len(walls), 'samples': walls}


def train_case(model, x, t):
    """warmup untimed steps, then the median of `steps` steps, phase by phase ({wall, cpu} ms each)."""
    model.train()
    target = torch.tensor([(i * 7) % model.fc.out_features for i in range(x.shape[0])])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        laps = [clocks()]
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(x), target)
        laps.append(clocks())
        loss.backward()
        laps.append(clocks())
        opt.step()
        laps.append(clocks())
        phases = {p: {'wall': laps[i + 1][0] - laps[i][0], 'cpu': laps[i + 1][1] - laps[i][1]} for i, p in enumerate(['forward', 'backward', 'optimizer'])}
        phases['step'] = {'wall': laps[3][0] - laps[0][0], 'cpu': laps[3][1] - laps[0][1]}
        return phases, loss.item()

    first_loss = step()[1]
    for _ in range(t['train_warmup'] - 1):
        step()
    samples = [step()[0] for _ in range(t['train_steps'])]
    med = lambda p, k: statistics.median(s[p][k] for s in samples)
    phases = {p: {'wall': med(p, 'wall'), 'cpu': med(p, 'cpu')} for p in ['forward', 'backward', 'optimizer', 'step']}
    return {'phases': phases, 'steps': len(samples), 'warmup': t['train_warmup'], 'firstLoss': first_loss if math.isfinite(first_loss) else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--threads', type=int, required=True, help='torch.set_num_threads')
    ap.add_argument('--cases', default=','.join(CASES), help=f'comma-separated, of: {", ".join(CASES)}')
    ap.add_argument('--quick', action='store_true', help="the bench's --quick repetitions")
    ap.add_argument('--min-time', type=float, default=None, help='eval: keep timing until S seconds (default 0.3, quick 0.15)')
    a = ap.parse_args()
    unknown = [c for c in a.cases.split(',') if c not in CASES]
    if unknown:
        ap.error(f'unknown case {", ".join(unknown)}; cases: {", ".join(CASES)}')
    q = a.quick
    timing = {
        'warmup_runs': 3 if q else 5, 'warmup_time': 2 if q else 4, 'min_runs': 1 if q else 3, 'max_runs': 3 if q else 10,
        'min_time': a.min_time if a.min_time is not None else 0.15 if q else 0.3,
        'train_warmup': 2 if q else 3, 'train_steps': 3 if q else 8,
    }
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    out = {
        'torch': torch.__version__, 'torchvision': torchvision.__version__, 'threads': torch.get_num_threads(),
        'mkldnn': torch.backends.mkldnn.is_available(), 'config': torch.__config__.show(), 'cases': [],
    }
    for cid in a.cases.split(','):
        kind, make, shape = CASES[cid]
        model = make()
        x = torch.randn(shape)
        r = (eval_case if kind == 'eval' else train_case)(model, x, timing)
        out['cases'].append({'id': cid, 'kind': kind, 'input': list(shape), 'params': sum(p.numel() for p in model.parameters()), **r})
    print(json.dumps(out))


if __name__ == '__main__':
    main()
