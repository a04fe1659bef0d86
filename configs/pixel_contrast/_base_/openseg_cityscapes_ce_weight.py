# openseg.pytorch's Cityscapes class weights for the CE loss
# (`loss.params.ce_weight` of R_101_D_8.json and H_48_D_4.json), shared by the
# two configs that rebuild the ContrastiveSeg release's CE baselines
# (deeplabv3_r101-d8_openseg_*, fcn_hr48_openseg_*).
custom_imports = dict(imports=['mmseg_contrast'], allow_failed_imports=False)

openseg_class_weight = [
    0.8373, 0.9180, 0.8660, 1.0345, 1.0166, 0.9969, 0.9754, 1.0489, 0.8786,
    1.0023, 0.9539, 0.9843, 1.1116, 0.9037, 1.0865, 1.0955, 1.0865, 1.1529,
    1.0507
]
