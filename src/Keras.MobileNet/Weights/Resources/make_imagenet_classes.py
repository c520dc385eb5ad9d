#!/usr/bin/python3
"""imagenet_classes.txt: the 1000 ImageNet class names in torchvision's order (the order of the logits of its
published weights). Run with Debian's python3-torchvision, from this folder: /usr/bin/python3 make_imagenet_classes.py"""
from torchvision.models._meta import _IMAGENET_CATEGORIES

with open("imagenet_classes.txt", "w") as f:
    f.write("\n".join(_IMAGENET_CATEGORIES) + "\n")
