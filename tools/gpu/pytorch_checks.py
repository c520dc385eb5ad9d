"""Cross-checks on the GPU machine, where PyTorch, torchvision, Pillow and TensorBoard are installed.

usage: python3 tools/gpu/pytorch_checks.py TRAIN_CMD RUN_DIR VAL_IMAGE OUT_JSON
  1. PyTorch fp32 train-step images/s of torchvision's mobilenet_v2 (the same-card reference for bench train)
  2. our resample vs Pillow's BILINEAR resize (via the hidden `diag-resize` verb)
  3. best.safetensors of RUN_DIR loaded into torchvision (strict) gives the logits our `predict` printed
  4. TensorBoard reads RUN_DIR/tensorboard
"""
import json, subprocess, sys, time
import numpy as np
import torch, torchvision
from PIL import Image
from safetensors.torch import load_file
from torchvision import transforms

train_cmd, run_dir, val_image, out_json = sys.argv[1].split(), sys.argv[2], sys.argv[3], sys.argv[4]
res = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}

def bench(width, batch, steps=20, warmup=5):
    m = torchvision.models.mobilenet_v2(num_classes=10, width_mult=width).cuda()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0)
    crit = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.randn(batch, 3, 224, 224, device="cuda"); y = torch.randint(0, 10, (batch,), device="cuda")
    def step():
        opt.zero_grad(); crit(m(x), y).backward(); opt.step()
    for _ in range(warmup): step()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(steps): step()
    torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t)

res["pytorch_fp32_train_images_per_s"] = {f"w{w}_b{b}": round(bench(w, b), 1) for b in (64, 256) for w in (1.0, 0.75, 0.5, 0.25)}

# 2. resample parity with Pillow
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:375, 0:500]
src = np.stack([127 + 120 * np.sin(xx / 23.0 + yy / 41.0), 255 * xx * yy / (500 * 375), 128 + 100 * np.cos(xx / 9.0)], -1)
src = np.clip(src + rng.integers(-20, 20, src.shape), 0, 255).astype(np.uint8)
Image.fromarray(src).save("/tmp/resize_src.png")
resize = {}
for w, h in [(341, 256), (394, 296), (512, 384), (96, 72), (640, 480)]:
    subprocess.run(train_cmd + ["diag-resize", "/tmp/resize_src.png", "/tmp/ours.png", str(w), str(h)], check=True)
    ours = np.asarray(Image.open("/tmp/ours.png").convert("RGB")).astype(int)
    pil = np.asarray(Image.fromarray(src).resize((w, h), Image.BILINEAR)).astype(int)
    d = np.abs(ours - pil)
    resize[f"{w}x{h}"] = {"max_abs_diff": int(d.max()), "fraction_equal": float((d == 0).mean())}
res["resize_vs_pillow"] = resize

# 3. our checkpoint in torchvision, same input pipeline through torchvision's transforms
card = json.load(open(f"{run_dir}/model.json"))
net = torchvision.models.mobilenet_v2(num_classes=card["classes"], width_mult=card["width"], dropout=card["dropout"])
missing = net.load_state_dict(load_file(f"{run_dir}/best.safetensors"), strict=True)
net.eval()
s = card["image_size"]; r = round(256 * s / 224)
tf = transforms.Compose([transforms.Resize(r), transforms.CenterCrop(s), transforms.ToTensor(), transforms.Normalize(card["mean"], card["std"])])
with torch.no_grad():
    theirs = net(tf(Image.open(val_image).convert("RGB")).unsqueeze(0))[0].tolist()
ours = json.loads(subprocess.run(train_cmd + ["predict", "--checkpoint", run_dir, val_image, "--json"], check=True,
                                 capture_output=True, text=True).stdout)[0]["logits"]
res["checkpoint_in_torchvision"] = {"strict_load": True, "ours": ours, "torchvision": theirs,
                                    "max_abs_diff": max(abs(a - b) for a, b in zip(ours, theirs))}

# 4. TensorBoard reads our event files
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(f"{run_dir}/tensorboard"); ea.Reload()
res["tensorboard_scalars"] = {t: len(ea.Scalars(t)) for t in ea.Tags()["scalars"]}
json.dump(res, open(out_json, "w"), indent=1)
print(json.dumps(res, indent=1))
