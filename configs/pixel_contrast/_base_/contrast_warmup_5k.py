# ContrastiveSeg's warm-up for the 40k-iteration configs of this folder
# (reference `contrast.warmup_iters`): ContrastWarmupHook keeps the pixel
# contrast term off for the first 5000 iterations.
custom_hooks = [dict(type='ContrastWarmupHook', warmup_iters=5000)]
