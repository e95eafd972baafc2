"""French -> English question translation with an attention seq2seq model (fast.ai 2018, lesson 11).

Data: ``corpus`` (reading), ``tokenizer``, ``vocab``, ``prepare`` (the cached preparation),
``dataset``, ``sampler``, ``datamodule``, ``wordvecs``. Model: ``rnn`` and ``regularisers``,
``encoder``, ``attention``, ``decoder``, ``model``, ``module`` (training). Use: ``search`` (greedy
and beam), ``translate`` and ``evaluate`` (the CLIs), ``bleu``, ``detokenizer``, ``plots``.
The training schedules (one-cycle, teacher forcing) are in ``callbacks/``.
"""
