"""DeViSE: images mapped onto word vectors, and semantic image search (fast.ai 2018, lesson 11).

Frome et al. 2013, "DeViSE: A Deep Visual-Semantic Embedding Model": a CNN regresses an image onto
its label's word vector, so images become searchable by words and sums of words. Files: images.py
(layouts, robust loading), wordvecs.py (label vectors), synthetic.py (offline smoke data),
backbone.py / resnet_cifar.py / head.py / model.py (the net), precompute.py (activation cache),
datamodule.py, module.py (LightningModule, hit@k), knn.py (indices), index.py and search.py (CLIs).
"""
