# ImageNet linear probe of the DenseCL R50 200-epoch backbone: mmpretrain
# 1.2.0's benchmark config, unchanged. The zoo entry's `Weights` are its
# result (frozen DenseCL backbone + trained linear classifier, top-1 63.5),
# evaluated with mmpretrain's own tools (`mim test mmpretrain THIS_CONFIG
# --checkpoint URL`). To train the probe, set
# model.backbone.init_cfg.checkpoint to the pre-training weights.
_base_ = ['mmpretrain::densecl/benchmarks/resnet50_8xb32-linear-steplr-100e_in1k.py']  # noqa: E501
