"""French -> English question translation with an attention seq2seq model (fast.ai 2018, lesson 11).

Empty in this version: the corpus, vocabulary, samplers, encoder/decoder and ``Seq2SeqModule`` land
with the translation issue. The training schedules it will use are in ``callbacks/``.
"""
