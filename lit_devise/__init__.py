"""DeViSE: images mapped onto word vectors, and semantic image search (fast.ai 2018, lesson 11).

Empty in this version: the datamodule, regression head, ``DeviseModule`` and nearest-neighbour
search land with the DeViSE issue.
"""
