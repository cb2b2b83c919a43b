"""POMAGAN training package (imports as ``pomagan_train``).

Reproduces the paper's two-stage training (segmentation, then alpha with the segmentation net
frozen), each a conditional GAN with three multi-scale PatchGAN discriminators, and lets a studio
retrain on its own footage. Depends on :mod:`pomagan_post`, never the reverse.
"""

__all__: list[str] = []
