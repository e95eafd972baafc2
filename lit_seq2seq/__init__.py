"""French -> English question translation with an attention seq2seq model (fast.ai 2018, lesson 11).

Data: ``download``, ``corpus`` (reading), ``synthetic``, ``tokenizer``, ``vocab``, ``prepare``
(the cached preparation) and ``reporting``, ``dataset``, ``sampler``, ``datamodule``,
``wordvecs``. Model: ``rnn`` and ``regularisers``, ``encoder``, ``attention``, ``decoder``,
``model``, ``module`` (training). Use: ``search`` (greedy and beam), ``translator`` (the Python
API), ``input_lines``, ``translate`` and ``evaluate`` (the CLIs), ``bleu``, ``detokenizer``,
``plots``.
The training schedules (one-cycle, teacher forcing) are in ``callbacks/``.
"""
