"""PyTorch's twin of `Train bench train`: train-step images/s of torchvision's mobilenet_v2 (224x224, 10 classes,
forward + backward + AdamW, label smoothing 0.1), medians of individually timed steps, for the cells of issue 10:
  fp32        AdamW(foreach=True), NCHW                          (what `--precision fp32` must reach)
  fp32_cl     AdamW(foreach=True), channels_last                 (what `--memory-format channels_last` must reach)
  bf16_best   autocast(bfloat16) + channels_last + AdamW(fused=True) + cudnn.benchmark   (what `--precision bf16` must reach)
usage: python3 tools/gpu/pytorch_bench.py OUT_JSON [--device cuda|cpu] [--widths 1,0.5,0.25] [--batches 64,256] [--size 224] [--steps 30]
Run in the same device call as ours (tools/gpu/device-bench-pytorch.sh), so both see the same card; on a CPU it is
the side-by-side for the README (Debian's python3-torch).
"""
import argparse, json, os, statistics, time
import torch, torchvision

p = argparse.ArgumentParser()
p.add_argument("out"); p.add_argument("--device", default="cuda"); p.add_argument("--widths", default="1,0.5,0.25")
p.add_argument("--batches", default="64,256"); p.add_argument("--size", type=int, default=224); p.add_argument("--steps", type=int, default=30)
p.add_argument("--warmup", type=int, default=5); p.add_argument("--modes", default="fp32,fp32_cl,bf16_best")
# Ours uses every core for libtorch's intra-op threads; Debian's torch 1.13 starts with 1 here, which made the CPU
# side-by-side compare our 2 threads with its 1. Same count as ours unless told.
p.add_argument("--threads", type=int, default=os.cpu_count())
a = p.parse_args()
torch.set_num_threads(a.threads)
print(f"pytorch_bench: torch {torch.__version__}, {torch.get_num_threads()} intra-op threads", flush=True)
dev = torch.device(a.device)
cuda = dev.type == "cuda"

def sync():
    if cuda: torch.cuda.synchronize()

def adamw(params, fused):
    kw = {"lr": 1e-3, "weight_decay": 0.0}
    try:
        return torch.optim.AdamW(params, fused=True, **kw) if fused else torch.optim.AdamW(params, foreach=True, **kw)
    except (TypeError, RuntimeError):  # an old torch (Debian's 1.13 on CPU): no fused AdamW there
        return torch.optim.AdamW(params, foreach=True, **kw)

def cell(width, batch, mode):
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = mode == "bf16_best"
    cl = mode in ("fp32_cl", "bf16_best")
    fmt = torch.channels_last if cl else torch.contiguous_format
    m = torchvision.models.mobilenet_v2(num_classes=10, width_mult=width).to(dev, memory_format=fmt)
    opt = adamw(m.parameters(), fused=mode == "bf16_best" and cuda)
    crit = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.randn(batch, 3, a.size, a.size, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), device=dev)
    def step():
        opt.zero_grad(set_to_none=True)
        if mode == "bf16_best":
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                out = m(x)
            loss = crit(out.float(), y)
        else:
            loss = crit(m(x), y)
        loss.backward(); opt.step()
    for _ in range(a.warmup): step()
    times = []
    for _ in range(a.steps):
        sync(); t = time.perf_counter(); step(); sync(); times.append(time.perf_counter() - t)
    return batch / statistics.median(times)

res = {"torch": torch.__version__, "torchvision": torchvision.__version__,
       "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({torch.get_num_threads()} threads)", "cells": {}}
for b in map(int, a.batches.split(",")):
    for w in map(float, a.widths.split(",")):
        for mode in a.modes.split(","):
            v = cell(w, b, mode)
            res["cells"][f"{mode}_w{w:g}_b{b}"] = round(v, 1)
            print(f"{mode} width {w:g} batch {b}: {v:.1f} img/s", flush=True)
json.dump(res, open(a.out, "w"), indent=1)
