"""Pure key mapping of foreign checkpoints into mmseg's layout.

* :mod:`.openseg` - the ContrastiveSeg authors' (openseg.pytorch) HRNet /
  DeepLabV3 checkpoints;
* :mod:`.densecl` - DenseCL backbones (official, mmselfsup 0.x, mmpretrain
  1.x), checked against the target mmseg backbone;
* :mod:`.mobilenetv2` - torchvision-layout MobileNetV2 weights;
* :mod:`.keys` - the key helpers they share.

Reading and writing the files is :mod:`mmseg_contrast.checkpoint`'s job.
"""
