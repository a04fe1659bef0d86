# ContrastiveSeg head settings shared by the configs of this folder (and the
# CPU bench arm), as config-time helper variables: names starting with `_`,
# read by a config through `_base_.<name>` and never part of a resolved config
# (mmengine, mmseg and the tools do not read them).
# * _openseg_contrast_loss: the reference's Cityscapes `contrast` block
#   (R_101_D_8.json / H_48_D_4.json): tau 0.1, tau_b 0.07, weight 0.1,
#   max_samples 1024 / max_views 100, per-GPU quantities for 2 images of
#   512x1024 per GPU; no ignore_index (the head's is used);
# * _contrast_loss: the same with mmseg's ignore index (255) stated;
# * _contrast_loss_tau007: the reference's COCO-Stuff / PASCAL-Context block,
#   tau = tau_b = 0.07, otherwise as _contrast_loss;
# * _contrast_head: a 256-channel projection head on the reference's
#   projection input (proj_in='backbone') with _contrast_loss; a config adds
#   the head `type` (and replaces `contrast_loss` for another block);
# * _contrast_head_tau007: the same head with _contrast_loss_tau007;
# * _cpu_contrast_head: the CPU demos' head (deeplabv3_mnv2_contrast_aal_cpu,
#   bench/deeplabv3_mnv2_contrast_20lab-fashion_cpu): projection on the
#   feature fed to the classifier (the head's default proj_in) and
#   _contrast_loss with max_views 10, scaled to their small embeddings (each
#   config says how).
# The warm-up is a hook: ./contrast_warmup_5k.py.
_openseg_contrast_loss = dict(
    type='PixelContrastLoss',
    temperature=0.1,
    base_temperature=0.07,
    max_samples=1024,
    max_views=100,
    loss_weight=0.1)
_contrast_loss = dict(_openseg_contrast_loss, ignore_index=255)
_contrast_loss_tau007 = dict(_contrast_loss, temperature=0.07)
_contrast_head = dict(
    proj_in='backbone', proj_channels=256, contrast_loss=_contrast_loss)
_contrast_head_tau007 = dict(
    _contrast_head, contrast_loss=_contrast_loss_tau007)
_cpu_contrast_head = dict(
    proj_channels=256, contrast_loss=dict(_contrast_loss, max_views=10))
