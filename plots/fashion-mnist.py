#!/usr/bin/python3
"""Fashion-MNIST (Zalando, MIT licence; Debian's dataset-fashion-mnist package) as an image folder for Train:
OUT/{train,val}/<class>/NNNNN.png, the first PER_CLASS_TRAIN images of each class from the training set and the first
PER_CLASS_VAL of each class from the test set, 28x28 grayscale PNGs, unchanged.

    sudo apt-get install dataset-fashion-mnist python3-numpy python3-pil
    /usr/bin/python3 plots/fashion-mnist.py data/fashion-mnist 1000 300
"""
import gzip
import os
import sys

import numpy as np
from PIL import Image

SRC = "/usr/share/datasets/fashion-mnist"
CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]


def idx(path, offset):
    with gzip.open(os.path.join(SRC, path)) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def write(split, images, labels, per_class, out):
    taken = [0] * len(CLASSES)
    for i, (img, label) in enumerate(zip(images, labels)):
        if taken[label] >= per_class:
            continue
        folder = os.path.join(out, split, CLASSES[label])
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(img, "L").save(os.path.join(folder, f"{i:05d}.png"))
        taken[label] += 1
    return sum(taken)


def main():
    out, per_train, per_val = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if os.path.exists(out):
        sys.exit(f"{out} exists; remove it or name another folder")
    tmp = out + ".partial"
    for split, prefix, per in (("train", "train", per_train), ("val", "t10k", per_val)):
        images = idx(f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
        labels = idx(f"{prefix}-labels-idx1-ubyte.gz", 8)
        print(split, write(split, images, labels, per, tmp), "images")
    os.rename(tmp, out)


main()
